package librato_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/libratod/libratod/librato"
)

func ExampleClient_Check() {
	// A stand-in for Librato; use https://metrics-api.librato.com.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Librato-RateLimit-Agg", "limit=100000,remaining=99990,reset=3540")
		io.WriteString(w, `{"query":{"length":1},"metrics":[]}`)
	}))
	defer srv.Close()

	c, err := librato.New(librato.Config{API: librato.Tagged, URL: srv.URL, Email: "me@example.com", Token: "not-printed"})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.Check(context.Background())
	if err != nil {
		fmt.Println("check failed:", err)
	}
	fmt.Printf("reached %v, credentials accepted %v (HTTP %d)\n", res.Reached, res.Authorized, res.StatusCode)
	fmt.Printf("aggregate rate limit seen %v, %d remaining\n", res.RateLimit.Agg.Present, res.RateLimit.Agg.Remaining)
	// Output:
	// reached true, credentials accepted true (HTTP 200)
	// aggregate rate limit seen true, 99990 remaining
}
