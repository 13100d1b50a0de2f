package listener

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libratod/libratod/internal/eventually"
)

const waitLimit = 5 * time.Second // bound of every wait in these tests

// recorder is a Handler keeping copies of the packets it receives.
type recorder struct {
	gate chan struct{} // if not nil, Handle blocks until it is closed

	mu      sync.Mutex
	packets map[Transport][]string
	notify  chan struct{} // a token after each packet
}

func newRecorder() *recorder {
	return &recorder{packets: make(map[Transport][]string), notify: make(chan struct{}, 1)}
}

func (r *recorder) Handle(t Transport, p []byte) {
	r.mu.Lock()
	r.packets[t] = append(r.packets[t], string(p))
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	if r.gate != nil {
		<-r.gate
	}
}

// get returns a copy of the packets received on t.
func (r *recorder) get(t Transport) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.packets[t])
}

// lines returns the lines of the packets received on t.
func (r *recorder) lines(t Transport) []string {
	var lines []string
	for _, p := range r.get(t) {
		lines = append(lines, strings.Split(p, "\n")...)
	}
	return lines
}

// waitPackets waits until n packets arrived on t, and fails the test if they do
// not within waitLimit.
func (r *recorder) waitPackets(t *testing.T, tr Transport, n int) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		if got := len(r.get(tr)); got >= n {
			return
		}
		select {
		case <-r.notify:
		case <-timer.C:
			t.Fatalf("%d %s packets after %v, want %d", len(r.get(tr)), tr, waitLimit, n)
		}
	}
}

// waitLines waits until the lines received on t are want.
func (r *recorder) waitLines(t *testing.T, tr Transport, want []string) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		if slices.Equal(r.lines(tr), want) {
			return
		}
		select {
		case <-r.notify:
		case <-timer.C:
			t.Fatalf("%s lines %q after %v, want %q", tr, r.lines(tr), waitLimit, want)
		}
	}
}

// start starts a Listener and returns it with the goroutine count before it
// started.
func start(t *testing.T, cfg Config, h Handler, reusePort bool) (*Listener, int) {
	t.Helper()
	return startBatch(t, cfg, h, reusePort, udpBatchDefault)
}

// startBatch is start with UDP reads of at most batch datagrams.
func startBatch(t *testing.T, cfg Config, h Handler, reusePort bool, batch int) (*Listener, int) {
	t.Helper()
	base := runtime.NumGoroutine()
	l := New(cfg, h)
	l.reusePort = reusePort
	l.udpBatch = batch
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Stop(context.Background()) })
	return l, base
}

// stop stops l, and checks that it returns nil and that its goroutines ended.
func stop(t *testing.T, l *Listener, base int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := l.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	eventually.Require(t, waitLimit, func() bool { return runtime.NumGoroutine() <= base }, "goroutines back to %d", base)
}

func dialUDP(t *testing.T, l *Listener) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, l.UDPAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func dialTCP(t *testing.T, l *Listener) *net.TCPConn {
	t.Helper()
	c, err := net.DialTCP("tcp", nil, l.TCPAddr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sendUDP sends n datagrams "c<client>.m<i>:1|c" round-robin over clients and
// returns them.
func sendUDP(t *testing.T, clients []*net.UDPConn, n int) []string {
	t.Helper()
	var sent []string
	for i := range n {
		c := i % len(clients)
		msg := fmt.Sprintf("c%d.m%d:%d|c", c, i, i)
		if _, err := clients[c].Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, msg)
	}
	return sent
}

// batches are the UDP read modes tested: one datagram per read (the portable
// path) and, where supported, batched reads.
func batches() []int {
	if mmsgSupported {
		return []int{1, udpBatchDefault}
	}
	return []int{1}
}

func sameSet(got, want []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want)))
}

func TestTransportString(t *testing.T) {
	for tr, want := range map[Transport]string{UDP: "udp", TCP: "tcp", Unixgram: "unixgram", 0: "unknown", 9: "unknown"} {
		if got := tr.String(); got != want {
			t.Errorf("Transport(%d).String() = %q, want %q", tr, got, want)
		}
	}
}

func TestUDPDelivers(t *testing.T) {
	tests := []struct {
		name        string
		readers     int
		reusePort   bool
		wantSockets int
	}{
		{name: "one reader", readers: 1, wantSockets: 1},
		{name: "readers sharing a socket", readers: 4, wantSockets: 1},
		{name: "readers with a socket each", readers: 4, reusePort: true, wantSockets: 4},
	}
	for _, tt := range tests {
		for _, batch := range batches() {
			t.Run(fmt.Sprintf("%s/batch=%d", tt.name, batch), func(t *testing.T) {
				if tt.reusePort && !reusePortSupported {
					t.Skip("no SO_REUSEPORT here")
				}
				testUDPDelivers(t, tt.readers, tt.reusePort, tt.wantSockets, batch)
			})
		}
	}
}

func testUDPDelivers(t *testing.T, readers int, reusePort bool, wantSockets, batch int) {
	rec := newRecorder()
	l, base := startBatch(t, Config{UDP: "127.0.0.1:0", UDPReaders: readers}, rec, reusePort, batch)
	if got := len(l.udpConns); got != wantSockets {
		t.Errorf("%d sockets, want %d", got, wantSockets)
	}
	var clients []*net.UDPConn
	for range 8 { // several source ports, so SO_REUSEPORT spreads them
		clients = append(clients, dialUDP(t, l))
	}
	const n = 400
	sent := sendUDP(t, clients, n)
	rec.waitPackets(t, UDP, n)
	stop(t, l, base)

	if got := rec.get(UDP); !sameSet(got, sent) {
		t.Errorf("received %d datagrams differing from the %d sent", len(got), len(sent))
	}
	st := l.Stats()
	var bytes uint64
	for _, m := range sent {
		bytes += uint64(len(m))
	}
	if st.UDPPackets != n || st.UDPBytes != bytes {
		t.Errorf("stats: %d packets, %d bytes; want %d, %d", st.UDPPackets, st.UDPBytes, n, bytes)
	}
	if st.ReceiveBufferBytes <= 0 && runtime.GOOS == "linux" {
		t.Errorf("granted receive buffer %d, want > 0", st.ReceiveBufferBytes)
	}
}

// TestUDPStopDrains sends datagrams and stops at once: every datagram sent
// before Stop must be delivered. With a gated handler the readers are busy when
// Stop is called, so the datagrams wait in the sockets and only the drain can
// deliver them.
func TestUDPStopDrains(t *testing.T) {
	tests := []struct {
		name    string
		readers int
		gated   bool
	}{
		{name: "one reader", readers: 1},
		{name: "one busy reader", readers: 1, gated: true},
		{name: "busy readers", readers: 3, gated: true},
	}
	for _, tt := range tests {
		for _, batch := range batches() {
			t.Run(fmt.Sprintf("%s/batch=%d", tt.name, batch), func(t *testing.T) {
				testUDPStopDrains(t, tt.readers, tt.gated, batch)
			})
		}
	}
}

func testUDPStopDrains(t *testing.T, readers int, gated bool, batch int) {
	rec := newRecorder()
	if gated {
		rec.gate = make(chan struct{})
	}
	l, base := startBatch(t, Config{UDP: "127.0.0.1:0", UDPReaders: readers}, rec, reusePortSupported, batch)
	var clients []*net.UDPConn
	for range 6 {
		clients = append(clients, dialUDP(t, l))
	}
	const n = 300
	sent := sendUDP(t, clients, n)

	stopped := make(chan error, 1)
	if gated {
		rec.waitPackets(t, UDP, 1) // a reader is blocked in Handle
		go func() { stopped <- l.Stop(context.Background()) }()
		eventually.Require(t, waitLimit, l.stopping.Load, "Stop called")
		close(rec.gate)
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("Stop: %v", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("Stop did not return")
		}
	}
	stop(t, l, base)

	if got := rec.get(UDP); !sameSet(got, sent) {
		t.Errorf("received %d datagrams, want the %d sent", len(got), len(sent))
	}
}

func TestUDPTooLongDropped(t *testing.T) {
	for _, batch := range batches() {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			rec := newRecorder()
			l, base := startBatch(t, Config{UDP: "127.0.0.1:0", UDPReaders: 1, MaxPacketBytes: 10}, rec, reusePortSupported, batch)
			c := dialUDP(t, l)
			for _, m := range []string{"0123456789x", "0123456789", "x:1|c", strings.Repeat("y", 2000)} {
				if _, err := c.Write([]byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			rec.waitPackets(t, UDP, 2)
			eventually.Require(t, waitLimit, func() bool { return l.Stats().UDPTruncated == 2 }, "two truncated")
			stop(t, l, base)
			if got, want := rec.get(UDP), []string{"0123456789", "x:1|c"}; !slices.Equal(got, want) {
				t.Errorf("received %q, want %q", got, want)
			}
			if got := l.Stats().UDPTruncated; got != 2 {
				t.Errorf("%d truncated, want 2", got)
			}
		})
	}
}

// TestUDPReadAllocs checks that the UDP read path does not allocate: a client
// writes a burst of datagrams, the reader hands them to the Handler (one read
// each, or a few batched reads), and the client waits for them all.
func TestUDPReadAllocs(t *testing.T) {
	for _, batch := range batches() {
		for _, burst := range []int{1, 16} {
			t.Run(fmt.Sprintf("batch=%d/burst=%d", batch, burst), func(t *testing.T) {
				testUDPReadAllocs(t, batch, burst)
			})
		}
	}
}

func testUDPReadAllocs(t *testing.T, batch, burst int) {
	h := &counter{signal: make(chan struct{}, 1)}
	l, base := startBatch(t, Config{UDP: "127.0.0.1:0", UDPReaders: 1}, h, reusePortSupported, batch)
	c := dialUDP(t, l)
	msg := []byte("foo.bar:1|c")
	timer := time.NewTimer(waitLimit)
	lost := false
	var sent uint64
	allocs := testing.AllocsPerRun(200, func() {
		for range burst {
			if _, err := c.Write(msg); err != nil {
				lost = true
				return
			}
		}
		sent += uint64(burst)
		for h.n.Load() < sent && !lost {
			timer.Reset(waitLimit)
			select {
			case <-h.signal:
			case <-timer.C:
				lost = true
			}
		}
	})
	timer.Stop()
	stop(t, l, base)
	if lost {
		t.Fatalf("%d datagrams of %d delivered", h.n.Load(), sent)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per burst of %d datagrams, want 0", allocs, burst)
	}
}

func TestKernelDrops(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	rec := newRecorder()
	rec.gate = make(chan struct{})
	// The smallest receive buffer holds a few datagrams; the reader is held in
	// Handle, so most are dropped.
	l, base := start(t, Config{UDP: "127.0.0.1:0", UDPReaders: 1, ReadBuffer: 1}, rec, reusePortSupported)
	before, err := l.KernelDrops()
	if err != nil {
		t.Fatal(err)
	}
	c := dialUDP(t, l)
	const n = 200
	sendUDP(t, []*net.UDPConn{c}, n)
	after, err := l.KernelDrops() // while the socket is open: a closed one leaves /proc/net/udp
	if err != nil {
		t.Fatal(err)
	}
	close(rec.gate)
	stop(t, l, base)

	delivered := uint64(len(rec.get(UDP)))
	if after-before != n-delivered || delivered == n {
		t.Errorf("%d kernel drops and %d delivered, want %d sent", after-before, delivered, n)
	}
}

func TestTCPFraming(t *testing.T) {
	tests := []struct {
		name        string
		maxLine     int
		writes      []string
		want        []string
		wantTooLong uint64
	}{
		{name: "line split across writes", writes: []string{"fo", "o:1|", "c\n"}, want: []string{"foo:1|c"}},
		{name: "lines in one write", writes: []string{"a:1|c\nb:2|c\nc:3|c\n"}, want: []string{"a:1|c", "b:2|c", "c:3|c"}},
		{name: "CRLF passes through", writes: []string{"a:1|c\r\nb:2|c\r\n"}, want: []string{"a:1|c\r", "b:2|c\r"}},
		{name: "final line without newline", writes: []string{"a:1|c\nlast:1|c"}, want: []string{"a:1|c", "last:1|c"}},
		{
			name:        "too long line dropped",
			maxLine:     16,
			writes:      []string{"short:1|c\n", strings.Repeat("x", 40), strings.Repeat("y", 40) + "\n", "next:1|c\n"},
			want:        []string{"short:1|c", "next:1|c"},
			wantTooLong: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			l, base := start(t, Config{TCP: "127.0.0.1:0", MaxLineBytes: tt.maxLine}, rec, reusePortSupported)
			c := dialTCP(t, l)
			if err := c.SetNoDelay(true); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.writes {
				if _, err := c.Write([]byte(w)); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			rec.waitLines(t, TCP, tt.want)
			eventually.Require(t, waitLimit, func() bool { return l.Stats().TCPActive == 0 }, "connection closed")
			stop(t, l, base)

			st := l.Stats()
			if st.LinesTooLong != tt.wantTooLong {
				t.Errorf("%d lines too long, want %d", st.LinesTooLong, tt.wantTooLong)
			}
			var n uint64
			for _, w := range tt.writes {
				n += uint64(len(w))
			}
			if st.TCPBytes != n || st.TCPAccepted != 1 || st.TCPPackets != uint64(len(rec.get(TCP))) {
				t.Errorf("stats %+v, want %d bytes, 1 connection, %d packets", st, n, len(rec.get(TCP)))
			}
		})
	}
}

// TestTCPLongLineKeepsConnection checks that after a too-long line the same
// connection still delivers lines.
func TestTCPLongLineKeepsConnection(t *testing.T) {
	rec := newRecorder()
	l, base := start(t, Config{TCP: "127.0.0.1:0", MaxLineBytes: 8}, rec, reusePortSupported)
	c := dialTCP(t, l)
	if _, err := c.Write([]byte(strings.Repeat("z", 100) + "\n")); err != nil {
		t.Fatal(err)
	}
	eventually.Require(t, waitLimit, func() bool { return l.Stats().LinesTooLong == 1 }, "line counted as too long")
	if _, err := c.Write([]byte("ok:1|c\n")); err != nil {
		t.Fatal(err)
	}
	rec.waitLines(t, TCP, []string{"ok:1|c"})
	stop(t, l, base)
}

func TestTCPIdleTimeout(t *testing.T) {
	rec := newRecorder()
	l, base := start(t, Config{TCP: "127.0.0.1:0", TCPIdleTimeout: 200 * time.Millisecond}, rec, reusePortSupported)
	c := dialTCP(t, l)
	if _, err := c.Write([]byte("a:1|c\n")); err != nil {
		t.Fatal(err)
	}
	rec.waitLines(t, TCP, []string{"a:1|c"})
	expectClosed(t, c)
	if got := l.Stats().TCPIdleClosed; got != 1 {
		t.Errorf("%d idle timeouts, want 1", got)
	}
	stop(t, l, base)
}

// expectClosed reads from c until the server closes it, failing the test if
// that takes longer than waitLimit.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 1))
	switch {
	case err == io.EOF, errors.Is(err, net.ErrClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("connection still open after %v", waitLimit)
	case err == nil:
		t.Fatal("read data, want the connection closed")
	default: // a reset also says the server closed it
	}
}

func TestTCPConnectionCap(t *testing.T) {
	rec := newRecorder()
	l, base := start(t, Config{TCP: "127.0.0.1:0", TCPMaxConnections: 2}, rec, reusePortSupported)
	for i := range 2 {
		c := dialTCP(t, l)
		if _, err := fmt.Fprintf(c, "c%d:1|c\n", i); err != nil {
			t.Fatal(err)
		}
		rec.waitPackets(t, TCP, i+1) // served, so counted among the open connections
	}
	extra := dialTCP(t, l)
	expectClosed(t, extra)
	st := l.Stats()
	if st.TCPRefused != 1 || st.TCPActive != 2 || st.TCPAccepted != 2 {
		t.Errorf("refused %d, active %d, accepted %d; want 1, 2, 2", st.TCPRefused, st.TCPActive, st.TCPAccepted)
	}
	stop(t, l, base)
}

// TestTCPStop checks that Stop delivers the complete lines a connection already
// sent, drops the partial one, and closes the connection. With a gated handler
// the connection's goroutine is busy when Stop is called, so the lines wait in
// the socket and only the drain can deliver them.
func TestTCPStop(t *testing.T) {
	for _, gated := range []bool{false, true} {
		t.Run(fmt.Sprintf("gated=%t", gated), func(t *testing.T) {
			rec := newRecorder()
			if gated {
				rec.gate = make(chan struct{})
			}
			l, base := start(t, Config{TCP: "127.0.0.1:0"}, rec, reusePortSupported)
			c := dialTCP(t, l)
			if _, err := c.Write([]byte("a:1|c\n")); err != nil {
				t.Fatal(err)
			}
			rec.waitPackets(t, TCP, 1)
			if _, err := c.Write([]byte("b:1|c\nc:1|c\npartial:1")); err != nil {
				t.Fatal(err)
			}

			stopped := make(chan error, 1)
			go func() { stopped <- l.Stop(context.Background()) }()
			if gated {
				eventually.Require(t, waitLimit, l.stopping.Load, "Stop called")
				close(rec.gate)
			}
			select {
			case err := <-stopped:
				if err != nil {
					t.Fatalf("Stop: %v", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("Stop did not return")
			}
			expectClosed(t, c)
			stop(t, l, base)
			if got, want := rec.lines(TCP), []string{"a:1|c", "b:1|c", "c:1|c"}; !slices.Equal(got, want) {
				t.Errorf("lines %q, want %q", got, want)
			}
		})
	}
}

// TestStopContext checks that Stop returns ctx's error when a Handler holds it
// up, and still closes the sockets.
func TestStopContext(t *testing.T) {
	rec := newRecorder()
	rec.gate = make(chan struct{})
	l, base := start(t, Config{UDP: "127.0.0.1:0", UDPReaders: 1}, rec, reusePortSupported)
	c := dialUDP(t, l)
	sendUDP(t, []*net.UDPConn{c}, 1)
	rec.waitPackets(t, UDP, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop: %v, want %v", err, context.Canceled)
	}
	close(rec.gate)
	stop(t, l, base) // a second Stop waits for the goroutines
}

func TestBindError(t *testing.T) {
	udpBusy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udpBusy.Close()
	tcpBusy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcpBusy.Close()
	// A free UDP port, bound by the listener before it fails on TCP, and which
	// it must close again.
	free, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.LocalAddr().String()
	_ = free.Close()

	tests := []struct {
		name     string
		cfg      Config
		wantAddr string
	}{
		{name: "udp in use", cfg: Config{UDP: udpBusy.LocalAddr().String(), UDPReaders: 2}, wantAddr: udpBusy.LocalAddr().String()},
		{name: "tcp in use", cfg: Config{UDP: freeAddr, TCP: tcpBusy.Addr().String()}, wantAddr: tcpBusy.Addr().String()},
		{name: "bad udp address", cfg: Config{UDP: "127.0.0.1"}, wantAddr: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			l := New(tt.cfg, newRecorder())
			err := l.Start()
			if err == nil || !strings.Contains(err.Error(), tt.wantAddr) {
				t.Fatalf("Start: %v, want an error naming %s", err, tt.wantAddr)
			}
			if l.UDPAddr() != nil || l.TCPAddr() != nil {
				t.Errorf("addresses %v, %v after a failed Start, want none", l.UDPAddr(), l.TCPAddr())
			}
			if got := runtime.NumGoroutine(); got > base {
				t.Errorf("%d goroutines after a failed Start, want %d", got, base)
			}
			if tt.cfg.UDP == freeAddr {
				c, err := net.ListenPacket("udp", freeAddr)
				if err != nil {
					t.Fatalf("the UDP socket was left open: %v", err)
				}
				_ = c.Close()
			}
		})
	}
}

// BenchmarkUDP measures the UDP read path over loopback: one client sends
// datagrams, keeping at most a window of them in flight, to one reader that
// hands them to a Handler counting them.
func BenchmarkUDP(b *testing.B) {
	for _, batch := range batches() {
		for _, size := range []int{32, 1400} {
			b.Run(fmt.Sprintf("batch=%d/%dB", batch, size), func(b *testing.B) {
				benchmarkUDP(b, batch, size)
			})
		}
	}
}

func benchmarkUDP(b *testing.B, batch, size int) {
	h := &counter{signal: make(chan struct{}, 1)}
	l := New(Config{UDP: "127.0.0.1:0", UDPReaders: 1}, h)
	l.udpBatch = batch
	if err := l.Start(); err != nil {
		b.Fatal(err)
	}
	defer l.Stop(context.Background())
	c, err := net.DialUDP("udp", nil, l.UDPAddr().(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := []byte(strings.Repeat("x", size))
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	// wait waits until at most inFlight of the sent datagrams are not received
	// yet.
	wait := func(sent, inFlight uint64) {
		for sent-h.n.Load() > inFlight {
			timer.Reset(waitLimit)
			select {
			case <-h.signal:
			case <-timer.C:
				b.Fatalf("received %d datagrams of %d sent: lost", h.n.Load(), sent)
			}
		}
	}

	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		wait(uint64(i), 63)
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	wait(uint64(b.N), 0)
}

// counter is a Handler counting packets and signalling each.
type counter struct {
	n      atomic.Uint64
	signal chan struct{}
}

func (c *counter) Handle(Transport, []byte) {
	c.n.Add(1)
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// TestTCPStopAcceptsQueued checks that Stop takes the connections the kernel
// completed but Accept had not taken yet: many clients connect, write a line
// and close just before Stop, and every line arrives. The accept loop is slowed
// a little so that it falls behind, as it does on a busy machine.
func TestTCPStopAcceptsQueued(t *testing.T) {
	const clients = 300
	rec := newRecorder()
	base := runtime.NumGoroutine()
	l := New(Config{TCP: "127.0.0.1:0"}, rec)
	l.afterAccept = func() { time.Sleep(time.Millisecond) }
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Stop(context.Background()) })
	addr := l.TCPAddr().String()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			_, err = fmt.Fprintf(c, "c%d:1|c\n", i)
			if cerr := c.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	stop(t, l, base)
	if got := len(rec.lines(TCP)); got != clients {
		t.Errorf("%d lines arrived, want %d; stats %+v", got, clients, l.Stats())
	}
	if s := l.Stats(); s.TCPResetAtShutdown != 0 {
		t.Errorf("%d connections reset at shutdown, want 0", s.TCPResetAtShutdown)
	}
}

// TestTCPStopCountsLost checks that what Stop cannot read is counted: the
// connections still queued when the accept drain's time runs out, and a
// connection that ends in a partial line.
func TestTCPStopCountsLost(t *testing.T) {
	const clients = 50
	rec := newRecorder()
	base := runtime.NumGoroutine()
	l := New(Config{TCP: "127.0.0.1:0"}, rec)
	l.afterAccept = func() { time.Sleep(5 * time.Millisecond) }
	l.acceptDrain = time.Millisecond // past it, the queue is only counted
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Stop(context.Background()) })
	partial := dialTCP(t, l)
	if _, err := partial.Write([]byte("whole:1|c\npartial:1")); err != nil {
		t.Fatal(err)
	}
	rec.waitPackets(t, TCP, 1)
	for i := range clients {
		c := dialTCP(t, l)
		if _, err := fmt.Fprintf(c, "c%d:1|c\n", i); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
	}
	stop(t, l, base)
	s := l.Stats()
	arrived := len(rec.lines(TCP)) - 1 // but "whole"
	if s.TCPResetAtShutdown == 0 || uint64(arrived)+s.TCPResetAtShutdown != clients+1 {
		t.Errorf("%d lines arrived and %d connections reset at shutdown, want %d in all, some reset",
			arrived, s.TCPResetAtShutdown, clients+1)
	}
}

// sessionRecorder is a Sessions: each Session records into the recorder,
// and the counts show how the listener used them.
type sessionRecorder struct {
	*recorder
	direct   atomic.Int64 // packets handed to the Handler itself
	sessions atomic.Int64 // Sessions made
	closed   atomic.Int64 // Sessions closed
	unsent   atomic.Int64 // packets of a Session not followed by a Flush before Close
}

func (r *sessionRecorder) Handle(t Transport, p []byte) {
	r.direct.Add(1)
	r.recorder.Handle(t, p)
}

func (r *sessionRecorder) NewSession() Session {
	r.sessions.Add(1)
	return &recordingSession{r: r}
}

type recordingSession struct {
	r      *sessionRecorder
	held   int  // packets since the last Flush
	closed bool // Handle or Flush after Close is an error
	bad    bool
}

func (s *recordingSession) Handle(t Transport, p []byte) {
	s.bad = s.bad || s.closed
	s.held++
	s.r.recorder.Handle(t, p)
}

func (s *recordingSession) Flush() {
	s.bad = s.bad || s.closed
	s.held = 0
}

func (s *recordingSession) Close() {
	if s.bad || s.closed {
		s.r.unsent.Add(1 << 20) // used after Close, or closed twice
	}
	s.closed = true
	s.r.unsent.Add(int64(s.held))
	s.r.closed.Add(1)
}

// TestSessions checks that a Sessions Handler gives each datagram reader a
// Session of its own that receives its datagrams, is flushed after them
// and closed at Stop, while TCP connections use the Handler itself.
func TestSessions(t *testing.T) {
	for _, batch := range batches() {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			rec := &sessionRecorder{recorder: newRecorder()}
			const readers = 3
			l, base := startBatch(t, Config{UDP: "127.0.0.1:0", TCP: "127.0.0.1:0", UDPReaders: readers}, rec, false, batch)
			var clients []*net.UDPConn
			for range 4 {
				clients = append(clients, dialUDP(t, l))
			}
			const n = 200
			sent := sendUDP(t, clients, n)
			rec.waitPackets(t, UDP, n)
			c, err := net.Dial("tcp", l.TCPAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("tcp.line:1|c\n")); err != nil {
				t.Fatal(err)
			}
			rec.waitPackets(t, TCP, 1)
			_ = c.Close()
			stop(t, l, base)

			if got := rec.get(UDP); !sameSet(got, sent) {
				t.Errorf("received %d datagrams differing from the %d sent", len(got), len(sent))
			}
			if got := rec.sessions.Load(); got != readers {
				t.Errorf("%d sessions, want one per reader (%d)", got, readers)
			}
			if got := rec.closed.Load(); got != readers {
				t.Errorf("%d sessions closed, want %d", got, readers)
			}
			if got := rec.unsent.Load(); got != 0 {
				t.Errorf("unsent = %d: packets not flushed before Close, or a Session used after Close", got)
			}
			if got := rec.direct.Load(); got != 1 {
				t.Errorf("%d packets handed to the Handler itself, want 1 (the TCP one)", got)
			}
		})
	}
}
