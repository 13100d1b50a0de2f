package main

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/libratod/libratod/internal/testproc"
)

func TestBuildFrom(t *testing.T) {
	vcs := func(revision, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "-trimpath", Value: "true"}, {Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: revision}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	tests := map[string]struct {
		info            *debug.BuildInfo
		version, commit string // the -ldflags stamps
		want            build
	}{
		"no build info": {nil, "dev", "", build{"dev", "unknown", goVersionNow()}},
		"stamped": {&debug.BuildInfo{GoVersion: "go1.26.8", Settings: vcs(rev, "true")}, "1.2.3", "fedcba9",
			build{"1.2.3", "fedcba9", "go1.26.8"}},
		"local build, clean tree": {&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")},
			"dev", "", build{"dev", rev, "go1.26.8"}},
		"local build, modified tree": {&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true")},
			"dev", "", build{"dev", rev + "+dirty", "go1.26.8"}},
		"go install @version": {&debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "v1.4.0"}},
			"dev", "", build{"v1.4.0", "unknown", "go1.26.1"}},
		"stamped version, commit from vcs": {&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: vcs(rev, "false")},
			"1.5.0-rc1", "", build{"1.5.0-rc1", rev, "go1.26.8"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := buildFrom(tc.info, tc.version, tc.commit); got != tc.want {
				t.Errorf("buildFrom = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func goVersionNow() string {
	info, _ := debug.ReadBuildInfo()
	return buildFrom(info, "dev", "").GoVersion
}

func TestBuildString(t *testing.T) {
	got := build{"1.2.3", "abc+dirty", "go1.26.8"}.String()
	if !strings.HasPrefix(got, "1.2.3 (commit abc+dirty; go1.26.8; ") || !strings.HasSuffix(got, ")") {
		t.Errorf("String() = %q", got)
	}
}

// TestBuildInfoMetric checks the daemon's registry exports
// libratod_build_info with the version line's values.
func TestBuildInfoMetric(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1", "tagged")
	d, err := newDaemon(cfg, options{stderr: &testproc.SafeBuffer{}, hostname: "test-host"})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	b := currentBuild()
	for _, mf := range mfs {
		if mf.GetName() != "libratod_build_info" {
			continue
		}
		if len(mf.GetMetric()) != 1 {
			t.Fatalf("%d series", len(mf.GetMetric()))
		}
		m := mf.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		want := map[string]string{"version": b.Version, "commit": b.Commit, "goversion": b.GoVersion}
		if len(labels) != len(want) || labels["version"] != want["version"] || labels["commit"] != want["commit"] || labels["goversion"] != want["goversion"] {
			t.Errorf("labels %v, want %v", labels, want)
		}
		if v := m.GetGauge().GetValue(); v != 1 {
			t.Errorf("value %v, want 1", v)
		}
		return
	}
	t.Error("libratod_build_info not exported")
}
