package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// commit is the VCS revision, stamped at build time with
// -ldflags "-X main.commit=$(git rev-parse HEAD)". Empty: the revision Go
// recorded in the build info (vcs.revision), if any.
var commit = ""

// build describes this binary: what -version prints, the User-Agent carries
// and libratod_build_info exports.
type build struct {
	// Version is the release: the -X main.version stamp, else the main
	// module's version from the build info (as `go install ...@v1.2.3`
	// records it), else "dev".
	Version string
	// Commit is the VCS revision: the -X main.commit stamp, else the build
	// info's vcs.revision with "+dirty" when vcs.modified is true, else
	// "unknown".
	Commit string
	// GoVersion is the Go release that built the binary, such as "go1.26.8".
	GoVersion string
}

// currentBuild returns the build of the running binary.
func currentBuild() build {
	info, _ := debug.ReadBuildInfo()
	return buildFrom(info, version, commit)
}

// buildFrom derives the build from the build info (nil when unavailable)
// and the -ldflags stamps (version "dev" and commit "" mean not stamped).
func buildFrom(info *debug.BuildInfo, stampedVersion, stampedCommit string) build {
	b := build{Version: stampedVersion, Commit: stampedCommit, GoVersion: runtime.Version()}
	if info != nil {
		if info.GoVersion != "" {
			b.GoVersion = info.GoVersion
		}
		if (b.Version == "" || b.Version == "dev") && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		if b.Commit == "" {
			var revision string
			var modified bool
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					revision = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if revision != "" {
				b.Commit = revision
				if modified {
					b.Commit += "+dirty"
				}
			}
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

// String is the version line: "1.2.3 (commit 0123abc; go1.26.8; linux/amd64)".
// -version prints it after "libratod " and the User-Agent after "libratod/".
func (b build) String() string {
	return fmt.Sprintf("%s (commit %s; %s; %s/%s)", b.Version, b.Commit, b.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// versionString is what -version prints and what the User-Agent carries.
func versionString() string {
	return currentBuild().String()
}

// registerBuildInfo exports libratod_build_info{version,commit,goversion} = 1.
func registerBuildInfo(reg prometheus.Registerer) error {
	b := currentBuild()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "libratod_build_info",
		Help: "Always 1; the labels say which build of libratod is running.",
		ConstLabels: prometheus.Labels{
			"version":   b.Version,
			"commit":    b.Commit,
			"goversion": b.GoVersion,
		},
	})
	g.Set(1)
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("libratod_build_info: %w", err)
	}
	return nil
}
