package main

import "github.com/libratod/libratod/cmd/libratod/internal/sdnotify"

// sendNotify sends state and logs a failure: systemd notifications are
// best effort and never stop the daemon.
func (d *daemon) sendNotify(state string) {
	if err := d.notify.Notify(state); err != nil {
		d.notifyFailed(err)
	}
}

// notifyFailed logs a failed notification.
func (d *daemon) notifyFailed(err error) {
	d.log.Warn().Err(err).Msg("cannot notify systemd")
}

// notifyStarted tells systemd the daemon is ready (call it once the
// listeners are bound) and, when systemd runs a watchdog for the service,
// sends keep-alives until the returned stop is called.
func (d *daemon) notifyStarted() (stop func()) {
	d.sendNotify(sdnotify.Ready)
	return d.notify.StartWatchdog(d.notifyFailed)
}

// notifyReloading tells systemd a configuration reload has begun; call
// notifyReady when it has ended, whether or not it succeeded.
func (d *daemon) notifyReloading() {
	d.sendNotify(sdnotify.Reloading)
}

// notifyReady tells systemd the daemon is ready again after a reload.
func (d *daemon) notifyReady() {
	d.sendNotify(sdnotify.Ready)
}

// notifyStopping marks the daemon as shutting down: /readyz answers 503
// from now on and systemd is told the service is stopping.
func (d *daemon) notifyStopping() {
	d.health.stop()
	d.sendNotify(sdnotify.Stopping)
}
