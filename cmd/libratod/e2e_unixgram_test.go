//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/internal/testproc"
)

// TestEndToEndUnixgram runs a daemon listening on a Unix datagram socket only,
// sends counters from several clients and checks that Librato gets exactly
// their totals, and the socket file's life: its mode and owner while the daemon
// runs, gone after.
func TestEndToEndUnixgram(t *testing.T) {
	fake := newFakeLibrato(t)
	cfg := testConfig(fake.URL, "tagged")
	cfg.Listen.UDP, cfg.Listen.TCP = "", ""
	cfg.Listen.Unixgram = filepath.Join(t.TempDir(), "statsd.sock")
	cfg.Listen.UnixgramMode = "0620"
	cfg.Listen.UnixgramOwner = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	cfg.Log.Level = "info" // for the "libratod started" line
	d, stop := startDaemon(t, cfg)

	fi, err := os.Lstat(cfg.Listen.Unixgram)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o620 {
		t.Errorf("socket file mode %v, want a socket with -rw--w----", fi.Mode())
	}

	const clients, datagrams, linesPer = 3, 200, 5
	want := map[string]float64{}
	for c := range clients {
		conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: cfg.Listen.Unixgram, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i := range datagrams {
			var b strings.Builder
			for k := range linesPer {
				name := fmt.Sprintf("ux.c%d", (c+i+k)%7)
				v := float64(i%10 + k)
				fmt.Fprintf(&b, "%s:%v|c\n", name, v)
				want[name] += v
			}
			if _, err := conn.Write([]byte(b.String())); err != nil {
				t.Fatal(err)
			}
		}
		// One datagram past max_packet_bytes (65535): dropped, counted.
		if _, err := conn.Write([]byte("ux.big:1|c\n" + strings.Repeat("x", 70000))); err != nil {
			t.Fatal(err)
		}
	}
	waitSeen(t, d, clients*datagrams*linesPer)
	packets := counterValue(t, d, "libratod_packets_received_total", "unixgram")
	lines := counterValue(t, d, "libratod_lines_received_total", "unixgram")
	truncated := counterValue(t, d, "libratod_unixgram_truncated_total", "")
	logs := stop()

	got, _ := delivered(fake.requests())
	if !reflect.DeepEqual(got, want) {
		t.Errorf("delivered %v\nwant %v", got, want)
	}
	if packets != clients*datagrams || lines != clients*datagrams*linesPer || truncated != clients {
		t.Errorf("counted %v packets, %v lines, %v truncated; want %d, %d, %d",
			packets, lines, truncated, clients*datagrams, clients*datagrams*linesPer, clients)
	}
	if !strings.Contains(logs, `"unixgram":`+strconv.Quote(cfg.Listen.Unixgram)) || !strings.Contains(logs, "libratod started") {
		t.Errorf("the start line does not give the unixgram path:\n%s", logs)
	}
	if _, err := os.Lstat(cfg.Listen.Unixgram); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after the daemon stopped: %v, want it removed", err)
	}
}

// TestUnixgramStartErrors checks that a unixgram socket the daemon cannot set
// up stops it from starting, with an error naming the key or the path.
func TestUnixgramStartErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		owner string
		want  []string
	}{
		{
			name:  "unknown owner",
			owner: "no-such-user-libratod:0",
			want:  []string{"listen.unixgram_owner", `no user named "no-such-user-libratod"`},
		},
		{
			name: "a regular file at the path",
			setup: func(t *testing.T, path string) {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"is a regular file, not a socket"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeLibrato(t)
			cfg := testConfig(fake.URL, "tagged")
			cfg.Listen.Unixgram = filepath.Join(t.TempDir(), "statsd.sock")
			cfg.Listen.UnixgramOwner = tt.owner
			if tt.setup != nil {
				tt.setup(t, cfg.Listen.Unixgram)
			}
			err := startError(t, cfg)
			if err == nil {
				t.Fatal("the daemon started, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.setup != nil && !strings.Contains(err.Error(), cfg.Listen.Unixgram) {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
}

// startError makes and runs a daemon for cfg, and returns the error it fails
// with before it is ready; nil if it started (it is then stopped).
func startError(t *testing.T, cfg *config.Config) error {
	t.Helper()
	d, err := newDaemon(cfg, options{stderr: &testproc.SafeBuffer{}, hostname: "test-host"})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- d.run(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-d.ready:
		cancel()
		<-errc
		return nil
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon neither started nor failed within 10s")
		return nil
	}
}
