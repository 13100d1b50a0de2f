package listener

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// parseUDPDrops sums the "drops" column of a /proc/net/udp or /proc/net/udp6
// table over the sockets whose local port is port.
//
// The format (one header line, then one line per socket; addresses are hex, the
// port after the last ':'):
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
//	0: 0100007F:1F95 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 34567 2 0000000000000000 12
func parseUDPDrops(r io.Reader, port int) (uint64, error) {
	const dropsField = 12
	var total uint64
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] == "sl" {
			continue
		}
		if len(f) <= dropsField {
			return 0, fmt.Errorf("line %d: %d fields, want %d", line, len(f), dropsField+1)
		}
		i := strings.LastIndexByte(f[1], ':')
		if i < 0 {
			return 0, fmt.Errorf("line %d: local address %q has no port", line, f[1])
		}
		p, err := strconv.ParseUint(f[1][i+1:], 16, 16)
		if err != nil {
			return 0, fmt.Errorf("line %d: local port: %w", line, err)
		}
		if int(p) != port {
			continue
		}
		d, err := strconv.ParseUint(f[dropsField], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("line %d: drops: %w", line, err)
		}
		total += d
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return total, nil
}
