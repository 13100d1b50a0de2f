package librato_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/libratod/libratod/librato"
)

func Example() {
	c, err := librato.New(librato.Config{
		API:    librato.Tagged,
		URL:    "https://metrics-api.librato.com",
		Email:  "me@example.com",
		Token:  "not-printed",
		DryRun: os.Stdout, // print the request instead of sending it
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := c.Send(context.Background(), &librato.Batch{
		Time:   1700000000,
		Period: 10,
		Tags:   []librato.Tag{{Name: "host", Value: "web-01"}},
		Measurements: []librato.Measurement{
			{Name: "app.requests", Value: 42},
			{Name: "app.latency", Count: 4, Sum: 10, Min: 1, Max: 4, SumSquares: 30, Last: 2, HasLast: true},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("sent %d, skipped %d\n", res.Sent, res.Skipped)
	// Output:
	// POST https://metrics-api.librato.com/v1/measurements
	// {"time":1700000000,"period":10,"tags":{"host":"web-01"},"measurements":[{"name":"app.requests","value":42},{"name":"app.latency","count":4,"sum":10,"min":1,"max":4,"last":2,"stddev":1.118033988749895}]}
	//
	// sent 2, skipped 0
}

func ExampleSanitizeName() {
	fmt.Println(librato.SanitizeName("api/v1 requests#count"))
	fmt.Println(librato.SanitizeName("café.hits"))
	fmt.Printf("%q\n", librato.SanitizeName("日本"))
	fmt.Println(librato.SanitizeSource("all"))
	fmt.Println(librato.SanitizeTagValue(`/api/v1 items?page=2`))
	// Output:
	// api_v1_requests_count
	// caf_.hits
	// ""
	// all_
	// /api/v1 items?page_2
}

func ExampleError() {
	err := error(&librato.Error{StatusCode: 429, Message: "You have hit the API limit", Retryable: true, RateLimited: true})
	var e *librato.Error
	if errors.As(err, &e) && e.Retryable {
		fmt.Println("resend later:", e)
	}
	// Output:
	// resend later: librato: HTTP 429: You have hit the API limit
}
