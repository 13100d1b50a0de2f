package listener

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// datagramConn is what a datagram reader needs of its socket; *net.UDPConn and
// *net.UnixConn have it.
type datagramConn interface {
	Read(b []byte) (int, error)
	SetReadDeadline(t time.Time) error
	syscall.Conn
}

// datagramReader is one datagram reader goroutine's state (UDP or unixgram):
// its socket (owned, or shared with the other readers), its reused receive
// slots and its counters.
type datagramReader struct {
	transport Transport // handed to the Handler with each datagram
	h         Session   // the goroutine's, set by readDatagrams
	conn      datagramConn
	bufs      [][]byte     // receive slots of MaxPacketBytes+1 bytes: a datagram that fills one was longer than MaxPacketBytes
	lens      []int        // bytes of the datagram in each slot, set by read
	mmsg      *mmsgReader  // batched reads (recvmmsg) into every slot; nil: one datagram per read, into bufs[0]
	drain     int          // bytes Stop's drain reads at most: what the socket could hold when Stop was called
	drained   *atomic.Bool // shared by the readers of conn: a reader drained it, the others need not

	packets, bytes, truncated, errors atomic.Uint64
	_                                 [64]byte // keeps the readers' counters on different cache lines
}

// newDatagramReader returns a reader of conn, whose datagrams it hands on as
// coming from t, with batch receive slots of slotBytes each, reading up to
// batch datagrams per system call where the system allows it (Linux), else one
// datagram into one slot.
func newDatagramReader(t Transport, conn datagramConn, batch, slotBytes int) (*datagramReader, error) {
	if batch < 1 || !mmsgSupported {
		batch = 1
	}
	// One allocation for every slot. Pages the kernel never writes to (the tail
	// of each slot, for datagrams shorter than MaxPacketBytes) are never
	// touched, so they cost address space, not memory.
	backing := make([]byte, batch*slotBytes)
	r := &datagramReader{transport: t, conn: conn, bufs: make([][]byte, batch), lens: make([]int, batch)}
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

// read reads at least one datagram into r's slots, blocking until one arrives,
// the read deadline passes or the socket is closed, and returns how many slots
// it filled (their sizes are in r.lens).
func (r *datagramReader) read() (int, error) {
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

// readDatagrams is a reader goroutine: it reads datagrams into its slots and
// hands each to the Handler, until Stop, then drains the socket.
func (l *Listener) readDatagrams(r *datagramReader) {
	r.h = l.session()
	defer r.h.Close()
	for {
		n, err := r.read()
		l.deliverDatagrams(r, n)
		if err == nil {
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if l.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
			// Reads on one socket take turns, so readers sharing it would drain
			// it one after the other, each waiting drainIdle: once one found it
			// empty, the others stop.
			if !r.drained.Load() {
				l.drainDatagrams(r)
			}
			return
		}
		r.errors.Add(1)
		l.errLog.Warn().Err(err).Str("transport", r.transport.String()).Msg("datagram read")
	}
}

// drainDatagrams reads what the socket already holds, with a short deadline per
// read, until a read finds the socket empty or r.drain bytes were read (so a
// sender that keeps sending cannot hold Stop up).
func (l *Listener) drainDatagrams(r *datagramReader) {
	defer r.drained.Store(true)
	for budget := r.drain; budget > 0; {
		if err := r.conn.SetReadDeadline(time.Now().Add(drainIdle)); err != nil {
			return
		}
		n, err := r.read()
		l.deliverDatagrams(r, n)
		if err != nil {
			return // normally the deadline: the socket is empty
		}
		for _, size := range r.lens[:n] {
			budget -= size + 1
		}
	}
}

// deliverDatagrams hands the datagrams in r's first n slots to the Handler,
// dropping those that were truncated.
func (l *Listener) deliverDatagrams(r *datagramReader, n int) {
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
		r.h.Handle(r.transport, r.bufs[i][:size])
	}
	if packets > 0 {
		r.h.Flush()
		r.packets.Add(packets)
		r.bytes.Add(bytes)
	}
	if truncated > 0 {
		r.truncated.Add(truncated)
	}
}
