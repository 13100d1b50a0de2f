package listener

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// tcpDrainDefault bounds Stop's drain of a TCP connection when its receive buffer size is unknown.
const tcpDrainDefault = 8 << 20

// acceptTCP accepts connections until the listener is closed, serving each in its own goroutine, or closing it at
// once when TCPMaxConnections are open.
func (l *Listener) acceptTCP(ln net.Listener) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.stopping.Load() {
				return
			}
			// Typically out of file descriptors: wait a little rather than spin.
			l.readErrors.Add(1)
			l.errLog.Warn().Err(err).Msg("tcp: accept")
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.quit:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		if !l.addConn(c) {
			l.tcpRefused.Add(1)
			_ = c.Close() // refused: nothing to report
			continue
		}
		l.tcpAccepted.Add(1)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.serveTCP(c)
		}()
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

// serveTCP reads lines from c until EOF, an error, the idle timeout or Stop (then it drains c), and closes c.
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
		// Checked after setting the deadline: Stop sets stopping before it moves the deadlines to the past, so
		// either this sees it or the Read below times out at once.
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

// drainTCP delivers the complete lines c already holds: it reads with a short deadline per read until a read finds
// nothing, EOF, or as many bytes as the socket's receive buffer holds at most (so a peer that keeps sending cannot
// hold Stop up). A final partial line is dropped, unless the peer closed the connection after it.
func (l *Listener) drainTCP(c net.Conn, f *framer) {
	budget := tcpDrainDefault
	if sc, ok := c.(syscall.Conn); ok {
		if n, err := readBufferSize(sc); err == nil && n > 0 {
			budget = n
		}
	}
	for budget > 0 {
		if err := c.SetReadDeadline(time.Now().Add(drainIdle)); err != nil {
			return
		}
		n, err := f.readOnce(c)
		l.tcpBytes.Add(uint64(n))
		if err != nil {
			return
		}
		budget -= max(n, 1)
	}
}
