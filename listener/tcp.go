package listener

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// tcpDrainDefault bounds Stop's drain of a TCP connection when its receive
// buffer size is unknown.
const tcpDrainDefault = 8 << 20

// acceptDrainMax bounds how long Stop keeps accepting the connections queued in
// the kernel; acceptShedMax bounds how many are then taken only to be counted
// and closed (Linux's somaxconn is 4096 by default).
const (
	acceptDrainMax = time.Second
	acceptShedMax  = 65536
)

// acceptTCP accepts connections until Stop, serving each in its own goroutine,
// or closing it at once when TCPMaxConnections are open. At Stop it drains the
// accept queue (see drainAccept) and closes ln.
func (l *Listener) acceptTCP(ln *net.TCPListener) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if l.stopping.Load() {
				// Stop moved the deadline to the past to end this Accept.
				l.drainAccept(ln)
				return
			}
			// Typically out of file descriptors: wait a little rather than
			// spin.
			l.readErrors.Add(1)
			l.errLog.Warn().Err(err).Msg("tcp: accept")
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.quit:
				t.Stop()
				l.drainAccept(ln)
				return
			}
			continue
		}
		backoff = 0
		if l.afterAccept != nil {
			l.afterAccept()
		}
		l.serveNew(c)
	}
}

// serveNew serves c in a goroutine of its own, or closes it at once when
// TCPMaxConnections are open.
func (l *Listener) serveNew(c net.Conn) {
	if !l.addConn(c) {
		l.tcpRefused.Add(1)
		_ = c.Close() // refused: nothing to report
		return
	}
	l.tcpAccepted.Add(1)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.serveTCP(c)
	}()
}

// drainAccept takes the connections the kernel has completed but Accept has not
// taken yet, which closing the listening socket would reset with the bytes
// their clients sent, and serves them (each is then drained as the connections
// open before Stop). It accepts until the queue stays empty for drainIdle, for
// acceptDrainMax (1 s) at most (clients that keep connecting cannot hold Stop
// up). Past that time it takes what is still queued only to count it as lost
// (TCPResetAtShutdown) and close it, then closes ln: a client that connects
// after that is refused.
func (l *Listener) drainAccept(ln *net.TCPListener) {
	defer func() { _ = ln.Close() }()
	end := time.Now().Add(l.acceptDrain)
	for {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		deadline := now.Add(drainIdle)
		if deadline.After(end) {
			deadline = end
		}
		if err := ln.SetDeadline(deadline); err != nil {
			return
		}
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(end) {
				return // the queue is empty
			}
			if errors.Is(err, net.ErrClosed) {
				return // Stop's ctx ended
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				l.readErrors.Add(1)
				l.errLog.Warn().Err(err).Msg("tcp: accept at shutdown")
			}
			break
		}
		if l.afterAccept != nil {
			l.afterAccept()
		}
		l.serveNew(c)
	}
	// The time ran out. The kernel's queue holds at most somaxconn connections:
	// take them to count them.
	for range acceptShedMax {
		if err := ln.SetDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
			return
		}
		c, err := ln.Accept()
		if err != nil {
			return
		}
		l.tcpReset.Add(1)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // what it sent is not read: say so to the client with a reset
		}
		_ = c.Close()
	}
}

// addConn registers c, unless TCPMaxConnections are open.
func (l *Listener) addConn(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tcpConns) >= l.cfg.TCPMaxConnections {
		return false
	}
	l.tcpConns[c] = struct{}{}
	return true
}

// serveTCP reads lines from c until EOF, an error, the idle timeout or Stop
// (then it drains c), and closes c.
func (l *Listener) serveTCP(c net.Conn) {
	defer func() {
		l.mu.Lock()
		delete(l.tcpConns, c)
		l.mu.Unlock()
		_ = c.Close() // the peer may be gone already
	}()
	f := newFramer(l.cfg.MaxLineBytes, func(chunk []byte) {
		l.tcpPackets.Add(1)
		l.h.Handle(TCP, chunk)
	}, func() {
		l.tooLong.Add(1)
	})
	for {
		if err := c.SetReadDeadline(time.Now().Add(l.cfg.TCPIdleTimeout)); err != nil {
			return
		}
		// Checked after setting the deadline: Stop sets stopping before it
		// moves the deadlines to the past, so either this sees it or the Read
		// below times out at once.
		if l.stopping.Load() {
			l.drainTCP(c, f)
			return
		}
		n, err := f.readOnce(c)
		l.tcpBytes.Add(uint64(n))
		switch {
		case err == nil:
			continue
		case err == io.EOF || errors.Is(err, net.ErrClosed):
			// The peer closed the connection, or Stop's ctx ended.
		case errors.Is(err, os.ErrDeadlineExceeded):
			if l.stopping.Load() {
				l.drainTCP(c, f)
				return
			}
			l.tcpIdle.Add(1)
			l.cfg.Logger.Debug().Str("remote", c.RemoteAddr().String()).Msg("tcp: idle connection closed")
		default:
			l.readErrors.Add(1)
			l.errLog.Debug().Err(err).Str("remote", c.RemoteAddr().String()).Msg("tcp: read")
		}
		return
	}
}

// drainTCP delivers the complete lines c already holds: it reads with a short
// deadline per read until a read finds nothing, EOF, or as many bytes as the
// socket's receive buffer holds at most (so a peer that keeps sending cannot
// hold Stop up). A final partial line is dropped, unless the peer closed the
// connection after it. A connection left with something unread (the budget ran
// out, a partial line, Stop's ctx ended) is counted in TCPResetAtShutdown.
func (l *Listener) drainTCP(c net.Conn, f *framer) {
	budget := tcpDrainDefault
	if sc, ok := c.(syscall.Conn); ok {
		if n, err := readBufferSize(sc); err == nil && n > 0 {
			budget = n
		}
	}
	for budget > 0 {
		if err := c.SetReadDeadline(time.Now().Add(drainIdle)); err != nil {
			l.tcpReset.Add(1)
			return
		}
		n, err := f.readOnce(c)
		l.tcpBytes.Add(uint64(n))
		switch {
		case err == nil:
			budget -= max(n, 1)
			continue
		case err == io.EOF:
			// Read to the end.
		case errors.Is(err, os.ErrDeadlineExceeded) && !f.pending():
			// Nothing more came: a client keeping its connection open, with
			// nothing unread.
		default:
			// A partial line, Stop's ctx closed the connection, or a read
			// error.
			l.tcpReset.Add(1)
		}
		return
	}
	l.tcpReset.Add(1) // still sending after the budget: the rest is not read
}
