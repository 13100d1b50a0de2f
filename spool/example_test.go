package spool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/libratod/libratod/spool"
)

// A resender keeps what it could not deliver in the spool, and drains it
// oldest first: Ack what was delivered, Release what failed again.
func Example() {
	dir, err := os.MkdirTemp("", "spool-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	s, err := spool.Open(context.Background(), spool.Config{Dir: dir, MaxBytes: 64 << 20})
	if err != nil {
		panic(err) // e.g. errors.Is(err, spool.ErrLocked): another daemon uses dir
	}
	defer s.Close()

	// Delivery failed: keep the requests.
	for i, body := range []string{`{"measurements":[...]}`, `{"measurements":[...], "more"}`, `{"late":1}`} {
		_, err := s.Append(spool.Record{Time: 1_700_000_000 + int64(i)*10, Measurements: 300, Payload: []byte(body)})
		if errors.Is(err, spool.ErrWrite) {
			// Disk full, directory gone...: keep it in memory instead.
			fmt.Println("spool failed:", err)
		}
	}

	// Later: drop what is past max_age, then resend the rest.
	dropped, _ := s.DropOlderThan(time.Unix(1_700_000_005, 0))
	fmt.Println("too old:", dropped.Records)
	es, _ := s.Take(10)
	for i, e := range es {
		if i == 0 {
			_ = s.Ack(e.ID) // Librato accepted it
		} else {
			s.Release(e.ID) // failed again: taken again next time
		}
	}
	st := s.Stats()
	fmt.Println("pending:", st.Pending.Records, "acknowledged:", st.Acknowledged.Records)
	// Output:
	// too old: 1
	// pending: 1 acknowledged: 1
}
