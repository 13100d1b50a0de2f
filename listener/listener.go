// Package listener owns the StatsD sockets (UDP, TCP and a Unix datagram
// socket) and hands raw packets to a Handler. It knows nothing of the StatsD
// syntax beyond the '\n' framing of TCP streams.
package listener

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Transport names where a packet came from.
type Transport uint8

// The transports.
const (
	UDP Transport = iota + 1
	TCP
	Unixgram // a Unix datagram socket
)

// String returns "udp", "tcp" or "unixgram".
func (t Transport) String() string {
	switch t {
	case UDP:
		return "udp"
	case TCP:
		return "tcp"
	case Unixgram:
		return "unixgram"
	}
	return "unknown"
}

// Handler receives packets. For UDP and unixgram a packet is one datagram; for
// TCP it is one or more complete lines joined by '\n' (the last line's '\n'
// removed; some lines may be empty), never a partial line. packet is only valid
// during the call (its buffer is reused). Handle is called concurrently from
// several goroutines and must not block for long.
type Handler interface {
	Handle(t Transport, packet []byte)
}

// Sessions is a Handler that keeps state for each goroutine handing it
// packets: the listener gives each datagram reader (UDP, unixgram) a
// Session of its own, which only that goroutine calls, and closes it when
// the goroutine ends. So what a Session keeps stays on one core, with no
// lock shared with the other readers. TCP connections, which may be many,
// call the Handler itself.
type Sessions interface {
	Handler
	NewSession() Session
}

// Session is a Handler of one goroutine (see Sessions). Flush is called
// after the packets of each read are handled, before the goroutine waits
// for more; Close when the goroutine ends, after its last Flush.
type Session interface {
	Handle(t Transport, packet []byte)
	Flush()
	Close()
}

// session returns a Session of l's Handler for one goroutine: its own if
// the Handler is a Sessions, else the Handler itself.
func (l *Listener) session() Session {
	if s, ok := l.h.(Sessions); ok {
		return s.NewSession()
	}
	return plainSession{l.h}
}

// plainSession is the Session of a Handler that keeps no state of its own.
type plainSession struct{ Handler }

func (plainSession) Flush() {}
func (plainSession) Close() {}

// Defaults applied by New to zero Config fields.
const (
	DefaultReadBuffer        = 32 << 20
	DefaultMaxPacketBytes    = 65535
	DefaultMaxLineBytes      = 65536
	DefaultTCPIdleTimeout    = 60 * time.Second
	DefaultTCPMaxConnections = 1024
	DefaultUnixgramMode      = fs.FileMode(0o660)
)

// drainIdle is how long Stop's drain waits for more data on a socket before
// deciding it is empty.
const drainIdle = 50 * time.Millisecond

// Config configures a Listener. Zero numeric fields take the defaults above,
// but for UnixgramUID and UnixgramGID.
type Config struct {
	UDP               string        // "host:port"; "" disables
	TCP               string        // "host:port"; "" disables
	UDPReaders        int           // reader goroutines, 0: GOMAXPROCS (one SO_REUSEPORT socket each on Linux, else one socket)
	ReadBuffer        int           // SO_RCVBUF bytes requested per UDP socket (0: DefaultReadBuffer; < 0: the system default); the size granted is in Stats and logged
	MaxPacketBytes    int           // UDP datagram buffer size; a larger datagram is dropped and counted
	MaxLineBytes      int           // TCP: a line longer than this is dropped and counted; the connection stays usable
	TCPIdleTimeout    time.Duration // close a TCP connection idle this long
	TCPMaxConnections int           // past this, new connections are closed at once and counted
	Logger            zerolog.Logger

	// Unixgram is the file system path of a Unix datagram socket to read
	// datagrams from; "" disables it. Its parent directory must exist, and let
	// the process create a private directory in it for a moment (Start binds
	// there and moves the socket into place with its mode and owner set). A
	// socket file already there that no process reads (left by a crashed run)
	// is replaced; any other file there is an error. Stop removes the socket
	// file. UDPReaders goroutines read it, and MaxPacketBytes bounds its
	// datagrams as UDP's. Not supported on Windows.
	Unixgram string
	// UnixgramMode is the permission bits of the socket file (sending needs
	// write permission); 0: DefaultUnixgramMode.
	UnixgramMode fs.FileMode
	// UnixgramUID and UnixgramGID are the owner and group set on the socket
	// file; -1 leaves each as it is (the process's). Mind that 0, the zero
	// value, is root.
	UnixgramUID, UnixgramGID int
}

// Stats is a snapshot of a Listener's counters.
type Stats struct {
	UDPPackets   uint64 // datagrams handed to the Handler
	UDPBytes     uint64 // bytes of those datagrams
	UDPTruncated uint64 // datagrams longer than MaxPacketBytes, dropped

	TCPPackets    uint64 // chunks of complete lines handed to the Handler
	TCPBytes      uint64 // bytes read from TCP connections
	TCPAccepted   uint64 // connections accepted and served
	TCPActive     uint64 // connections open now
	TCPRefused    uint64 // connections closed at once because TCPMaxConnections were open
	TCPIdleClosed uint64 // connections closed after TCPIdleTimeout without data
	LinesTooLong  uint64 // TCP lines longer than MaxLineBytes, dropped
	// TCPResetAtShutdown counts the connections Stop closed before it had read
	// them to the end: still queued for Accept when the accept drain's time ran
	// out, still sending when their drain's budget or time ran out (or Stop's
	// ctx ended), or ending in a partial line. Their unread bytes are lost.
	TCPResetAtShutdown uint64

	UnixgramPackets   uint64 // unixgram datagrams handed to the Handler
	UnixgramBytes     uint64 // bytes of those datagrams
	UnixgramTruncated uint64 // unixgram datagrams longer than MaxPacketBytes, dropped

	ReadErrors         uint64 // failed reads and accepts (not counting timeouts and closes)
	ReceiveBufferBytes int    // SO_RCVBUF of the UDP sockets as getsockopt reports it (the smallest); 0 if unknown
}

// Listener reads StatsD packets from UDP, TCP and Unix datagram sockets and
// passes them to a Handler.
type Listener struct {
	cfg       Config
	h         Handler
	reusePort bool           // one SO_REUSEPORT socket per UDP reader
	udpBatch  int            // datagrams one UDP read takes at most (1: no batched reads)
	errLog    zerolog.Logger // cfg.Logger sampled, for errors that may repeat at packet rate
	// afterAccept, when set (by tests), runs after each successful Accept: a
	// slow accept loop.
	afterAccept func()
	// afterUnixgramBind, when set (by tests), runs once the unixgram socket is
	// bound, before its mode and owner are set: what another process could do
	// in that window happens there.
	afterUnixgramBind func()
	// acceptDrain bounds Stop's drain of the accept queue: acceptDrainMax but
	// in tests.
	acceptDrain time.Duration

	started  bool // Start was called
	stopping atomic.Bool
	quit     chan struct{} // closed by Stop
	wg       sync.WaitGroup

	mu         sync.Mutex // guards the fields below, set by Start
	udpConns   []*net.UDPConn
	udpReaders []*datagramReader
	rcvBuf     int
	tcpLn      *net.TCPListener
	tcpConns   map[net.Conn]struct{}
	unix       *unixgramSocket // nil when unixgram is disabled

	tcpPackets, tcpBytes    atomic.Uint64
	tcpAccepted, tcpRefused atomic.Uint64
	tcpIdle, tooLong        atomic.Uint64
	tcpReset                atomic.Uint64
	readErrors              atomic.Uint64
}

// New returns a Listener for cfg that passes packets to h. It binds nothing
// until Start.
func New(cfg Config, h Handler) *Listener {
	if cfg.UDPReaders <= 0 {
		cfg.UDPReaders = runtime.GOMAXPROCS(0)
	}
	if cfg.ReadBuffer == 0 {
		cfg.ReadBuffer = DefaultReadBuffer
	}
	if cfg.MaxPacketBytes <= 0 {
		cfg.MaxPacketBytes = DefaultMaxPacketBytes
	}
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = DefaultMaxLineBytes
	}
	if cfg.TCPIdleTimeout <= 0 {
		cfg.TCPIdleTimeout = DefaultTCPIdleTimeout
	}
	if cfg.TCPMaxConnections <= 0 {
		cfg.TCPMaxConnections = DefaultTCPMaxConnections
	}
	if cfg.UnixgramMode == 0 {
		cfg.UnixgramMode = DefaultUnixgramMode
	}
	return &Listener{
		cfg:         cfg,
		h:           h,
		reusePort:   reusePortSupported,
		udpBatch:    udpBatchDefault,
		acceptDrain: acceptDrainMax,
		errLog:      cfg.Logger.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second}),
		quit:        make(chan struct{}),
		tcpConns:    make(map[net.Conn]struct{}),
	}
}

// Start binds every configured socket and starts the reader goroutines. It
// returns once the sockets are bound; on failure it returns an error naming the
// address (or path) and closes whatever it bound. A Listener is started at most
// once, and Stop must not be called concurrently with Start.
func (l *Listener) Start() error {
	if l.started || l.stopping.Load() {
		return errors.New("listener: already started or stopped")
	}
	l.started = true
	var (
		conns   []*net.UDPConn
		readers []*datagramReader
		rcvBuf  int
		ln      *net.TCPListener
		unix    *unixgramSocket
	)
	// fail closes what was bound before err.
	fail := func(err error) error {
		for _, c := range conns {
			_ = c.Close()
		}
		if ln != nil {
			_ = ln.Close()
		}
		return err
	}
	if l.cfg.UDP != "" {
		var err error
		if conns, readers, rcvBuf, err = l.bindUDP(); err != nil {
			return err
		}
	}
	if l.cfg.TCP != "" {
		var err error
		addr, err := net.ResolveTCPAddr("tcp", l.cfg.TCP)
		if err != nil {
			return fail(fmt.Errorf("listener: listen on tcp %s: %w", l.cfg.TCP, err))
		}
		if ln, err = net.ListenTCP("tcp", addr); err != nil {
			return fail(fmt.Errorf("listener: listen on tcp %s: %w", l.cfg.TCP, err))
		}
		l.cfg.Logger.Info().Str("addr", ln.Addr().String()).Msg("listening on tcp")
	}
	if l.cfg.Unixgram != "" {
		var err error
		if unix, err = l.bindUnixgram(); err != nil {
			return fail(err)
		}
	}

	l.mu.Lock()
	l.udpConns, l.udpReaders, l.rcvBuf, l.tcpLn, l.unix = conns, readers, rcvBuf, ln, unix
	l.mu.Unlock()
	if unix != nil {
		readers = slices.Concat(readers, unix.readers) // a copy: l.udpReaders is left as it is
	}
	for _, r := range readers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.readDatagrams(r)
		}()
	}
	if ln != nil {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.acceptTCP(ln)
		}()
	}
	return nil
}

// UDPAddr returns the bound UDP address, or nil when UDP is disabled or not
// bound.
func (l *Listener) UDPAddr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.udpConns) == 0 {
		return nil
	}
	return l.udpConns[0].LocalAddr()
}

// TCPAddr returns the bound TCP address, or nil when TCP is disabled or not
// bound.
func (l *Listener) TCPAddr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tcpLn == nil {
		return nil
	}
	return l.tcpLn.Addr()
}

// UnixgramAddr returns the bound Unix datagram socket's address (its path), or
// nil when unixgram is disabled or not bound.
func (l *Listener) UnixgramAddr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unix == nil {
		return nil
	}
	// Not the socket's LocalAddr: it was bound under another name (see
	// bindUnixgram).
	return &net.UnixAddr{Name: l.unix.path, Net: "unixgram"}
}

// Stop stops accepting new connections, drains the data the sockets already
// hold (UDP and unixgram datagrams, the TCP connections queued in the kernel
// and not accepted yet, and the complete lines of each TCP connection, reading
// each socket until it stays empty for a moment), closes everything, removes
// the unixgram socket file and waits for every goroutine. If ctx ends first it
// closes everything at once and returns ctx's error without waiting.
func (l *Listener) Stop(ctx context.Context) error {
	if !l.stopping.Swap(true) {
		close(l.quit)
		l.mu.Lock()
		now := time.Now()
		if l.tcpLn != nil {
			// Accept returns at once and the accept loop drains the queue
			// before it closes the listener: closing it now would reset the
			// connections the kernel completed but Accept has not taken.
			_ = l.tcpLn.SetDeadline(now)
		}
		// Unblock every Read; each reader then drains its socket with short
		// deadlines of its own.
		for _, c := range l.udpConns {
			_ = c.SetReadDeadline(now)
		}
		if l.unix != nil {
			_ = l.unix.conn.SetReadDeadline(now)
		}
		for c := range l.tcpConns {
			_ = c.SetReadDeadline(now)
		}
		l.mu.Unlock()
	}

	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		l.closeAll()
		return nil
	case <-ctx.Done():
		l.closeAll()
		return fmt.Errorf("listener: stop: %w", ctx.Err())
	}
}

// closeAll closes every socket the Listener holds (readers blocked on them
// return) and removes the unixgram socket file.
func (l *Listener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.udpConns {
		_ = c.Close()
	}
	if l.tcpLn != nil {
		_ = l.tcpLn.Close()
	}
	for c := range l.tcpConns {
		_ = c.Close()
	}
	if l.unix != nil {
		l.unix.close(l.cfg.Logger)
	}
}

// Stats returns a snapshot of the counters.
func (l *Listener) Stats() Stats {
	s := Stats{
		TCPPackets:         l.tcpPackets.Load(),
		TCPBytes:           l.tcpBytes.Load(),
		TCPAccepted:        l.tcpAccepted.Load(),
		TCPRefused:         l.tcpRefused.Load(),
		TCPIdleClosed:      l.tcpIdle.Load(),
		LinesTooLong:       l.tooLong.Load(),
		TCPResetAtShutdown: l.tcpReset.Load(),
		ReadErrors:         l.readErrors.Load(),
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s.ReceiveBufferBytes = l.rcvBuf
	s.TCPActive = uint64(len(l.tcpConns))
	for _, r := range l.udpReaders {
		s.UDPPackets += r.packets.Load()
		s.UDPBytes += r.bytes.Load()
		s.UDPTruncated += r.truncated.Load()
		s.ReadErrors += r.errors.Load()
	}
	if l.unix != nil {
		for _, r := range l.unix.readers {
			s.UnixgramPackets += r.packets.Load()
			s.UnixgramBytes += r.bytes.Load()
			s.UnixgramTruncated += r.truncated.Load()
			s.ReadErrors += r.errors.Load()
		}
	}
	return s
}
