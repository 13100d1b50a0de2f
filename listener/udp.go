package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// udpReader is one UDP reader goroutine's state: its socket (owned, or shared with the other readers when
// SO_REUSEPORT is not available), its reused receive slots and its counters.
type udpReader struct {
	conn    *net.UDPConn
	bufs    [][]byte     // receive slots of MaxPacketBytes+1 bytes: a datagram that fills one was longer than MaxPacketBytes
	lens    []int        // bytes of the datagram in each slot, set by read
	mmsg    *mmsgReader  // batched reads (recvmmsg) into every slot; nil: one datagram per read, into bufs[0]
	drain   int          // bytes Stop's drain reads at most: what the socket could hold when Stop was called
	drained *atomic.Bool // shared by the readers of conn: a reader drained it, the others need not

	packets, bytes, truncated, errors atomic.Uint64
	_                                 [64]byte // keeps the readers' counters on different cache lines
}

// newUDPReader returns a reader of conn with batch receive slots of slotBytes each, reading up to batch datagrams
// per system call where the system allows it (Linux), else one datagram into one slot.
func newUDPReader(conn *net.UDPConn, batch, slotBytes int) (*udpReader, error) {
	if batch < 1 || !mmsgSupported {
		batch = 1
	}
	// One allocation for every slot. Pages the kernel never writes to (the tail of each slot, for datagrams
	// shorter than MaxPacketBytes) are never touched, so they cost address space, not memory.
	backing := make([]byte, batch*slotBytes)
	r := &udpReader{conn: conn, bufs: make([][]byte, batch), lens: make([]int, batch)}
	for i := range r.bufs {
		r.bufs[i] = backing[i*slotBytes : (i+1)*slotBytes : (i+1)*slotBytes]
	}
	if batch > 1 {
		m, err := newMmsgReader(conn, r.bufs, r.lens)
		if err != nil {
			return nil, err
		}
		r.mmsg = m
	}
	return r, nil
}

// read reads at least one datagram into r's slots, blocking until one arrives, the read deadline passes or the
// socket is closed, and returns how many slots it filled (their sizes are in r.lens).
func (r *udpReader) read() (int, error) {
	if r.mmsg != nil {
		return r.mmsg.read()
	}
	// Read, unlike ReadFrom, does not allocate an address per datagram.
	n, err := r.conn.Read(r.bufs[0])
	if n <= 0 {
		return 0, err
	}
	r.lens[0] = n
	return 1, err
}

// bindUDP binds the UDP sockets: one per reader with SO_REUSEPORT (all on the port the first one got, so port 0
// works), else one socket shared by every reader. It returns the sockets, the readers and the receive buffer size
// granted to the sockets; on failure it closes what it bound.
func (l *Listener) bindUDP() ([]*net.UDPConn, []*udpReader, int, error) {
	host, _, err := net.SplitHostPort(l.cfg.UDP)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("listener: udp address %q: %w", l.cfg.UDP, err)
	}
	sockets := 1
	var lc net.ListenConfig
	if l.reusePort && l.cfg.UDPReaders > 1 {
		sockets = l.cfg.UDPReaders
		lc.Control = setReusePort
	}

	var conns []*net.UDPConn
	addr := l.cfg.UDP
	for i := 0; i < sockets; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, nil, 0, fmt.Errorf("listener: listen on udp %s: %w", addr, err)
		}
		c := pc.(*net.UDPConn) // "udp" always gives a *net.UDPConn
		conns = append(conns, c)
		if i == 0 {
			addr = net.JoinHostPort(host, strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port))
		}
	}

	granted := 0
	for _, c := range conns {
		if l.cfg.ReadBuffer > 0 {
			if err := setReadBuffer(c, l.cfg.ReadBuffer); err != nil {
				l.cfg.Logger.Warn().Err(err).Int("requested", l.cfg.ReadBuffer).Msg("udp: cannot set receive buffer")
			}
		}
		n, err := readBufferSize(c)
		if err != nil {
			l.cfg.Logger.Debug().Err(err).Msg("udp: cannot read the receive buffer size")
			continue
		}
		if granted == 0 || n < granted {
			granted = n
		}
	}
	// Linux reports twice the size set (it counts its bookkeeping overhead in), so less than twice the request means
	// the kernel capped it at net.core.rmem_max.
	ev := l.cfg.Logger.Info()
	if l.cfg.ReadBuffer > 0 && granted > 0 && granted/2 < l.cfg.ReadBuffer {
		ev = l.cfg.Logger.Warn().Str("hint", "raise net.core.rmem_max, or run with CAP_NET_ADMIN")
	}
	ev.Str("addr", conns[0].LocalAddr().String()).Int("sockets", len(conns)).Int("readers", l.cfg.UDPReaders).
		Int("rcvbuf_requested", l.cfg.ReadBuffer).Int("rcvbuf_granted", granted).Msg("listening on udp")

	drain := granted
	if drain <= 0 {
		drain = 2 * max(l.cfg.ReadBuffer, DefaultReadBuffer)
	}
	drained := make([]atomic.Bool, len(conns))
	readers := make([]*udpReader, l.cfg.UDPReaders)
	for i := range readers {
		r, err := newUDPReader(conns[i%len(conns)], l.udpBatch, l.cfg.MaxPacketBytes+1)
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, nil, 0, fmt.Errorf("listener: udp %s: %w", conns[0].LocalAddr(), err)
		}
		r.drain, r.drained = drain, &drained[i%len(conns)]
		readers[i] = r
	}
	return conns, readers, granted, nil
}

// readUDP is a reader goroutine: it reads datagrams into its slots and hands each to the Handler, until Stop, then
// drains the socket.
func (l *Listener) readUDP(r *udpReader) {
	for {
		n, err := r.read()
		l.deliverUDP(r, n)
		if err == nil {
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if l.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
			// Reads on one socket take turns, so readers sharing it would drain it one after the other, each
			// waiting drainIdle: once one found it empty, the others stop.
			if !r.drained.Load() {
				l.drainUDP(r)
			}
			return
		}
		r.errors.Add(1)
		l.errLog.Warn().Err(err).Msg("udp: read")
	}
}

// drainUDP reads what the socket already holds, with a short deadline per read, until a read finds the socket
// empty or r.drain bytes were read (so a sender that keeps sending cannot hold Stop up).
func (l *Listener) drainUDP(r *udpReader) {
	defer r.drained.Store(true)
	for budget := r.drain; budget > 0; {
		if err := r.conn.SetReadDeadline(time.Now().Add(drainIdle)); err != nil {
			return
		}
		n, err := r.read()
		l.deliverUDP(r, n)
		if err != nil {
			return // normally the deadline: the socket is empty
		}
		for _, size := range r.lens[:n] {
			budget -= size + 1
		}
	}
}

// deliverUDP hands the datagrams in r's first n slots to the Handler, dropping those that were truncated.
func (l *Listener) deliverUDP(r *udpReader, n int) {
	var packets, bytes, truncated uint64
	for i, size := range r.lens[:n] {
		switch {
		case size <= 0:
			continue
		case size > l.cfg.MaxPacketBytes:
			truncated++
			continue
		}
		packets++
		bytes += uint64(size)
		l.h.Handle(UDP, r.bufs[i][:size])
	}
	if packets > 0 {
		r.packets.Add(packets)
		r.bytes.Add(bytes)
	}
	if truncated > 0 {
		r.truncated.Add(truncated)
	}
}
