// Package ops holds only tests: of the files operators run libratod with
// (the systemd unit, the Dockerfile and its configuration, the Kubernetes
// examples, the .deb and .rpm packages, the alert rules) and of the
// README's Operations section, against the configuration code and the
// binary built as the Dockerfile builds it. What needs the daemon's
// internals (its health handlers at the probes' paths, its registry for the
// metrics the rules and the dashboard query) is tested in package main.
package ops
