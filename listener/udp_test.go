package listener

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"testing"
	"time"
)

// udpPair returns a bound server socket and a client connected to it, both
// closed at the end of the test.
func udpPair(t *testing.T) (server, client *net.UDPConn) {
	t.Helper()
	server, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	client, err = net.DialUDP("udp", nil, server.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return server, client
}

// TestUDPReaderRead writes datagrams, then reads them back with
// datagramReader.read in each mode: every datagram must come back whole (or cut
// to the slot size), in order, at most one slot each, and batched reads must
// take several per call.
func TestUDPReaderRead(t *testing.T) {
	many := make([][]byte, 40)
	for i := range many {
		many[i] = fmt.Appendf(nil, "m%d:%d|c", i, i)
	}
	tests := []struct {
		name      string
		slotBytes int
		sent      [][]byte
		want      [][]byte // nil: sent
	}{
		{name: "sizes", slotBytes: 2000, sent: [][]byte{[]byte("a"), []byte("bb"), bytes.Repeat([]byte("x"), 1400), {}, []byte("last")}},
		{name: "more than a batch", slotBytes: 64, sent: many},
		{
			name: "cut to the slot", slotBytes: 8,
			sent: [][]byte{[]byte("0123456789abcdef"), []byte("short")},
			want: [][]byte{[]byte("01234567"), []byte("short")},
		},
	}
	for _, tt := range tests {
		for _, batch := range batches() {
			t.Run(fmt.Sprintf("%s/batch=%d", tt.name, batch), func(t *testing.T) {
				server, client := udpPair(t)
				r, err := newDatagramReader(UDP, server, batch, tt.slotBytes)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range tt.sent {
					if _, err := client.Write(d); err != nil {
						t.Fatal(err)
					}
				}
				// An empty datagram is read as one of length 0 (batched) or as
				// none (portable); deliverDatagrams skips both, so only the
				// others are compared.
				all := tt.want
				if all == nil {
					all = tt.sent
				}
				var want [][]byte
				for _, d := range all {
					if len(d) > 0 {
						want = append(want, d)
					}
				}
				var got [][]byte
				most := 0
				for calls := 0; len(got) < len(want) && calls < 2*len(tt.sent); calls++ {
					if err := server.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
						t.Fatal(err)
					}
					n, err := r.read()
					if err != nil {
						t.Fatalf("read %d: %v", calls, err)
					}
					if n > batch {
						t.Fatalf("read %d got %d datagrams, want at most %d", calls, n, batch)
					}
					most = max(most, n)
					for i := range n {
						if r.lens[i] > 0 {
							got = append(got, slices.Clone(r.bufs[i][:r.lens[i]]))
						}
					}
				}
				if !slices.EqualFunc(got, want, bytes.Equal) {
					t.Errorf("read %q, want %q", got, want)
				}
				if batch > 1 && most < 2 {
					t.Errorf("at most %d datagram per read, want batches", most)
				}
			})
		}
	}
}

// TestUDPReaderReadErrors checks that read reports a passed deadline and a
// closed socket as the net package does.
func TestUDPReaderReadErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*net.UDPConn) error
		want  error
	}{
		{name: "deadline", setup: func(c *net.UDPConn) error { return c.SetReadDeadline(time.Now()) }, want: os.ErrDeadlineExceeded},
		{name: "closed", setup: func(c *net.UDPConn) error { return c.Close() }, want: net.ErrClosed},
	}
	for _, tt := range tests {
		for _, batch := range batches() {
			t.Run(fmt.Sprintf("%s/batch=%d", tt.name, batch), func(t *testing.T) {
				server, _ := udpPair(t)
				r, err := newDatagramReader(UDP, server, batch, 64)
				if err != nil {
					t.Fatal(err)
				}
				if err := tt.setup(server); err != nil {
					t.Fatal(err)
				}
				if n, err := r.read(); n != 0 || !errors.Is(err, tt.want) {
					t.Errorf("read: %d, %v; want 0, %v", n, err, tt.want)
				}
			})
		}
	}
}

// BenchmarkUDPRead measures the reader alone: with the timer stopped a client
// fills the socket with a chunk of datagrams, then the timer runs while
// datagramReader.read takes them out (one per system call, or batched).
func BenchmarkUDPRead(b *testing.B) {
	const chunk = 256 // fits the receive buffer set below
	for _, batch := range batches() {
		for _, size := range []int{32, 1400} {
			b.Run(fmt.Sprintf("batch=%d/%dB", batch, size), func(b *testing.B) {
				server, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				defer server.Close()
				if err := setReadBuffer(server, 8<<20); err != nil {
					b.Fatal(err)
				}
				client, err := net.DialUDP("udp", nil, server.LocalAddr().(*net.UDPAddr))
				if err != nil {
					b.Fatal(err)
				}
				defer client.Close()
				r, err := newDatagramReader(UDP, server, batch, DefaultMaxPacketBytes+1)
				if err != nil {
					b.Fatal(err)
				}
				if err := server.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
					b.Fatal(err)
				}
				msg := bytes.Repeat([]byte("x"), size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for done := 0; done < b.N; {
					b.StopTimer()
					n := min(chunk, b.N-done)
					for range n {
						if _, err := client.Write(msg); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					for got := 0; got < n; {
						k, err := r.read()
						if err != nil {
							b.Fatal(err)
						}
						got += k
					}
					done += n
				}
			})
		}
	}
}
