package ops

// Tests of the files operators run libratod with: the systemd unit, the
// Dockerfile and its configuration, the Kubernetes example and the README's
// Operations section. None of them can be run for real here (no systemd as
// PID 1, no container engine), so the tests check what can be checked: the
// files' content against the code, `systemd-analyze` when it exists, and
// the binary built exactly as the Dockerfile builds it.

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/libratod/libratod/cmd/libratod/internal/config"
	"github.com/libratod/libratod/cmd/libratod/internal/sdnotify"
	"github.com/libratod/libratod/internal/testproc"
)

// Paths from this package's directory.
const (
	unitPath        = "../../../../systemd/libratod.service"
	envExamplePath  = "../../../../systemd/libratod.env.example"
	dockerfilePath  = "../../../../Dockerfile"
	dockerignore    = "../../../../.dockerignore"
	containerConfig = "../../../../deploy/container.toml"
	sidecarPath     = "../../../../deploy/kubernetes/sidecar.yaml"
	legacyPath      = "../../../../deploy/kubernetes/sidecar-legacy.yaml"
	readmePath      = "../../../../README.md"
)

// dockerBuild is the Dockerfile's build command, which TestStaticBinary
// runs too.
const dockerBuild = `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/libratod ./cmd/libratod`

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// parseUnit returns a systemd unit's settings: section -> key -> values in
// order (a key may repeat; an empty assignment is kept as "").
func parseUnit(text string) map[string]map[string][]string {
	units := map[string]map[string][]string{}
	var section string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			units[section] = map[string][]string{}
		default:
			k, v, _ := strings.Cut(line, "=")
			if units[section] != nil {
				units[section][strings.TrimSpace(k)] = append(units[section][strings.TrimSpace(k)], strings.TrimSpace(v))
			}
		}
	}
	return units
}

func TestSystemdUnit(t *testing.T) {
	unit := parseUnit(readFile(t, unitPath))
	tests := []struct {
		section, key, want string // want: one of the key's values
	}{
		{"Service", "Type", "notify"},
		{"Service", "ExecStart", "/usr/local/bin/libratod -config /etc/libratod.toml"},
		{"Service", "ExecReload", "/bin/kill -HUP $MAINPID"},
		{"Service", "Restart", "on-failure"},
		{"Service", "WatchdogSec", "30s"},
		{"Service", "EnvironmentFile", "-/etc/libratod/env"},
		{"Service", "DynamicUser", "yes"},
		{"Service", "StateDirectory", "libratod"},
		{"Service", "Environment", "LIBRATOD_LIBRATO_SPOOL_DIR=/var/lib/libratod/spool"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "PrivateDevices", "yes"},
		{"Service", "ProtectKernelTunables", "yes"},
		{"Service", "ProtectKernelModules", "yes"},
		{"Service", "ProtectKernelLogs", "yes"},
		{"Service", "ProtectControlGroups", "yes"},
		{"Service", "ProtectClock", "yes"},
		{"Service", "ProtectHostname", "yes"},
		{"Service", "RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"Service", "RestrictNamespaces", "yes"},
		{"Service", "RestrictRealtime", "yes"},
		{"Service", "RestrictSUIDSGID", "yes"},
		{"Service", "LockPersonality", "yes"},
		{"Service", "MemoryDenyWriteExecute", "yes"},
		{"Service", "CapabilityBoundingSet", ""},
		{"Service", "AmbientCapabilities", ""},
		{"Service", "SystemCallFilter", "@system-service"},
		{"Service", "SystemCallArchitectures", "native"},
		{"Service", "UMask", "0077"},
		{"Service", "LimitNOFILE", "65536"},
		{"Install", "WantedBy", "multi-user.target"},
	}
	for _, tc := range tests {
		t.Run(tc.section+"/"+tc.key, func(t *testing.T) {
			got, ok := unit[tc.section][tc.key]
			if !ok || !slices.Contains(got, tc.want) {
				t.Errorf("[%s] %s = %q, want %q among them", tc.section, tc.key, got, tc.want)
			}
		})
	}
	t.Run("the spool is in the state directory", func(t *testing.T) {
		env := parseWithEnv(t, "../../../../config.example.toml", unitEnv(unit))
		state := "/var/lib/" + unit["Service"]["StateDirectory"][0] + "/"
		if !strings.HasPrefix(env.Librato.SpoolDir, state) {
			t.Errorf("spool_dir %q with the unit's environment, want it under %s", env.Librato.SpoolDir, state)
		}
	})
	t.Run("stop timeout covers the final flush", func(t *testing.T) {
		stop, err := time.ParseDuration(unit["Service"]["TimeoutStopSec"][0])
		if err != nil {
			t.Fatal(err)
		}
		// Stopping takes shutdown_linger, then the listeners' drain (bounded
		// by shutdown_timeout, about 1s in practice), then the final flush
		// (shutdown_timeout).
		d := config.Default()
		if need := d.Listen.ShutdownLinger + 2*d.Librato.ShutdownTimeout; stop <= need {
			t.Errorf("TimeoutStopSec %v leaves no room for shutdown_linger %v + 2 × shutdown_timeout %v",
				stop, d.Listen.ShutdownLinger, d.Librato.ShutdownTimeout)
		}
	})
	t.Run("the watchdog outlasts a keep-alive", func(t *testing.T) {
		wd, err := time.ParseDuration(unit["Service"]["WatchdogSec"][0])
		if err != nil {
			t.Fatal(err)
		}
		n := sdnotify.FromEnv(func(k string) string {
			return map[string]string{"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": strconv.FormatInt(wd.Microseconds(), 10)}[k]
		})
		if every := n.WatchdogInterval(); every <= 0 || every >= wd {
			t.Errorf("keep-alive every %v for WatchdogSec %v", every, wd)
		}
	})
}

// unitEnv returns the variables a unit's Environment= lines set.
func unitEnv(unit map[string]map[string][]string) map[string]string {
	env := map[string]string{}
	for _, kv := range unit["Service"]["Environment"] {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// verifiableUnit writes the unit, with ExecStart pointing at an executable
// that exists here (systemd-analyze checks it), to a temporary directory.
func verifiableUnit(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(readFile(t, unitPath), "/usr/local/bin/libratod", self)
	path := filepath.Join(t.TempDir(), "libratod.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	out, err := exec.Command("systemd-analyze", "verify", verifiableUnit(t)).CombinedOutput()
	// verify exits 0 on unknown keys and bad values: any word is a problem.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestSystemdAnalyzeSecurity(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	if help, _ := exec.Command("systemd-analyze", "--help").CombinedOutput(); !bytes.Contains(help, []byte("--offline")) {
		t.Skip("systemd-analyze has no --offline (systemd < 250)")
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", verifiableUnit(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for libratod\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	// systemd rates up to 2.0 "OK", the best band short of 0.
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Errorf("exposure level %.1f, want at most 2.0:\n%s", level, out)
	}
}

// lookups wraps env and records every name config.Parse asks for, which is
// every variable the configuration knows.
type lookups struct {
	env   map[string]string
	asked map[string]bool
}

func (l *lookups) get(name string) string {
	if l.asked == nil {
		l.asked = map[string]bool{}
	}
	l.asked[name] = true
	return l.env[name]
}

// parseWithEnv parses the TOML file at path with env and checks that every
// variable in env is one the configuration reads.
func parseWithEnv(t *testing.T, path string, env map[string]string) *config.Config {
	t.Helper()
	l := &lookups{env: env}
	cfg, err := config.Parse([]byte(readFile(t, path)), l.get)
	if err != nil {
		t.Fatalf("%s with %v: %v", path, env, err)
	}
	for name := range env {
		if !l.asked[name] {
			t.Errorf("the configuration has no variable %s", name)
		}
	}
	return cfg
}

func TestSystemdEnvExample(t *testing.T) {
	env := map[string]string{}
	for line := range strings.Lines(readFile(t, envExamplePath)) {
		// Set lines, and commented-out examples "#NAME=value".
		line = strings.TrimPrefix(strings.TrimSpace(line), "#")
		name, value, ok := strings.Cut(line, "=")
		if ok && regexp.MustCompile(`^LIBRATOD?_[A-Z_]+$`).MatchString(name) {
			env[name] = value
		}
	}
	if env["LIBRATO_TOKEN"] == "" {
		t.Fatalf("no LIBRATO_TOKEN in %s", envExamplePath)
	}
	cfg := parseWithEnv(t, "../../../../config.example.toml", env)
	if err := cfg.Validate(false); err != nil {
		t.Error(err)
	}
	if string(cfg.Librato.Token) != env["LIBRATO_TOKEN"] {
		t.Error("LIBRATO_TOKEN not applied")
	}
	// The OTLP output's token, commented out beside Librato's.
	if env["LIBRATOD_OTLP_TOKEN"] == "" || string(cfg.OTLP.Token) != env["LIBRATOD_OTLP_TOKEN"] || !cfg.OTLP.On() {
		t.Errorf("%s does not show LIBRATOD_OTLP_TOKEN (and the endpoint) for the OTLP output", envExamplePath)
	}
}

// instruction is one Dockerfile instruction.
type instruction struct {
	cmd  string // upper case
	args string
}

// parseDockerfile returns the stages of a Dockerfile, each the list of its
// instructions from its FROM on, with continuation lines joined.
func parseDockerfile(text string) [][]instruction {
	var stages [][]instruction
	var cur strings.Builder
	add := func(line string) {
		cmd, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" || len(stages) == 0 {
			stages = append(stages, nil)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		add(cur.String())
		cur.Reset()
	}
	return stages
}

// execForm parses a JSON-array (exec form) argument list; nil when args is
// in shell form.
func execForm(args string) []string {
	var v []string
	if json.Unmarshal([]byte(args), &v) != nil {
		return nil
	}
	return v
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(readFile(t, dockerfilePath))
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a builder and a runtime", len(stages))
	}
	build, runtime := stages[0], stages[1]
	find := func(stage []instruction, cmd string) []string {
		var out []string
		for _, in := range stage {
			if in.cmd == cmd {
				out = append(out, in.args)
			}
		}
		return out
	}

	t.Run("builder matches go.mod", func(t *testing.T) {
		from := build[0].args
		m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, "../../../../go.mod"))
		if m == nil || !strings.HasPrefix(from, "golang:"+m[1]+" ") {
			t.Errorf("builder FROM %q; go.mod wants Go %v", from, m)
		}
	})
	t.Run("static trimmed build", func(t *testing.T) {
		var got []string
		for _, r := range find(build, "RUN") {
			if strings.Contains(r, "go build") {
				got = append(got, r)
			}
		}
		if len(got) != 1 || got[0] != dockerBuild {
			t.Errorf("go build step %q, want %q", got, dockerBuild)
		}
	})
	t.Run("runtime base", func(t *testing.T) {
		if from := runtime[0].args; from != "gcr.io/distroless/static-debian12:nonroot" {
			t.Errorf("runtime FROM %q", from)
		}
	})
	t.Run("non-root user", func(t *testing.T) {
		users := find(runtime, "USER")
		if len(users) == 0 {
			t.Fatal("no USER: the image would run as root")
		}
		user, group, _ := strings.Cut(users[len(users)-1], ":")
		for _, id := range []string{user, group} {
			// Numeric, or Kubernetes' runAsNonRoot cannot check it.
			if n, err := strconv.Atoi(id); err != nil || n == 0 {
				t.Errorf("USER %q: want a numeric non-root uid:gid", users[len(users)-1])
			}
		}
	})
	t.Run("configuration", func(t *testing.T) {
		var found bool
		for _, c := range find(runtime, "COPY") {
			f := strings.Fields(c)
			if len(f) == 2 && f[1] == "/etc/libratod.toml" {
				found = true
				if _, err := os.Stat(filepath.Join("../../../..", f[0])); err != nil {
					t.Errorf("COPY source: %v", err)
				}
				if "../../../../"+f[0] != containerConfig {
					t.Errorf("COPY %s, want deploy/container.toml", f[0])
				}
			}
		}
		if !found {
			t.Error("no COPY to /etc/libratod.toml")
		}
	})
	t.Run("exposed ports match the configuration", func(t *testing.T) {
		cfg := parseWithEnv(t, containerConfig, nil)
		var exposed []string
		for _, e := range find(runtime, "EXPOSE") {
			exposed = append(exposed, strings.Fields(e)...)
		}
		for _, want := range []struct{ addr, proto string }{
			{cfg.Listen.UDP, "udp"}, {cfg.Listen.TCP, "tcp"}, {cfg.Metrics.Listen, "tcp"},
		} {
			_, port, _ := strings.Cut(want.addr, ":")
			if !slices.Contains(exposed, port+"/"+want.proto) {
				t.Errorf("EXPOSE %q lacks %s/%s", exposed, port, want.proto)
			}
		}
	})
	t.Run("healthcheck", func(t *testing.T) {
		hc := find(runtime, "HEALTHCHECK")
		if len(hc) != 1 {
			t.Fatalf("HEALTHCHECK %q", hc)
		}
		_, cmd, ok := strings.Cut(hc[0], "CMD ")
		argv := execForm(cmd)
		if !ok || len(argv) < 2 || argv[0] != "/libratod" || !slices.Contains(argv, "-health") {
			t.Errorf("HEALTHCHECK %q: want exec form running /libratod -health (no shell in the image)", hc[0])
		}
	})
	t.Run("entrypoint", func(t *testing.T) {
		ep, cmd := find(runtime, "ENTRYPOINT"), find(runtime, "CMD")
		if len(ep) != 1 || !slices.Equal(execForm(ep[0]), []string{"/libratod"}) {
			t.Errorf("ENTRYPOINT %q, want [\"/libratod\"]", ep)
		}
		if len(cmd) != 1 || !slices.Equal(execForm(cmd[0]), []string{"-config", "/etc/libratod.toml"}) {
			t.Errorf("CMD %q, want [\"-config\", \"/etc/libratod.toml\"]", cmd)
		}
	})
}

// ignored reports whether a .dockerignore pattern list excludes path (a
// slash-separated path from the context root), as Docker does: a pattern
// matches the path or one of its parent directories, and "**" matches any
// number of directories. "!" exceptions are not supported (none is used).
func ignored(patterns []string, path string) bool {
	parts := strings.Split(path, "/")
	for _, p := range patterns {
		p = strings.TrimPrefix(p, "/")
		re := regexp.QuoteMeta(p)
		re = strings.ReplaceAll(re, `\*\*/`, `(.*/)?`)
		re = strings.ReplaceAll(re, `\*`, `[^/]*`)
		re = strings.ReplaceAll(re, `\?`, `[^/]`)
		m := regexp.MustCompile("^" + re + "$")
		for i := range parts {
			if m.MatchString(strings.Join(parts[:i+1], "/")) {
				return true
			}
		}
	}
	return false
}

func TestDockerignore(t *testing.T) {
	var patterns []string
	for line := range strings.Lines(readFile(t, dockerignore)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			if strings.HasPrefix(line, "!") {
				t.Fatalf("exception %q: the test's matcher does not support it", line)
			}
			patterns = append(patterns, line)
		}
	}
	tests := map[string]bool{
		"go.mod":                            false,
		"go.sum":                            false,
		"deploy/container.toml":             false,
		"cmd/libratod/main.go":              false,
		"cmd/libratod/internal/config/x.go": false,
		"listener/listener.go":              false,
		".git/config":                       true,
		"parser/testdata/fuzz/FuzzParse/ab": true,
		"cmd/libratod/cli_test.go":          true,
		"libratod":                          true,
	}
	for path, want := range tests {
		if got := ignored(patterns, path); got != want {
			t.Errorf("%s ignored: %v, want %v", path, got, want)
		}
	}
}

func TestContainerConfig(t *testing.T) {
	cfg := parseWithEnv(t, containerConfig, map[string]string{"LIBRATO_TOKEN": "t"})
	if err := cfg.Validate(false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, got, want string }{
		{"listen.udp", cfg.Listen.UDP, "0.0.0.0:8125"},
		{"listen.tcp", cfg.Listen.TCP, "0.0.0.0:8125"},
		{"metrics.listen", cfg.Metrics.Listen, "0.0.0.0:9125"},
		// A container is stopped together with what sends to it.
		{"listen.shutdown_linger", cfg.Listen.ShutdownLinger.String(), "2s"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, tc.got, tc.want)
		}
	}
	// TestDeployedProbes (package main) checks that the HEALTHCHECK finds
	// /healthz at this metrics.listen.
}

// shellWords splits a simple shell command into words: spaces separate
// them except inside double quotes, which are removed.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
			}
			inWord = false
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// buildLikeDocker runs the Dockerfile's build command from the repository
// root (the image's WORKDIR), with VERSION set and the output in a
// temporary directory, and returns the binary's path.
func buildLikeDocker(t *testing.T, version string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "libratod")
	words := shellWords(strings.ReplaceAll(dockerBuild, "${VERSION}", version))
	var env []string
	for len(words) > 0 && strings.Contains(words[0], "=") {
		env, words = append(env, words[0]), words[1:]
	}
	if i := slices.Index(words, "-o"); i < 0 || i+1 >= len(words) {
		t.Fatalf("no -o in %q", words)
	} else {
		words[i+1] = bin
	}
	cmd := exec.Command(words[0], words[1:]...)
	cmd.Dir = "../../../.."
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%q: %v\n%s", words, err, out)
	}
	return bin
}

func TestStaticBinary(t *testing.T) {
	const version = "9.8.7-docker"
	bin := buildLikeDocker(t, version)

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("program header %v: not a static binary", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("needs shared libraries %q (%v)", libs, err)
	}
	if f.Section(".debug_info") != nil {
		t.Error("DWARF kept: -w not applied")
	}
	if _, err := f.Symbols(); err == nil {
		t.Error("symbol table kept: -s not applied")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if root, err := filepath.Abs("../../../.."); err == nil && bytes.Contains(data, []byte(root+"/")) {
		t.Errorf("the binary holds the source path %s: -trimpath not applied", root)
	}

	tests := map[string]struct {
		args []string
		out  []string
	}{
		"version": {[]string{"-version"}, []string{"libratod " + version}},
		"container config": {[]string{"-config", containerConfig, "-check", "-dry-run"},
			[]string{"udp: 0.0.0.0:8125", "tcp: 0.0.0.0:8125", "metrics: 0.0.0.0:9125"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command(bin, tc.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", tc.args, err, out)
			}
			for _, s := range tc.out {
				if !strings.Contains(string(out), s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}

// TestContainerHealthcheck runs the Docker-built binary on the image's
// configuration (its addresses moved to loopback ports free here, as
// LIBRATOD_* variables would) and probes it as the HEALTHCHECK does.
func TestContainerHealthcheck(t *testing.T) {
	bin := buildLikeDocker(t, "test")
	env := append(os.Environ(),
		"LIBRATOD_LISTEN_UDP=127.0.0.1:0",
		"LIBRATOD_LISTEN_TCP=127.0.0.1:0",
		"LIBRATOD_METRICS_LISTEN=127.0.0.1:"+testproc.FreePort(t),
		"LIBRATOD_LOG_LEVEL=warn",
		"NOTIFY_SOCKET=", // not systemd's child, whatever runs the tests
	)
	probe := func() (int, string) {
		cmd := exec.Command(bin, "-health", "-config", containerConfig)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := probe(); code != 1 {
		t.Fatalf("-health with no daemon: exit %d, want 1: %s", code, out)
	}

	daemon := exec.Command(bin, "-config", containerConfig, "-dry-run")
	daemon.Env = env
	var logs testproc.SafeBuffer
	daemon.Stdout, daemon.Stderr = &logs, &logs
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = daemon.Process.Kill(); _ = daemon.Wait() })
	code, out := -1, ""
	for i := 0; i < 100 && code != 0; i++ { // at most ~10s for the daemon to start
		if code, out = probe(); code != 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if code != 0 {
		t.Fatalf("-health against the running daemon: exit %d: %s\nlogs:\n%s", code, out, logs.String())
	}
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := testproc.WaitExit(t, daemon); code != 0 {
		t.Errorf("daemon exit %d after SIGTERM:\n%s", code, logs.String())
	}
}

// yamlEnv returns the name/value pairs of the "- name: X" / "value: Y"
// entries of a Kubernetes manifest, and the names set from a secret.
func yamlEnv(text string) (values map[string]string, secrets []string) {
	values = map[string]string{}
	var name string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "- name: "):
			name = strings.TrimPrefix(line, "- name: ")
		case strings.HasPrefix(line, "value: ") && name != "":
			values[name] = strings.Trim(strings.TrimPrefix(line, "value: "), `"`)
			name = ""
		case line == "secretKeyRef:" && name != "":
			secrets = append(secrets, name)
			name = ""
		}
	}
	return values, secrets
}

// probePath returns the httpGet path of the named probe.
func probePath(t *testing.T, text, probe string) string {
	t.Helper()
	m := regexp.MustCompile(probe + `:\s*\n\s*httpGet:\s*\n\s*path: (\S+)\s*\n\s*port: (\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no %s with httpGet path and port", probe)
	}
	if m[2] != "metrics" && m[2] != "9125" {
		t.Errorf("%s port %s, want the metrics port", probe, m[2])
	}
	return m[1]
}

func TestKubernetesSidecar(t *testing.T) {
	for _, path := range []string{sidecarPath, legacyPath} {
		t.Run(filepath.Base(path), func(t *testing.T) { testKubernetesSidecar(t, path) })
	}
}

func testKubernetesSidecar(t *testing.T, sidecarPath string) {
	text := readFile(t, sidecarPath)
	if strings.Contains(text, "\t") {
		t.Error("a tab in YAML")
	}
	for _, s := range []string{
		"kind: Deployment", "secretKeyRef:", "runAsNonRoot: true", "runAsUser: 65532",
		"readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false", `drop: ["ALL"]`,
		"requests:", "limits:", "name: metrics\n              containerPort: 9125",
		"containerPort: 8125\n              protocol: UDP",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("%s lacks %q", sidecarPath, s)
		}
	}

	values, secrets := yamlEnv(text)
	if !slices.Equal(secrets, []string{"LIBRATO_TOKEN"}) {
		t.Errorf("variables from secrets %q, want [LIBRATO_TOKEN]", secrets)
	}
	env := map[string]string{"LIBRATO_TOKEN": "from-the-secret"}
	for k, v := range values {
		if strings.HasPrefix(k, "LIBRATOD_") {
			env[k] = v
		}
	}
	if len(env) < 3 {
		t.Errorf("few LIBRATOD_* variables: %v", env)
	}
	cfg := parseWithEnv(t, containerConfig, env)
	if err := cfg.Validate(false); err != nil {
		t.Error(err)
	}
	if cfg.Metrics.Listen != "0.0.0.0:9125" {
		t.Errorf("metrics.listen %q: the kubelet's probes cannot reach it", cfg.Metrics.Listen)
	}

	// TestDeployedProbes (package main) asks the daemon's health handlers
	// these paths.
	if p := probePath(t, text, "readinessProbe"); !strings.HasPrefix(p, "/readyz") {
		t.Errorf("readinessProbe path %q, want /readyz", p)
	}
	if p := probePath(t, text, "livenessProbe"); p != "/healthz" {
		t.Errorf("livenessProbe path %q, want /healthz", p)
	}
}

func TestReadmeOperations(t *testing.T) {
	readme := readFile(t, readmePath)
	_, ops, ok := strings.Cut(readme, "\n## Operations\n")
	if !ok {
		t.Fatal(`README.md has no "## Operations" section`)
	}
	if i := strings.Index(ops, "\n## "); i >= 0 {
		ops = ops[:i]
	}
	// Every variable named there is one the configuration reads.
	env := map[string]string{}
	for _, name := range regexp.MustCompile(`\bLIBRATOD?_[A-Z0-9_]*[A-Z0-9]\b`).FindAllString(ops, -1) {
		env[name] = ""
	}
	if len(env) == 0 {
		t.Fatal("the Operations section names no variable")
	}
	// Where it says how the token reaches the daemon, it says it of the
	// OTLP output's token too.
	if _, ok := env["LIBRATOD_OTLP_TOKEN"]; !ok {
		t.Error("README Operations does not name LIBRATOD_OTLP_TOKEN, the OTLP output's token")
	}
	l := &lookups{}
	if _, err := config.Parse(nil, l.get); err != nil {
		t.Fatal(err)
	}
	for name := range env {
		if !l.asked[name] {
			t.Errorf("README Operations names %s, which the configuration does not read", name)
		}
	}
	// Every key it names ("section.key", in backquotes) exists; the first
	// column of a table (StatsD's options in the migration table) aside.
	var own strings.Builder
	for line := range strings.Lines(ops) {
		if cells := strings.SplitN(line, "|", 3); len(cells) == 3 && cells[0] == "" {
			line = cells[2]
		}
		own.WriteString(line)
	}
	keys := regexp.MustCompile("`(listen|aggregate|librato|otlp|log|metrics)\\.([a-z_]+)[` ]").FindAllStringSubmatch(own.String(), -1)
	if len(keys) < 10 {
		t.Errorf("the Operations section names only %d keys", len(keys))
	}
	for _, m := range keys {
		if name := fmt.Sprintf("LIBRATOD_%s_%s", strings.ToUpper(m[1]), strings.ToUpper(m[2])); !l.asked[name] {
			t.Errorf("README Operations names %s.%s, which is not a key", m[1], m[2])
		}
	}
}

// k8sDeployment is the part of a Deployment the examples are checked for.
type k8sDeployment struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
				InitContainers                []k8sContainer `yaml:"initContainers"`
				Containers                    []k8sContainer `yaml:"containers"`
				Volumes                       []struct {
					Name     string `yaml:"name"`
					EmptyDir *struct {
						SizeLimit string `yaml:"sizeLimit"`
					} `yaml:"emptyDir"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// k8sContainer is the part of a container the examples are checked for.
type k8sContainer struct {
	Name          string `yaml:"name"`
	Image         string `yaml:"image"`
	RestartPolicy string `yaml:"restartPolicy"`
	Env           []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// k8sProbe is an HTTP probe.
type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

// parseDeploymentText parses text, the Kubernetes example at path (or a
// variant of it), as YAML: one document, a Deployment.
func parseDeploymentText(t *testing.T, path, text string) k8sDeployment {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(text))
	var d k8sDeployment
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s is not YAML of a Deployment: %v", path, err)
	}
	var more any
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		t.Fatalf("%s holds more than one document (%v)", path, err)
	}
	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
		t.Fatalf("%s: %s %s, want apps/v1 Deployment", path, d.APIVersion, d.Kind)
	}
	return d
}

// uncommentOTLP returns text with its commented-out LIBRATOD_OTLP_* env
// entries turned on ("# - name: LIBRATOD_OTLP_..." and the commented lines
// indented under it, at the same place), and how many there were.
func uncommentOTLP(text string) (string, int) {
	commented := func(line string) (indent, rest string, ok bool) {
		trimmed := strings.TrimLeft(line, " ")
		rest, ok = strings.CutPrefix(trimmed, "# ")
		return line[:len(line)-len(trimmed)], rest, ok
	}
	lines := strings.Split(text, "\n")
	n := 0
	for i := 0; i < len(lines); i++ {
		indent, rest, ok := commented(lines[i])
		if !ok || !strings.HasPrefix(rest, "- name: LIBRATOD_OTLP_") {
			continue
		}
		lines[i] = indent + rest
		n++
		for i+1 < len(lines) {
			ind, more, ok := commented(lines[i+1])
			if !ok || ind != indent || !strings.HasPrefix(more, "  ") {
				break
			}
			i++
			lines[i] = ind + more
		}
	}
	return strings.Join(lines, "\n"), n
}

// libratodContainer returns the container named libratod among cs.
func libratodContainer(cs []k8sContainer) *k8sContainer {
	for i := range cs {
		if cs[i].Name == "libratod" {
			return &cs[i]
		}
	}
	return nil
}

// TestKubernetesSidecarYAML parses both Kubernetes examples: the native
// sidecar (an init container with restartPolicy: Always, started before the
// application and stopped after it) and the variant for older clusters
// (an ordinary container that lingers after SIGTERM), and checks that the
// grace period covers libratod's stop. Each is checked as written and
// with its commented-out OTLP output turned on (uncommentOTLP).
func TestKubernetesSidecarYAML(t *testing.T) {
	for _, tc := range []struct {
		path       string
		native     bool
		wantLinger time.Duration
		otlp       bool
	}{
		{sidecarPath, true, 0, false},
		{legacyPath, false, 2 * time.Second, false},
		{sidecarPath, true, 0, true},
		{legacyPath, false, 2 * time.Second, true},
	} {
		name := filepath.Base(tc.path)
		if tc.otlp {
			name += "/otlp"
		}
		t.Run(name, func(t *testing.T) {
			text := readFile(t, tc.path)
			if tc.otlp {
				var n int
				if text, n = uncommentOTLP(text); n < 2 {
					t.Fatalf("%d commented-out LIBRATOD_OTLP_* variables, want the endpoint and the token", n)
				}
			}
			d := parseDeploymentText(t, tc.path, text)
			pod := d.Spec.Template.Spec
			lib, inInit := libratodContainer(pod.Containers), false
			if tc.native {
				lib, inInit = libratodContainer(pod.InitContainers), true
			}
			if lib == nil {
				t.Fatalf("no libratod container (native sidecar: %t)", tc.native)
			}
			if libratodContainer(pod.InitContainers) != nil && libratodContainer(pod.Containers) != nil {
				t.Error("libratod is both an init container and a container")
			}
			if inInit && lib.RestartPolicy != "Always" {
				t.Errorf("the libratod init container has restartPolicy %q: without Always it is an init container that must exit before the application starts", lib.RestartPolicy)
			}
			if !inInit && lib.RestartPolicy != "" {
				t.Errorf("restartPolicy %q on an ordinary container", lib.RestartPolicy)
			}
			if tc.native && (lib.StartupProbe == nil || !strings.HasPrefix(lib.StartupProbe.HTTPGet.Path, "/readyz")) {
				t.Error("the native sidecar has no startupProbe on /readyz: the application could start before the sockets are bound")
			}
			if lib.ReadinessProbe == nil || lib.LivenessProbe == nil {
				t.Error("libratod lacks a readiness or liveness probe")
			}
			if !slices.ContainsFunc(pod.Containers, func(c k8sContainer) bool { return c.Name != "libratod" }) {
				t.Error("no application container")
			}
			env := map[string]string{}
			for _, e := range lib.Env {
				if _, dup := env[e.Name]; dup {
					t.Errorf("%s set twice", e.Name)
				}
				env[e.Name] = e.Value
				if e.ValueFrom != nil {
					if e.ValueFrom.SecretKeyRef == nil || (e.Name != "LIBRATO_TOKEN" && e.Name != "LIBRATOD_OTLP_TOKEN") {
						t.Errorf("%s from %+v, want only the tokens from a secret", e.Name, e.ValueFrom)
					}
					env[e.Name] = "from-the-secret"
				}
			}
			cfg := parseWithEnv(t, containerConfig, env)
			if err := cfg.Validate(false); err != nil {
				t.Fatal(err)
			}
			if tc.otlp && (!cfg.OTLP.On() || string(cfg.OTLP.Token) != "from-the-secret") {
				t.Errorf("the OTLP output: endpoint %q, token from the secret %t", cfg.OTLP.Endpoint, string(cfg.OTLP.Token) == "from-the-secret")
			}
			// Each output that is on has its own spool (the OTLP output's in
			// spool_dir/otlp), each up to spool_max_bytes.
			spools := config.ByteSize(1)
			if cfg.OTLP.On() {
				spools = 2
			}
			// The spool is on a volume of the pod (the root file system is
			// read-only), one the spools' size limit fits in.
			mounted := false
			for _, m := range lib.VolumeMounts {
				if cfg.Librato.SpoolDir == "" || !strings.HasPrefix(cfg.Librato.SpoolDir, m.MountPath+"/") {
					continue
				}
				for _, v := range pod.Volumes {
					if v.Name != m.Name {
						continue
					}
					mounted = true
					var limit config.ByteSize
					if v.EmptyDir != nil && v.EmptyDir.SizeLimit != "" {
						if err := limit.UnmarshalText([]byte(v.EmptyDir.SizeLimit + "B")); err != nil {
							t.Errorf("sizeLimit %q: %v", v.EmptyDir.SizeLimit, err)
						}
						if limit <= spools*cfg.Librato.SpoolMaxBytes {
							t.Errorf("the spool volume's sizeLimit %s does not hold %d spools of spool_max_bytes %s: the pod would be evicted", v.EmptyDir.SizeLimit, spools, cfg.Librato.SpoolMaxBytes)
						}
					}
				}
			}
			if !mounted {
				t.Errorf("spool_dir %q is not on a volume of the pod", cfg.Librato.SpoolDir)
			}
			if cfg.Listen.ShutdownLinger != tc.wantLinger {
				t.Errorf("listen.shutdown_linger %v, want %v", cfg.Listen.ShutdownLinger, tc.wantLinger)
			}
			// libratod's stop: the linger, about 1s of draining, the final
			// flush; for a native sidecar the application's own stop comes
			// first, out of the same grace period.
			grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
			if need := cfg.Listen.ShutdownLinger + time.Second + cfg.Librato.ShutdownTimeout; grace < need+5*time.Second {
				t.Errorf("terminationGracePeriodSeconds %v: libratod alone needs up to %v", grace, need)
			}
		})
	}
}
