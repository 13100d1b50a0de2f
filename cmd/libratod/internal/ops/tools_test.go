package ops

// Tests of scripts/tools, which installs the pinned tools scripts/test
// needs, run with fake apt-cache, apt-get, dpkg-deb and go on PATH (the
// real ones are never called) and a temporary cache.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Paths from this package's directory.
const (
	toolsScript = "../../../../scripts/tools"
	testScript  = "../../../../scripts/test"
)

// fakeAPT is what the fake apt-cache, apt-get and dpkg-deb see: the
// Debian versions of prometheus the package lists hold before and after
// `apt-get update`, those the archive still serves, and the version the
// unpacked promtool says it is.
type fakeAPT struct {
	before, after, archive []string
	promtool               string
}

// fakeCommands returns the fake commands, shell scripts, by name. Each logs
// its arguments to $FAKE_STATE/calls.
func fakeCommands() map[string]string {
	return map[string]string{
		"apt-cache": `#!/bin/sh
echo "apt-cache $*" >>"$FAKE_STATE/calls"
# Like apt-cache, show of a listed package exits 0 whatever the version.
[ "$1" = show ] && exit 0
[ "$1" = madison ] && [ "$2" = prometheus ] || exit 1
lists=before
[ -e "$FAKE_STATE/updated" ] && lists=after
for v in $(cat "$FAKE_STATE/$lists"); do
	echo " prometheus | $v | http://deb.debian.org/debian bookworm/main amd64 Packages"
done
`,
		"apt-get": `#!/bin/sh
echo "apt-get $*" >>"$FAKE_STATE/calls"
for a; do
	case $a in
	update) touch "$FAKE_STATE/updated"; exit 0 ;;
	prometheus=*)
		v=${a#prometheus=}
		if grep -qx "$v" "$FAKE_STATE/archive"; then
			echo deb >"prometheus_${v}_amd64.deb"
			exit 0
		fi
		echo "E: Can't find a source to download version '$v' of 'prometheus:amd64'" >&2
		exit 100 ;;
	esac
done
exit 1
`,
		"dpkg-deb": `#!/bin/sh
echo "dpkg-deb $*" >>"$FAKE_STATE/calls"
[ "$1" = -x ] && [ -f "$2" ] || exit 1
mkdir -p "$3/usr/bin"
printf '#!/bin/sh\necho "promtool, version %s (branch: debian/sid)"\n' "$(cat "$FAKE_STATE/promtool")" >"$3/usr/bin/promtool"
chmod +x "$3/usr/bin/promtool"
`,
		"go": `#!/bin/sh
echo "go $*" >>"$FAKE_STATE/calls"
[ "$1" = env ] && { echo "$FAKE_STATE/gopath"; exit 0; }
exit 1
`,
	}
}

// runFaked runs script with args and the fakes first on PATH, in a fresh
// cache, and returns its standard output, standard error, the fakes' calls
// and the cache directory.
func runFaked(t *testing.T, apt fakeAPT, script string, args ...string) (stdout, stderr, calls, cache string, err error) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash: the scripts need it")
	}
	dir := t.TempDir()
	fakeBin, state, cache := filepath.Join(dir, "bin"), filepath.Join(dir, "state"), filepath.Join(dir, "cache")
	for _, d := range []string{fakeBin, state} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range fakeCommands() {
		if err := os.WriteFile(filepath.Join(fakeBin, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"before": strings.Join(apt.before, "\n"), "after": strings.Join(apt.after, "\n"),
		"archive": strings.Join(apt.archive, "\n"), "promtool": apt.promtool, "calls": "",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(state, name), []byte(text+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	abs, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, abs, args...)
	cmd.Dir = dir
	env := []string{"PATH=" + fakeBin + ":" + os.Getenv("PATH"), "HOME=" + dir,
		"LIBRATOD_TOOLS=" + cache, "FAKE_STATE=" + state}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "PROMETHEUS_") &&
			k != "PATH" && k != "HOME" && k != "LIBRATOD_TOOLS" && k != "XDG_CACHE_HOME" {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	b, rerr := os.ReadFile(filepath.Join(state, "calls"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	return out.String(), errb.String(), string(b), cache, err
}

// TestToolsPromtool runs `scripts/tools promtool` against package lists
// that are current, stale (the version missing, or listed but gone from
// the archive) or wrong.
func TestToolsPromtool(t *testing.T) {
	tests := map[string]struct {
		apt        fakeAPT
		ok, update bool
		download   string // the version downloaded last
	}{
		"current lists": {
			apt: fakeAPT{before: []string{"2.42.0+ds-5+b6"}, after: []string{"2.42.0+ds-5+b6"},
				archive: []string{"2.42.0+ds-5+b6"}, promtool: "2.42.0+ds"},
			ok: true, download: "2.42.0+ds-5+b6",
		},
		"version missing until update": {
			apt: fakeAPT{before: []string{"2.33.5+ds1-2"}, after: []string{"2.33.5+ds1-2", "2.42.0+ds-5+deb12u2"},
				archive: []string{"2.42.0+ds-5+deb12u2"}, promtool: "2.42.0+ds"},
			ok: true, update: true, download: "2.42.0+ds-5+deb12u2",
		},
		"listed, gone from the archive": {
			apt: fakeAPT{before: []string{"2.42.0+ds-5+deb12u1"}, after: []string{"2.42.0+ds-5", "2.42.0+ds-5+deb12u2"},
				archive: []string{"2.42.0+ds-5", "2.42.0+ds-5+deb12u2"}, promtool: "2.42.0"},
			ok: true, update: true, download: "2.42.0+ds-5+deb12u2",
		},
		"download fails": {
			apt:    fakeAPT{before: []string{"2.42.0+ds-5"}, after: []string{"2.42.0+ds-5"}, promtool: "2.42.0+ds"},
			update: true,
		},
		"no such version": {
			apt: fakeAPT{before: []string{"2.33.5+ds1-2"}, after: []string{"2.45.3+ds-2"},
				archive: []string{"2.45.3+ds-2"}, promtool: "2.45.3"},
			update: true,
		},
		"promtool of another version": {
			apt: fakeAPT{before: []string{"2.42.0+ds-5"}, after: []string{"2.42.0+ds-5"},
				archive: []string{"2.42.0+ds-5"}, promtool: "2.41.0"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			stdout, stderr, calls, cache, err := runFaked(t, tc.apt, toolsScript, "promtool")
			if updated := strings.Contains(calls, "apt-get update"); updated != tc.update {
				t.Errorf("apt-get update called: %t, want %t; calls:\n%s", updated, tc.update, calls)
			}
			if strings.Count(calls, "apt-get update") > 1 {
				t.Errorf("apt-get update called more than once:\n%s", calls)
			}
			link := filepath.Join(cache, "bin", "promtool")
			if !tc.ok {
				if err == nil {
					t.Fatalf("exit 0, want a failure; stderr:\n%s", stderr)
				}
				if !strings.Contains(stderr, "tools: promtool: ") {
					t.Errorf("the failure does not name promtool:\n%s", stderr)
				}
				if _, err := os.Stat(link); err == nil {
					t.Errorf("promtool installed anyway")
				}
				return
			}
			if err != nil {
				t.Fatalf("%v; stderr:\n%s\ncalls:\n%s", err, stderr, calls)
			}
			if strings.TrimSpace(stdout) != filepath.Join(cache, "bin") {
				t.Errorf("stdout %q, want the cache's bin", stdout)
			}
			if !strings.Contains(calls, "download -qq -o APT::Sandbox::User=root prometheus="+tc.download+"\n") {
				t.Errorf("prometheus=%s not downloaded; calls:\n%s", tc.download, calls)
			}
			out, err := exec.Command(link, "--version").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "version 2.42.0") {
				t.Errorf("%s --version: %v: %s", link, err, out)
			}
		})
	}
}

// TestTestStopsWhenToolsFail: scripts/test stops at once, naming the tool,
// when scripts/tools cannot install one (here go install fails).
func TestTestStopsWhenToolsFail(t *testing.T) {
	apt := fakeAPT{before: []string{"2.42.0+ds-5"}, after: []string{"2.42.0+ds-5"},
		archive: []string{"2.42.0+ds-5"}, promtool: "2.42.0+ds"}
	stdout, stderr, calls, _, err := runFaked(t, apt, testScript)
	out := stdout + stderr
	if err == nil {
		t.Fatalf("scripts/test passed; output:\n%s", out)
	}
	if !strings.Contains(stderr, "tools: staticcheck: ") {
		t.Errorf("the failure does not name staticcheck:\n%s", out)
	}
	if strings.Contains(out, "== gofmt") || strings.Contains(calls, "go vet") {
		t.Errorf("scripts/test went on after scripts/tools failed:\n%s\ncalls:\n%s", out, calls)
	}
}
