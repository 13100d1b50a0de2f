package listener

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseUDPDrops(t *testing.T) {
	tests := []struct {
		file    string
		port    int
		want    uint64
		wantErr bool
	}{
		{file: "proc_net_udp", port: 8125, want: 42}, // two SO_REUSEPORT sockets; a client socket whose remote port is 8125 is not counted
		{file: "proc_net_udp", port: 8126, want: 4},
		{file: "proc_net_udp", port: 53, want: 0},
		{file: "proc_net_udp", port: 9999, want: 0},
		{file: "proc_net_udp6", port: 8125, want: 3},
		{file: "proc_net_udp6", port: 5353, want: 0},
		{file: "proc_net_udp_short", port: 8125, wantErr: true},
		{file: "proc_net_udp_baddrops", port: 8125, wantErr: true},
		{file: "proc_net_udp_badport", port: 8125, wantErr: true},
	}
	for _, tt := range tests {
		f, err := os.Open(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseUDPDrops(f, tt.port)
		_ = f.Close()
		if (err != nil) != tt.wantErr {
			t.Errorf("%s port %d: error %v, want error %t", tt.file, tt.port, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("%s port %d: %d drops, want %d", tt.file, tt.port, got, tt.want)
		}
	}
}
