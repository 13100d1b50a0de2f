package ops

// Tests of the OS packages (packaging/nfpm.yaml, scripts/package): their
// contents, modes, owners, config-file flags and maintainer scripts, the
// packaged systemd unit, and a .deb installed, upgraded in place, removed
// and purged with dpkg in a scratch root (never the machine's own).

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

const (
	packagedUnitPath = "../../../../packaging/libratod.service"
	packageScripts   = "../../../../packaging/scripts"
	configExample    = "../../../../config.example.toml"
	packageVersion   = "9.8.7-test" // packaged as 9.8.7~test-1
)

// TestPackagedUnit checks the packages' unit is systemd/libratod.service
// but for the packaged binary's path and the package's system user.
func TestPackagedUnit(t *testing.T) {
	src := parseUnit(readFile(t, unitPath))
	pkg := parseUnit(readFile(t, packagedUnitPath))
	differ := map[string]bool{"ExecStart": true, "DynamicUser": true, "User": true, "Group": true,
		"StateDirectory": true, "StateDirectoryMode": true}
	for section, keys := range src {
		for key, values := range keys {
			if !differ[key] && !slices.Equal(values, pkg[section][key]) {
				t.Errorf("[%s] %s: packaged %q, systemd/ has %q", section, key, pkg[section][key], values)
			}
		}
	}
	for section, keys := range pkg {
		for key := range keys {
			if _, ok := src[section][key]; !ok && !differ[key] {
				t.Errorf("[%s] %s is only in the packaged unit", section, key)
			}
		}
	}
	want := map[string][]string{
		"ExecStart":          {"/usr/bin/libratod -config /etc/libratod.toml"},
		"User":               {"libratod"},
		"Group":              {"libratod"},
		"StateDirectory":     {"libratod"},
		"StateDirectoryMode": {"0750"},
	}
	for key, values := range want {
		if got := pkg["Service"][key]; !slices.Equal(got, values) {
			t.Errorf("[Service] %s = %q, want %q", key, got, values)
		}
	}
	if _, ok := pkg["Service"]["DynamicUser"]; ok {
		t.Error("the packaged unit has DynamicUser: it runs as the package's user")
	}
}

// buildPackages runs scripts/package once for the tests of this file and
// returns the .deb and the .rpm.
func buildPackages(t *testing.T) (deb, rpm string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and the packages")
	}
	lookTool(t, "nfpm")
	dist := t.TempDir()
	cmd := exec.Command("scripts/package", packageVersion)
	cmd.Dir = "../../../.."
	cmd.Env = append(os.Environ(), "DIST="+dist)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/package: %v\n%s", err, stderr.String())
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case strings.HasSuffix(p, ".deb"):
			deb = p
		case strings.HasSuffix(p, ".rpm"):
			rpm = p
		}
	}
	if deb == "" || rpm == "" || !strings.HasPrefix(filepath.Base(deb), "libratod_9.8.7~test-1_") ||
		!strings.HasPrefix(filepath.Base(rpm), "libratod-9.8.7~test-1.") {
		t.Fatalf("scripts/package printed %q", out)
	}
	return deb, rpm
}

// packagedFile is what a package says of one of its files.
type packagedFile struct {
	mode      os.FileMode // type and permission bits
	owner     string
	group     string
	config    bool // a conffile / %config
	noreplace bool // rpm %config(noreplace); always so for a deb conffile
}

// wantFiles are the files both packages must hold, with their modes,
// owners and config flags.
var wantFiles = map[string]packagedFile{
	"/usr/bin/libratod":                                 {mode: 0o755, owner: "root", group: "root"},
	"/usr/lib/systemd/system/libratod.service":          {mode: 0o644, owner: "root", group: "root"},
	"/etc/libratod.toml":                                {mode: 0o640, owner: "root", group: "libratod", config: true, noreplace: true},
	"/etc/libratod":                                     {mode: os.ModeDir | 0o700, owner: "root", group: "root"},
	"/usr/share/libratod/libratod.env.example":          {mode: 0o644, owner: "root", group: "root"},
	"/usr/share/libratod/prometheus/libratod.rules.yml": {mode: 0o644, owner: "root", group: "root"},
	"/usr/share/libratod/grafana/libratod.json":         {mode: 0o644, owner: "root", group: "root"},
	"/var/lib/libratod":                                 {mode: os.ModeDir | 0o750, owner: "libratod", group: "libratod"},
}

// wantScripts maps each maintainer script to its source.
var wantScripts = map[string]string{
	"preinst": "preinstall.sh", "postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh",
}

func TestPackages(t *testing.T) {
	deb, rpm := buildPackages(t)
	t.Run("deb", func(t *testing.T) { checkDeb(t, deb) })
	t.Run("rpm", func(t *testing.T) { checkRPM(t, rpm) })
	t.Run("dpkg", func(t *testing.T) { installDeb(t, deb) })
}

// dpkgDeb runs dpkg-deb, skipping when it is absent.
func dpkgDeb(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not found: the .deb is not inspected")
	}
	var stderr bytes.Buffer
	cmd := exec.Command("dpkg-deb", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dpkg-deb %q: %v\n%s", args, err, stderr.String())
	}
	return out
}

func checkDeb(t *testing.T, deb string) {
	fields := string(dpkgDeb(t, "-f", deb, "Package", "Version", "Architecture"))
	if !strings.Contains(fields, "Package: libratod\n") || !strings.Contains(fields, "Version: 9.8.7~test-1\n") {
		t.Errorf("control fields:\n%s", fields)
	}

	// Contents: "drwxr-x--- libratod/libratod 0 2026-11-29 12:15
	// ./var/lib/libratod/".
	got := map[string]packagedFile{}
	for line := range strings.Lines(string(dpkgDeb(t, "-c", deb))) {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", line)
		}
		owner, group, _ := strings.Cut(f[1], "/")
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		got[path] = packagedFile{mode: parseLsMode(t, f[0]), owner: owner, group: group}
	}

	// Control: conffiles and maintainer scripts.
	tr := tar.NewReader(bytes.NewReader(dpkgDeb(t, "--ctrl-tarfile", deb)))
	control := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		control[name] = string(b)
		if _, ok := wantScripts[name]; ok && h.Mode&0o111 != 0o111 {
			t.Errorf("%s is not executable (%o)", name, h.Mode)
		}
	}
	for _, c := range strings.Fields(control["conffiles"]) {
		f := got[c]
		f.config, f.noreplace = true, true // dpkg never replaces a changed conffile without asking
		got[c] = f
	}
	for name, src := range wantScripts {
		if control[name] != readFile(t, filepath.Join(packageScripts, src)) {
			t.Errorf("%s differs from packaging/scripts/%s", name, src)
		}
	}
	compareFiles(t, got)

	// The files' content: the binary stamped with the version and commit,
	// the unit and the configuration from the repository.
	root := t.TempDir()
	dpkgDeb(t, "-x", deb, root)
	checkTree(t, root)
}

// checkTree checks the files of an unpacked or installed package under root.
func checkTree(t *testing.T, root string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, "usr/bin/libratod"), "-version").CombinedOutput()
	if err != nil {
		t.Fatalf("libratod -version: %v\n%s", err, out)
	}
	want := "libratod " + packageVersion + " (commit "
	if rev, err := exec.Command("git", "-C", "../../../..", "rev-parse", "HEAD").Output(); err == nil {
		want += strings.TrimSpace(string(rev))
	}
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("libratod -version = %q, want it to start with %q", out, want)
	}
	for path, src := range map[string]string{
		"usr/lib/systemd/system/libratod.service": packagedUnitPath,
		"etc/libratod.toml":                       configExample,
		"usr/share/libratod/libratod.env.example": envExamplePath,
	} {
		if readFile(t, filepath.Join(root, path)) != readFile(t, src) {
			t.Errorf("/%s differs from %s", path, src)
		}
	}
}

// parseLsMode parses "drwxr-x---" as ls and tar print it.
func parseLsMode(t *testing.T, s string) os.FileMode {
	t.Helper()
	if len(s) != 10 {
		t.Fatalf("mode %q", s)
	}
	var m os.FileMode
	switch s[0] {
	case 'd':
		m |= os.ModeDir
	case 'l':
		m |= os.ModeSymlink
	}
	for i, c := range s[1:] {
		if c != '-' {
			m |= 1 << (8 - i)
		}
	}
	return m
}

// compareFiles checks the wanted files against a package's listing.
func compareFiles(t *testing.T, got map[string]packagedFile) {
	t.Helper()
	for path, want := range wantFiles {
		g, ok := got[path]
		if !ok {
			t.Errorf("%s is not in the package", path)
			continue
		}
		if g.mode != want.mode || g.owner != want.owner || g.group != want.group || g.config != want.config || g.noreplace != want.noreplace {
			t.Errorf("%s: mode %v %s:%s config %v noreplace %v; want mode %v %s:%s config %v noreplace %v", path,
				g.mode, g.owner, g.group, g.config, g.noreplace, want.mode, want.owner, want.group, want.config, want.noreplace)
		}
	}
	for path, g := range got {
		if _, ok := wantFiles[path]; !ok && g.mode&os.ModeDir == 0 {
			t.Errorf("unexpected file %s in the package", path)
		}
	}
}

// RPM header tags and values (rpm's rpmtag.h, rpmfiles.h).
const (
	rpmTagName          = 1000
	rpmTagVersion       = 1001
	rpmTagRelease       = 1002
	rpmTagPreIn         = 1023
	rpmTagPostIn        = 1024
	rpmTagPreUn         = 1025
	rpmTagPostUn        = 1026
	rpmTagFileModes     = 1030
	rpmTagFileFlags     = 1037
	rpmTagFileUserName  = 1039
	rpmTagFileGroupName = 1040
	rpmTagDirIndexes    = 1116
	rpmTagBaseNames     = 1117
	rpmTagDirNames      = 1118

	rpmFileConfig    = 1 << 0
	rpmFileNoReplace = 1 << 4
)

// readRPMHeader reads the main header of an RPM file (after the 96-byte
// lead and the signature header): tag -> strings or integers.
func readRPMHeader(r io.Reader) (map[uint32]any, error) {
	br := bufio.NewReader(r)
	if _, err := io.CopyN(io.Discard, br, 96); err != nil {
		return nil, fmt.Errorf("lead: %w", err)
	}
	readHeader := func(pad bool) (map[uint32]any, error) {
		var pre [16]byte
		if _, err := io.ReadFull(br, pre[:]); err != nil {
			return nil, err
		}
		if !bytes.Equal(pre[:3], []byte{0x8e, 0xad, 0xe8}) {
			return nil, fmt.Errorf("bad header magic % x", pre[:4])
		}
		n := binary.BigEndian.Uint32(pre[8:])
		size := binary.BigEndian.Uint32(pre[12:])
		if n > 1<<16 || size > 64<<20 {
			return nil, fmt.Errorf("header of %d entries, %d bytes", n, size)
		}
		index := make([]byte, 16*n)
		store := make([]byte, size)
		if _, err := io.ReadFull(br, index); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(br, store); err != nil {
			return nil, err
		}
		if pad && size%8 != 0 {
			if _, err := io.CopyN(io.Discard, br, int64(8-size%8)); err != nil {
				return nil, err
			}
		}
		h := map[uint32]any{}
		for i := range n {
			e := index[16*i:]
			tag, typ := binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
			off, count := binary.BigEndian.Uint32(e[8:]), binary.BigEndian.Uint32(e[12:])
			if off >= size {
				return nil, fmt.Errorf("tag %d: offset %d past the store", tag, off)
			}
			data := store[off:]
			switch typ {
			case 3: // int16
				if uint32(len(data)) < 2*count {
					return nil, fmt.Errorf("tag %d: short", tag)
				}
				v := make([]int64, count)
				for j := range v {
					v[j] = int64(binary.BigEndian.Uint16(data[2*j:]))
				}
				h[tag] = v
			case 4: // int32
				if uint32(len(data)) < 4*count {
					return nil, fmt.Errorf("tag %d: short", tag)
				}
				v := make([]int64, count)
				for j := range v {
					v[j] = int64(binary.BigEndian.Uint32(data[4*j:]))
				}
				h[tag] = v
			case 6, 8, 9: // string, string array, i18n string
				v := make([]string, 0, count)
				for range max(count, 1) {
					s, rest, ok := bytes.Cut(data, []byte{0})
					if !ok {
						return nil, fmt.Errorf("tag %d: unterminated string", tag)
					}
					v, data = append(v, string(s)), rest
				}
				h[tag] = v
			}
		}
		return h, nil
	}
	if _, err := readHeader(true); err != nil {
		return nil, fmt.Errorf("signature header: %w", err)
	}
	h, err := readHeader(false)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	return h, nil
}

func checkRPM(t *testing.T, rpm string) {
	f, err := os.Open(rpm)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := readRPMHeader(f)
	if err != nil {
		t.Fatalf("%s: %v", rpm, err)
	}
	str := func(tag uint32) string {
		v, _ := h[tag].([]string)
		return strings.Join(v, "\n")
	}
	strs := func(tag uint32) []string { v, _ := h[tag].([]string); return v }
	ints := func(tag uint32) []int64 { v, _ := h[tag].([]int64); return v }
	if str(rpmTagName) != "libratod" || str(rpmTagVersion) != "9.8.7~test" || str(rpmTagRelease) != "1" {
		t.Errorf("name %q version %q release %q", str(rpmTagName), str(rpmTagVersion), str(rpmTagRelease))
	}
	base, dirs, dirIndex := strs(rpmTagBaseNames), strs(rpmTagDirNames), ints(rpmTagDirIndexes)
	modes, flags := ints(rpmTagFileModes), ints(rpmTagFileFlags)
	users, groups := strs(rpmTagFileUserName), strs(rpmTagFileGroupName)
	n := len(base)
	if n == 0 || len(dirIndex) != n || len(modes) != n || len(flags) != n || len(users) != n || len(groups) != n {
		t.Fatalf("file tags of unequal lengths: %d names, %d dir indexes, %d modes, %d flags, %d users, %d groups",
			n, len(dirIndex), len(modes), len(flags), len(users), len(groups))
	}
	got := map[string]packagedFile{}
	for i := range n {
		if dirIndex[i] < 0 || int(dirIndex[i]) >= len(dirs) {
			t.Fatalf("dir index %d out of range", dirIndex[i])
		}
		mode := os.FileMode(modes[i] & 0o777)
		switch modes[i] & 0o170000 {
		case 0o040000:
			mode |= os.ModeDir
		case 0o120000:
			mode |= os.ModeSymlink
		}
		got[dirs[dirIndex[i]]+base[i]] = packagedFile{mode: mode, owner: users[i], group: groups[i],
			config: flags[i]&rpmFileConfig != 0, noreplace: flags[i]&rpmFileNoReplace != 0}
	}
	compareFiles(t, got)
	for tag, src := range map[uint32]string{rpmTagPreIn: "preinstall.sh", rpmTagPostIn: "postinstall.sh",
		rpmTagPreUn: "preremove.sh", rpmTagPostUn: "postremove.sh"} {
		want := readFile(t, filepath.Join(packageScripts, src))
		if got := str(tag); strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Errorf("rpm script tag %d differs from packaging/scripts/%s:\n%s", tag, src, got)
		}
	}
}

// installDeb installs the .deb into a scratch root with dpkg, as a
// package manager would on a fresh machine, then reinstalls it over a
// changed configuration, removes it and purges it, checking the files,
// the system user and what is kept at each step. The maintainer scripts run
// without chroot, with DPKG_ROOT set, and touch only the scratch root.
func installDeb(t *testing.T, deb string) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not found: the .deb is not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: dpkg cannot set the files' owners, even in a scratch root")
	}
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range map[string]string{
		"var/lib/dpkg/status": "",
		"etc/passwd":          "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":           "root:x:0:\n",
		"etc/shadow":          "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":         "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	realPasswd := readFile(t, "/etc/passwd")
	dpkg := func(args ...string) string {
		t.Helper()
		args = append([]string{"--root=" + root, "--log=" + filepath.Join(root, "dpkg.log"), "--force-script-chrootless"}, args...)
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %q: %v\n%s", args, err, out)
		}
		return string(out)
	}

	out := dpkg("--install", deb)
	if !strings.Contains(out, "libratod -check -online") {
		t.Errorf("the install does not say how to check and start:\n%s", out)
	}
	uid, gid := -1, -1
	for line := range strings.Lines(readFile(t, filepath.Join(root, "etc/passwd"))) {
		if f := strings.Split(strings.TrimSpace(line), ":"); f[0] == "libratod" && len(f) == 7 {
			fmt.Sscan(f[2], &uid)
			fmt.Sscan(f[3], &gid)
			if f[5] != "/var/lib/libratod" || f[6] != "/usr/sbin/nologin" || uid >= 1000 || uid <= 0 {
				t.Errorf("user %q: want a system user with home /var/lib/libratod and no shell", line)
			}
		}
	}
	if uid < 0 || !strings.Contains(readFile(t, filepath.Join(root, "etc/group")), fmt.Sprintf("libratod:x:%d:", gid)) {
		t.Fatalf("no libratod user and group in the scratch root:\n%s", readFile(t, filepath.Join(root, "etc/passwd")))
	}
	if readFile(t, "/etc/passwd") != realPasswd {
		t.Fatal("the install changed the machine's /etc/passwd")
	}
	checkTree(t, root)
	for path, want := range map[string]struct {
		mode     os.FileMode
		uid, gid int
	}{
		"/usr/bin/libratod":  {0o755, 0, 0},
		"/etc/libratod.toml": {0o640, 0, gid},
		"/etc/libratod":      {os.ModeDir | 0o700, 0, 0},
		"/var/lib/libratod":  {os.ModeDir | 0o750, uid, gid},
	} {
		fi, err := os.Lstat(filepath.Join(root, path))
		if err != nil {
			t.Error(err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != want.mode || int(st.Uid) != want.uid || int(st.Gid) != want.gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", path, fi.Mode(), st.Uid, st.Gid, want.mode, want.uid, want.gid)
		}
	}

	// A changed configuration survives a reinstall (an upgrade) and a
	// removal; a purge deletes it and the state directory.
	cfg := filepath.Join(root, "etc/libratod.toml")
	edited := readFile(t, cfg) + "\n# edited by the admin\n"
	if err := os.WriteFile(cfg, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/libratod/spool"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	dpkg("--install", deb)
	if readFile(t, cfg) != edited {
		t.Error("a reinstall replaced the edited /etc/libratod.toml")
	}
	dpkg("--remove", "libratod")
	if _, err := os.Stat(filepath.Join(root, "usr/bin/libratod")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/usr/bin/libratod after removal: %v", err)
	}
	if readFile(t, cfg) != edited {
		t.Error("the removal deleted the edited /etc/libratod.toml")
	}
	dpkg("--purge", "libratod")
	for _, p := range []string{"etc/libratod.toml", "var/lib/libratod"} {
		if _, err := os.Stat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("/%s after purge: %v", p, err)
		}
	}
}

// TestREADMEFirstScreen checks the README's first screen tells an operator
// how to install from the package, check the credentials and find the
// alerts and the dashboard, with paths that exist.
func TestREADMEFirstScreen(t *testing.T) {
	lines := strings.Split(readFile(t, readmePath), "\n")
	first := strings.Join(lines[:min(len(lines), 30)], "\n")
	for _, want := range []string{
		"scripts/package 1.2.3",
		"apt install ./dist/libratod_1.2.3-1_amd64.deb",
		"dnf install ./dist/libratod-1.2.3-1.x86_64.rpm",
		"/usr/share/libratod/libratod.env.example /etc/libratod/env",
		"libratod -check -online",
		"systemctl enable --now libratod",
		"(deploy/prometheus/libratod.rules.yml)",
		"(deploy/grafana/libratod.json)",
		"(#alerts-and-dashboard)",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("the README's first 30 lines lack %q", want)
		}
	}
	for _, p := range []string{rulesPath, dashboardPath, envExamplePath} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}
	if _, ok := wantFiles["/usr/share/libratod/libratod.env.example"]; !ok {
		t.Error("the package does not hold the env example the README installs")
	}
}
