package spool

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// crashChild appends records to the spool in dir without end, taking and
// acknowledging every third, and reports on stdout each step once it is
// done: "A i" appended, "T i" taken, "K i" acknowledged.
func crashChild(dir string) {
	s, err := Open(context.Background(), Config{Dir: dir, SegmentBytes: 8 << 10, NoSync: true})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		if _, err := s.Append(rec(i, 300+i%700)); err != nil {
			fmt.Fprintln(w, "append:", err)
			w.Flush()
			os.Exit(3)
		}
		fmt.Fprintln(w, "A", i)
		if i%3 == 2 {
			es, err := s.Take(1)
			if err != nil || len(es) != 1 {
				fmt.Fprintln(w, "take:", len(es), err)
				w.Flush()
				os.Exit(3)
			}
			n := recNumber(es[0].Payload)
			fmt.Fprintln(w, "T", n)
			w.Flush()
			if err := s.Ack(es[0].ID); err != nil {
				fmt.Fprintln(w, "ack:", err)
				w.Flush()
				os.Exit(3)
			}
			fmt.Fprintln(w, "K", n)
		}
		w.Flush()
	}
}

func recNumber(p []byte) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(head(p), "record-"))
	return n
}

// TestKill9 kills a process that appends and acknowledges at full speed,
// at some moment, and checks that the next Open finds every record whose
// Append had returned, in order, and none whose Ack had returned.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("SPOOL_TEST_CRASH_DIR"); dir != "" {
		crashChild(dir)
		return
	}
	for _, after := range []int{50, 333, 1500} {
		t.Run(fmt.Sprint("after ", after, " lines"), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SPOOL_TEST_CRASH_DIR="+dir)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			appended := map[int]bool{}
			acked := map[int]bool{}
			taken := map[int]bool{}
			last := -1
			// Read to the end: the child goes on between the line that
			// decides the kill and the kill, and what it reported before
			// it died is fact too.
			sc := bufio.NewScanner(out)
			for lines := 1; sc.Scan(); lines++ {
				f := strings.Fields(sc.Text())
				if len(f) != 2 || len(f[0]) != 1 {
					t.Fatalf("child: %s", sc.Text())
				}
				n, _ := strconv.Atoi(f[1])
				switch f[0] {
				case "A":
					appended[n], last = true, n
				case "T":
					taken[n] = true
				case "K":
					acked[n] = true
				}
				if lines == after {
					if err := cmd.Process.Kill(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("child ended with %v, want killed", err)
			}

			s := open(t, Config{Dir: dir})
			got := takeAll(t, s, 50)
			st := s.Stats()
			if st.CorruptRecords > 1 {
				t.Errorf("%d corrupt records after one kill", st.CorruptRecords)
			}
			prev := -1
			replayed := map[int]bool{}
			for _, e := range got {
				n := recNumber(e.Payload)
				if want := rec(n, len(e.Payload)); string(want.Payload) != string(e.Payload) || want.Time != e.Time {
					t.Fatalf("record %d replayed with other content", n)
				}
				if n <= prev {
					t.Errorf("record %d replayed after %d", n, prev)
				}
				prev = n
				replayed[n] = true
				if acked[n] {
					t.Errorf("record %d replayed although its Ack had returned", n)
				}
				if !appended[n] && n != last+1 {
					t.Errorf("record %d replayed but never appended", n)
				}
			}
			for n := range appended {
				if !replayed[n] && !acked[n] && !taken[n] {
					t.Errorf("record %d lost: its Append had returned", n)
				}
			}
			t.Logf("killed after record %d: %d replayed, %d acknowledged before, corrupt %d records (%d bytes)",
				last, len(got), len(acked), st.CorruptRecords, st.CorruptBytes)
		})
	}
}
