package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/parser"
)

// sink receives what the senders send over UDP or TCP on 127.0.0.1 and tallies
// the lines with the daemon's parser.
type sink struct {
	addr string
	done chan struct{} // closed when the sink stops: UDP, at the end of the test; TCP, once every connection closed

	mu      sync.Mutex
	tally   *tally
	packets int
	bad     []string
}

func newSink(t *testing.T, proto string, names, wantConns int, prefix string) *sink {
	t.Helper()
	s := &sink{tally: newTally(names), done: make(chan struct{})}
	switch proto {
	case "udp":
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = pc.Close()
			<-s.done
		})
		s.addr = pc.LocalAddr().String()
		go func() {
			defer close(s.done)
			buf := make([]byte, 65536)
			for {
				n, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				s.packet(buf[:n], prefix)
			}
		}()
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		s.addr = ln.Addr().String()
		go func() {
			defer close(s.done)
			var wg sync.WaitGroup
			for range wantConns {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					sc := bufio.NewScanner(c)
					for sc.Scan() {
						s.packet(sc.Bytes(), prefix)
					}
				}()
			}
			wg.Wait()
		}()
	}
	return s
}

// received returns the number of packets (UDP datagrams, TCP lines) received.
func (s *sink) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.packets
}

// packet tallies the lines of p.
func (s *sink) packet(p []byte, prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.packets++
	for l := range strings.SplitSeq(string(p), "\n") {
		ms, err := parser.Parse([]byte(l), nil)
		if err != nil || len(ms) != 1 {
			s.bad = append(s.bad, l)
			continue
		}
		typ, i, ok := parseName(prefix, string(ms[0].Name))
		if !ok {
			s.bad = append(s.bad, l)
			continue
		}
		s.tally.add(line{typ: typ, name: i, value: int64(ms[0].Value)}, 1/ms[0].Rate)
	}
}

func TestSend(t *testing.T) {
	tests := []struct {
		name        string
		proto       string
		conns       int
		count       uint64
		perPacket   int
		wantPackets uint64
	}{
		{name: "udp", proto: "udp", conns: 1, count: 1000, perPacket: 10, wantPackets: 100},
		{name: "udp, uneven split", proto: "udp", conns: 3, count: 1001, perPacket: 7, wantPackets: 48 + 48 + 48},
		{name: "udp, packets cut at maxDatagram", proto: "udp", conns: 1, count: 5000, perPacket: 5000, wantPackets: 0},
		{name: "tcp", proto: "tcp", conns: 2, count: 2000, perPacket: 50, wantPackets: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen := genConfig{prefix: "load.t", names: 9, tags: 3, rate: 0.5, conns: tt.conns, mix: mix{2, 1, 1, 1}}
			s := newSink(t, tt.proto, gen.names, tt.conns, gen.prefix)
			cfg := runConfig{gen: gen, proto: tt.proto, linesPerPacket: tt.perPacket, count: tt.count}
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			want, st, _, err := send(ctx, cfg, s.addr)
			if err != nil {
				t.Fatal(err)
			}
			if tt.proto == "tcp" {
				select {
				case <-s.done:
				case <-time.After(waitLimit):
					t.Fatal("the sink did not finish")
				}
			}
			if tt.proto == "udp" {
				eventually.Require(t, waitLimit, func() bool { return uint64(s.received()) >= st.packets }, "%d datagrams received", st.packets)
			}
			if st.lines != tt.count || st.errors != 0 {
				t.Errorf("sent %d lines with %d errors, want %d and none", st.lines, st.errors, tt.count)
			}
			if tt.wantPackets > 0 && st.packets != tt.wantPackets {
				t.Errorf("sent %d packets, want %d", st.packets, tt.wantPackets)
			}
			if tt.wantPackets == 0 && st.packets < 2 {
				t.Errorf("sent %d packets, want the lines cut into several datagrams", st.packets)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.bad) > 0 {
				t.Errorf("%d lines the parser refused, the first %q", len(s.bad), s.bad[0])
			}
			// UDP on loopback may drop under load; with this little it must
			// not, and a drop shows as a mismatch.
			if !equalTally(s.tally, want) {
				t.Errorf("received %+v, sent %+v", s.tally, want)
			}
			if tt.proto == "udp" && uint64(s.packets) != st.packets {
				t.Errorf("received %d datagrams, sent %d", s.packets, st.packets)
			}
		})
	}
}

// TestSendRefused checks that a sender with nobody to talk to reports an error
// rather than loop forever.
func TestSendRefused(t *testing.T) {
	tests := []struct{ proto string }{{"udp"}, {"tcp"}}
	for _, tt := range tests {
		t.Run(tt.proto, func(t *testing.T) {
			var addr string
			if tt.proto == "udp" {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr = pc.LocalAddr().String()
				_ = pc.Close() // a closed port answers ICMP unreachable: writes fail with ECONNREFUSED
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr = ln.Addr().String()
				_ = ln.Close()
			}
			gen := genConfig{prefix: "load", names: 2, rate: 1, conns: 1, mix: mix{counterType: 1}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
			defer cancel()
			_, st, _, err := send(ctx, runConfig{gen: gen, proto: tt.proto, linesPerPacket: 1, count: 1_000_000}, addr)
			if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("send: %v, want a refusal", err)
			}
			if st.lines >= 1_000_000 {
				t.Errorf("%d lines sent to nobody, want the sender to give up", st.lines)
			}
		})
	}
}
