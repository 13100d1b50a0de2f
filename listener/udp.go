package listener

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
)

// bindUDP binds the UDP sockets: one per reader with SO_REUSEPORT (all on the
// port the first one got, so port 0 works), else one socket shared by every
// reader. It returns the sockets, the readers and the receive buffer size
// granted to the sockets; on failure it closes what it bound.
func (l *Listener) bindUDP() ([]*net.UDPConn, []*datagramReader, int, error) {
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
	// Linux reports twice the size set (it counts its bookkeeping overhead in),
	// so less than twice the request means the kernel capped it at
	// net.core.rmem_max.
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
	readers := make([]*datagramReader, l.cfg.UDPReaders)
	for i := range readers {
		r, err := newDatagramReader(UDP, conns[i%len(conns)], l.udpBatch, l.cfg.MaxPacketBytes+1)
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
