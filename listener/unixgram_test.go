//go:build unix

package listener

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libratod/libratod/internal/eventually"
	"github.com/libratod/libratod/internal/testproc"
)

// unixgramConfig is a Config with only a unixgram socket, at a fresh path, its
// owner left as it is.
func unixgramConfig(t *testing.T, readers int) Config {
	t.Helper()
	return Config{Unixgram: filepath.Join(t.TempDir(), "statsd.sock"), UDPReaders: readers, UnixgramUID: -1, UnixgramGID: -1}
}

// dialUnixgram returns a client of the unixgram socket at path, closed at the
// end of the test.
func dialUnixgram(t testing.TB, path string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sendUnixgram sends n datagrams "c<client>.m<first+i>:1|c" round-robin over
// clients and returns them. A write blocks while the socket's queue is full
// (net.unix.max_dgram_qlen datagrams).
func sendUnixgram(t *testing.T, clients []*net.UnixConn, first, n int) []string {
	t.Helper()
	var sent []string
	for i := first; i < first+n; i++ {
		c := i % len(clients)
		msg := fmt.Sprintf("c%d.m%d:1|c", c, i)
		if _, err := clients[c].Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, msg)
	}
	return sent
}

// queueLimit returns how many datagrams a Unix datagram socket queues before
// its senders block, at most max: tests that hold the readers up send no more
// than this.
func queueLimit(t *testing.T, max int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/unix/max_dgram_qlen")
	if err != nil {
		return min(10, max) // the Linux default; other systems queue by bytes, which a few small datagrams fit
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 1 {
		t.Fatalf("max_dgram_qlen %q", b)
	}
	return min(n, max)
}

// TestUnixgramDelivers sends datagrams from several clients and checks each is
// delivered once, the counters, the address and the default mode of the socket
// file.
func TestUnixgramDelivers(t *testing.T) {
	for _, readers := range []int{1, 4} {
		for _, batch := range batches() {
			t.Run(fmt.Sprintf("readers=%d/batch=%d", readers, batch), func(t *testing.T) {
				rec := newRecorder()
				cfg := unixgramConfig(t, readers)
				l, base := startBatch(t, cfg, rec, reusePortSupported, batch)
				if a := l.UnixgramAddr(); a == nil || a.String() != cfg.Unixgram || a.Network() != "unixgram" {
					t.Errorf("UnixgramAddr() = %v, want unixgram %s", a, cfg.Unixgram)
				}
				if l.UDPAddr() != nil || l.TCPAddr() != nil {
					t.Errorf("addresses %v, %v, want none", l.UDPAddr(), l.TCPAddr())
				}
				if got := len(l.unix.readers); got != readers {
					t.Errorf("%d readers, want %d", got, readers)
				}
				fi, err := os.Lstat(cfg.Unixgram)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != DefaultUnixgramMode {
					t.Errorf("socket file mode %v, want a socket with %v", fi.Mode(), DefaultUnixgramMode)
				}

				var clients []*net.UnixConn
				for range 4 {
					clients = append(clients, dialUnixgram(t, cfg.Unixgram))
				}
				const n = 400
				sent := sendUnixgram(t, clients, 0, n)
				rec.waitPackets(t, Unixgram, n)
				stop(t, l, base)

				if got := rec.get(Unixgram); !sameSet(got, sent) {
					t.Errorf("received %d datagrams differing from the %d sent", len(got), len(sent))
				}
				var bytes uint64
				for _, m := range sent {
					bytes += uint64(len(m))
				}
				st := l.Stats()
				if st.UnixgramPackets != n || st.UnixgramBytes != bytes || st.UDPPackets != 0 || st.ReadErrors != 0 {
					t.Errorf("stats %+v, want %d unixgram packets, %d bytes, nothing else", st, n, bytes)
				}
			})
		}
	}
}

// TestUnixgramModeAndOwner checks that the mode and owner asked for are those
// of the socket file.
func TestUnixgramModeAndOwner(t *testing.T) {
	uid, gid := os.Getuid(), os.Getgid()
	tests := []struct {
		name               string
		mode               fs.FileMode
		uid, gid           int
		wantMode           fs.FileMode
		wantUID, wantGID   int
		wantErr            bool
		onlyRoot, onlyUser bool
	}{
		{name: "default mode, owner left", uid: -1, gid: -1, wantMode: 0o660, wantUID: uid, wantGID: gid},
		{name: "owner only", mode: 0o600, uid: -1, gid: -1, wantMode: 0o600, wantUID: uid, wantGID: gid},
		{name: "everyone", mode: 0o666, uid: -1, gid: -1, wantMode: 0o666, wantUID: uid, wantGID: gid},
		{name: "bits past the permissions ignored", mode: fs.ModeSetgid | 0o640, uid: -1, gid: -1, wantMode: 0o640, wantUID: uid, wantGID: gid},
		{name: "own ids set", mode: 0o620, uid: uid, gid: gid, wantMode: 0o620, wantUID: uid, wantGID: gid},
		{name: "group only", uid: -1, gid: gid, wantMode: 0o660, wantUID: uid, wantGID: gid},
		{name: "other user and group", uid: 65534, gid: 65533, wantMode: 0o660, wantUID: 65534, wantGID: 65533, onlyRoot: true},
		{name: "other group", uid: -1, gid: 65533, wantMode: 0o660, wantUID: uid, wantGID: 65533, onlyRoot: true},
		{name: "root refused to a user", uid: 0, gid: -1, wantErr: true, onlyUser: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.onlyRoot && uid != 0 {
				t.Skip("only root can give a file away")
			}
			if tt.onlyUser && testproc.AsNobody(t) {
				return // root can give a file away
			}
			cfg := unixgramConfig(t, 1)
			cfg.UnixgramMode, cfg.UnixgramUID, cfg.UnixgramGID = tt.mode, tt.uid, tt.gid
			l := New(cfg, newRecorder())
			err := l.Start()
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), cfg.Unixgram) {
					t.Errorf("Start: %v, want an error naming %s", err, cfg.Unixgram)
				}
				if _, err := os.Lstat(cfg.Unixgram); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("socket file left after a failed Start: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Stop(context.Background())
			fi, err := os.Lstat(cfg.Unixgram)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode().Perm() != tt.wantMode || int(st.Uid) != tt.wantUID || int(st.Gid) != tt.wantGID {
				t.Errorf("socket file %v %d:%d, want %v %d:%d", fi.Mode().Perm(), st.Uid, st.Gid, tt.wantMode, tt.wantUID, tt.wantGID)
			}
		})
	}
}

// TestUnixgramExistingPath checks what Start does with what is already at the
// socket's path: a stale socket is replaced, anything else is refused with an
// error naming the path and left as it was.
func TestUnixgramExistingPath(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string) // puts something at path
		wantErr string                          // "": Start succeeds
	}{
		{name: "nothing", setup: func(*testing.T, string) {}},
		{name: "stale socket", setup: func(t *testing.T, path string) {
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			_ = c.Close() // closing a datagram socket leaves its file
		}},
		{name: "socket in use", wantErr: "another process is reading", setup: func(t *testing.T, path string) {
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
		}},
		{name: "stream socket in use", wantErr: "cannot tell whether", setup: func(t *testing.T, path string) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ln.Close() })
		}},
		{name: "regular file", wantErr: "is a regular file, not a socket", setup: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "directory", wantErr: "is a directory, not a socket", setup: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "symbolic link to a stale socket", wantErr: "is a symbolic link, not a socket", setup: func(t *testing.T, path string) {
			target := path + ".target"
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: target, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := unixgramConfig(t, 1)
			tt.setup(t, cfg.Unixgram)
			before, _ := os.Lstat(cfg.Unixgram)
			rec := newRecorder()
			l := New(cfg, rec)
			err := l.Start()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), cfg.Unixgram) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Start: %v, want an error naming %s and saying %q", err, cfg.Unixgram, tt.wantErr)
				}
				if after, err := os.Lstat(cfg.Unixgram); err != nil || !os.SameFile(before, after) {
					t.Errorf("the file at the path was changed: %v", err)
				}
				if l.UnixgramAddr() != nil {
					t.Errorf("UnixgramAddr() = %v after a failed Start", l.UnixgramAddr())
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			defer l.Stop(context.Background())
			sendUnixgram(t, []*net.UnixConn{dialUnixgram(t, cfg.Unixgram)}, 0, 1)
			rec.waitPackets(t, Unixgram, 1)
		})
	}
}

// TestUnixgramBindError checks that a unixgram socket that cannot be bound
// fails Start with an error naming the path, and that the UDP and TCP sockets
// bound before it are closed again.
func TestUnixgramBindError(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{name: "no parent directory", path: filepath.Join(dir, "missing", "statsd.sock"), want: "directory " + filepath.Join(dir, "missing") + " does not exist"},
		{name: "path too long", path: filepath.Join(dir, strings.Repeat("x", 120)), want: "listen on unixgram"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			udp, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			udpAddr := udp.LocalAddr().String()
			_ = udp.Close()
			tcp, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			tcpAddr := tcp.Addr().String()
			_ = tcp.Close()

			base := runtime.NumGoroutine()
			l := New(Config{UDP: udpAddr, TCP: tcpAddr, Unixgram: tt.path, UnixgramUID: -1, UnixgramGID: -1}, newRecorder())
			err = l.Start()
			if err == nil || !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start: %v, want an error naming %s and saying %q", err, tt.path, tt.want)
			}
			if got := runtime.NumGoroutine(); got > base {
				t.Errorf("%d goroutines after a failed Start, want %d", got, base)
			}
			c, err := net.ListenPacket("udp", udpAddr)
			if err != nil {
				t.Fatalf("the UDP socket was left open: %v", err)
			}
			_ = c.Close()
			ln, err := net.Listen("tcp", tcpAddr)
			if err != nil {
				t.Fatalf("the TCP socket was left open: %v", err)
			}
			_ = ln.Close()
		})
	}
}

// TestUnixgramStopDrains sends datagrams and stops at once: every datagram sent
// before Stop must be delivered. With a gated handler the readers are busy when
// Stop is called, so the datagrams wait in the socket and only the drain can
// deliver them.
func TestUnixgramStopDrains(t *testing.T) {
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
				rec := newRecorder()
				if tt.gated {
					rec.gate = make(chan struct{})
				}
				cfg := unixgramConfig(t, tt.readers)
				l, base := startBatch(t, cfg, rec, reusePortSupported, batch)
				c := dialUnixgram(t, cfg.Unixgram)
				var sent []string
				if tt.gated {
					release := sync.OnceFunc(func() { close(rec.gate) })
					t.Cleanup(release) // before the Stop of startBatch, should the test fail first
					// A reader takes the first datagram and blocks in Handle;
					// what follows waits in the socket, or in the other
					// readers, blocked in Handle too. No more than the socket
					// queues are sent, so that no write blocks.
					sent = sendUnixgram(t, []*net.UnixConn{c}, 0, 1)
					rec.waitPackets(t, Unixgram, 1)
					sent = append(sent, sendUnixgram(t, []*net.UnixConn{c}, 1, queueLimit(t, 8))...)
					stopped := make(chan error, 1)
					go func() { stopped <- l.Stop(context.Background()) }()
					eventually.Require(t, waitLimit, l.stopping.Load, "Stop called")
					release()
					select {
					case err := <-stopped:
						if err != nil {
							t.Fatalf("Stop: %v", err)
						}
					case <-time.After(waitLimit):
						t.Fatal("Stop did not return")
					}
				} else {
					sent = sendUnixgram(t, []*net.UnixConn{c}, 0, 300)
				}
				stop(t, l, base)

				if got := rec.get(Unixgram); !sameSet(got, sent) {
					t.Errorf("received %d datagrams, want the %d sent", len(got), len(sent))
				}
				if got := l.Stats().UnixgramPackets; got != uint64(len(sent)) {
					t.Errorf("%d packets counted, want %d", got, len(sent))
				}
			})
		}
	}
}

// TestUnixgramStopRemovesFile checks that Stop removes the socket file, but not
// a file that has replaced it since.
func TestUnixgramStopRemovesFile(t *testing.T) {
	for _, replaced := range []bool{false, true} {
		t.Run(fmt.Sprintf("replaced=%t", replaced), func(t *testing.T) {
			cfg := unixgramConfig(t, 2)
			l, base := start(t, cfg, newRecorder(), reusePortSupported)
			if replaced {
				if err := os.Remove(cfg.Unixgram); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(cfg.Unixgram, []byte("someone else's"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			stop(t, l, base)
			_, err := os.Lstat(cfg.Unixgram)
			if replaced && err != nil {
				t.Errorf("Stop removed a file that was not its socket: %v", err)
			}
			if !replaced && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket file after Stop: %v, want it removed", err)
			}
			if l.UnixgramAddr() == nil {
				t.Error("UnixgramAddr() = nil after Stop, want the address it had")
			}
		})
	}
}

// TestUnixgramTooLongDropped checks that a datagram longer than MaxPacketBytes
// is dropped and counted, and that the others are delivered.
func TestUnixgramTooLongDropped(t *testing.T) {
	for _, batch := range batches() {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			rec := newRecorder()
			cfg := unixgramConfig(t, 1)
			cfg.MaxPacketBytes = 10
			l, base := startBatch(t, cfg, rec, reusePortSupported, batch)
			c := dialUnixgram(t, cfg.Unixgram)
			for _, m := range []string{"0123456789x", "0123456789", "x:1|c", strings.Repeat("y", 70000)} {
				if _, err := c.Write([]byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			rec.waitPackets(t, Unixgram, 2)
			eventually.Require(t, waitLimit, func() bool { return l.Stats().UnixgramTruncated == 2 }, "two truncated")
			stop(t, l, base)
			if got, want := rec.get(Unixgram), []string{"0123456789", "x:1|c"}; !slices.Equal(got, want) {
				t.Errorf("received %q, want %q", got, want)
			}
			if st := l.Stats(); st.UnixgramTruncated != 2 || st.UnixgramPackets != 2 || st.UnixgramBytes != 15 || st.UDPTruncated != 0 {
				t.Errorf("stats %+v, want 2 truncated, 2 packets of 15 bytes", st)
			}
		})
	}
}

// TestUnixgramReadAllocs checks that the unixgram read path does not allocate:
// a client writes a burst of datagrams, the reader hands them to the Handler,
// and the client waits for them all.
func TestUnixgramReadAllocs(t *testing.T) {
	for _, batch := range batches() {
		for _, burst := range []int{1, queueLimit(t, 8)} {
			t.Run(fmt.Sprintf("batch=%d/burst=%d", batch, burst), func(t *testing.T) {
				h := &counter{signal: make(chan struct{}, 1)}
				cfg := unixgramConfig(t, 1)
				l, base := startBatch(t, cfg, h, reusePortSupported, batch)
				c := dialUnixgram(t, cfg.Unixgram)
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
			})
		}
	}
}

// BenchmarkUnixgram measures the unixgram read path: one client sends datagrams
// (its writes block while the socket's queue is full) to one reader that hands
// them to a Handler counting them.
func BenchmarkUnixgram(b *testing.B) {
	for _, batch := range batches() {
		for _, size := range []int{32, 1400} {
			b.Run(fmt.Sprintf("batch=%d/%dB", batch, size), func(b *testing.B) {
				h := &counter{signal: make(chan struct{}, 1)}
				l := New(Config{Unixgram: filepath.Join(b.TempDir(), "s.sock"), UDPReaders: 1, UnixgramUID: -1, UnixgramGID: -1}, h)
				l.udpBatch = batch
				if err := l.Start(); err != nil {
					b.Fatal(err)
				}
				defer l.Stop(context.Background())
				c := dialUnixgram(b, l.UnixgramAddr().String())
				msg := []byte(strings.Repeat("x", size))
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
				}
				timer := time.NewTimer(waitLimit)
				defer timer.Stop()
				for h.n.Load() < uint64(b.N) {
					select {
					case <-h.signal:
					case <-timer.C:
						b.Fatalf("received %d datagrams of %d sent", h.n.Load(), b.N)
					}
				}
			})
		}
	}
}

// TestUnixgramNoWindow checks that the socket file never appears at its path
// with another mode than the one asked for, and that a symbolic link planted at
// the path while Start binds is neither followed (its target keeps its mode)
// nor replaced.
func TestUnixgramNoWindow(t *testing.T) {
	t.Run("mode from the start", func(t *testing.T) {
		cfg := unixgramConfig(t, 1)
		cfg.UnixgramMode = 0o602 // no umask gives this
		l := New(cfg, newRecorder())
		var seen []string
		l.afterUnixgramBind = func() {
			if fi, err := os.Lstat(cfg.Unixgram); err == nil && fi.Mode().Perm() != 0o602 {
				seen = append(seen, fi.Mode().String())
			}
		}
		if err := l.Start(); err != nil {
			t.Fatal(err)
		}
		defer l.Stop(context.Background())
		if len(seen) > 0 {
			t.Errorf("the socket file was visible at its path as %v before its mode was set", seen)
		}
		fi, err := os.Lstat(cfg.Unixgram)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o602 {
			t.Errorf("socket file %v, want a socket of mode 0602", fi.Mode())
		}
		if entries, err := os.ReadDir(filepath.Dir(cfg.Unixgram)); err != nil || len(entries) != 1 {
			t.Errorf("the directory holds %v (%v), want only the socket", entries, err)
		}
		c := dialUnixgram(t, cfg.Unixgram)
		if _, err := c.Write([]byte("a:1|c")); err != nil {
			t.Errorf("send to the socket at its path: %v", err)
		}
		if a := l.UnixgramAddr(); a == nil || a.String() != cfg.Unixgram {
			t.Errorf("UnixgramAddr %v, want %s", a, cfg.Unixgram)
		}
	})
	t.Run("symlink planted", func(t *testing.T) {
		cfg := unixgramConfig(t, 1)
		cfg.UnixgramMode = 0o666
		cfg.UnixgramUID, cfg.UnixgramGID = os.Getuid(), os.Getgid()
		target := filepath.Join(t.TempDir(), "precious")
		if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		l := New(cfg, newRecorder())
		l.afterUnixgramBind = func() {
			// An attacker with write access to the directory swaps the socket
			// for a link to a file of its choice.
			_ = os.Remove(cfg.Unixgram)
			if err := os.Symlink(target, cfg.Unixgram); err != nil {
				t.Error(err)
			}
		}
		err := l.Start()
		if err == nil {
			defer l.Stop(context.Background())
		}
		fi, serr := os.Stat(target)
		if serr != nil {
			t.Fatal(serr)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("the link's target got mode %v: the link was followed", fi.Mode().Perm())
		}
		if err == nil || !strings.Contains(err.Error(), cfg.Unixgram) {
			t.Errorf("Start: %v, want an error naming %s", err, cfg.Unixgram)
		}
		if lfi, err := os.Lstat(cfg.Unixgram); err != nil || lfi.Mode().Type() != fs.ModeSymlink {
			t.Errorf("the link at the path was replaced or removed: %v %v", lfi, err)
		}
	})
}
