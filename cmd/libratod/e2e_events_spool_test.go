package main

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/libratod/libratod/internal/testproc"
)

// annotationsTaken returns the bodies of the annotations the fake took,
// by path.
func annotationsTaken(fake *fakeLibrato) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, r := range fake.requests() {
		if filepath.Dir(r.Path) == "/v1/annotations" {
			out[r.Path] = append(out[r.Path], r.Body)
		}
	}
	return out
}

// TestSpoolEventSIGTERMThenRestart: an event reaches a daemon while
// Librato is down; after its SIGTERM a second daemon on the same spool,
// with Librato up, delivers its annotation exactly once.
func TestSpoolEventSIGTERMThenRestart(t *testing.T) {
	bin := buildBinary(t)
	fake := newFakeLibrato(t)
	fake.down.Store(true)
	dir := filepath.Join(t.TempDir(), "spool")
	cfg := spoolConfig(t, fake.URL, "1h", dir)

	cmd, _, tcp, _, stderr := startBinary(t, bin, cfg)
	metrics := startedField(t, stderr, "metrics")
	lines := []string{"_e{6,5}:Deploy|v1.2.3|#stream:deploys", "ev.c:1|c"}
	sendLines(t, tcp, lines...)
	waitSelfMetric(t, metrics, `libratod_lines_received_total{transport="tcp"}`, float64(len(lines)))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testproc.WaitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	if got := fake.requests(); len(got) != 0 {
		t.Fatalf("Librato was down but took %d requests", len(got))
	}

	fake.down.Store(false)
	cmd2, _, _, _, stderr2 := startBinary(t, bin, cfg)
	for i := 0; i < 1500 && len(annotationsTaken(fake)["/v1/annotations/deploys"]) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	waitReceived(t, fake, "ev.c")
	if err := cmd2.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testproc.WaitExit(t, cmd2); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr2.String())
	}
	got := annotationsTaken(fake)
	deploys := got["/v1/annotations/deploys"]
	if len(deploys) != 1 || len(got) != 1 {
		t.Fatalf("annotations taken %v, want the one event once; stderr:\n%s\n%s", got, stderr.String(), stderr2.String())
	}
	if deploys[0]["title"] != "Deploy" || deploys[0]["description"] != "v1.2.3" {
		t.Errorf("annotation %v, want title Deploy, description v1.2.3", deploys[0])
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.spool")); len(segs) != 0 {
		t.Errorf("spool segments left after everything was delivered: %v", segs)
	}
}
