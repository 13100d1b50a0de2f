package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// notifier tells systemd about the daemon's state with the sd_notify
// protocol: each message is one datagram of "KEY=value" lines sent to the
// unix socket named by $NOTIFY_SOCKET. The zero value sends nothing, which
// is what happens outside systemd (or under Type=simple).
type notifier struct {
	socket   string        // $NOTIFY_SOCKET: an absolute path, or "@name" in the abstract namespace; "" disables
	watchdog time.Duration // keep-alive interval, half of $WATCHDOG_USEC; 0: systemd runs no watchdog for us
}

// notifyWriteTimeout bounds one send: a unix datagram socket blocks when
// the receiver's queue is full, and a stuck service manager must not stop
// the daemon.
const notifyWriteTimeout = time.Second

// newNotifier reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID with
// getenv. The watchdog is off when WATCHDOG_USEC is unset or not a
// positive number, or when WATCHDOG_PID names another process.
func newNotifier(getenv func(string) string) notifier {
	n := notifier{socket: getenv("NOTIFY_SOCKET")}
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return n
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return n
	}
	n.watchdog = time.Duration(usec) * time.Microsecond / 2
	return n
}

// notify sends state, e.g. "READY=1", to systemd. It does nothing and
// returns nil when there is no notification socket.
func (n notifier) notify(state string) error {
	if n.socket == "" {
		return nil
	}
	// The net package maps a leading '@' to the abstract namespace's NUL.
	if !strings.HasPrefix(n.socket, "/") && !strings.HasPrefix(n.socket, "@") {
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET %q is neither an absolute path nor an abstract socket", n.socket)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(notifyWriteTimeout)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", state, err)
	}
	return nil
}

// sendNotify sends state and logs a failure: systemd notifications are
// best effort and never stop the daemon.
func (d *daemon) sendNotify(state string) {
	if err := d.notify.notify(state); err != nil {
		d.log.Warn().Err(err).Msg("cannot notify systemd")
	}
}

// notifyStarted tells systemd the daemon is ready (call it once the
// listeners are bound) and, when systemd runs a watchdog for the service,
// sends keep-alives from a goroutine until the returned stop is called.
// stop waits for that goroutine to end.
func (d *daemon) notifyStarted() (stop func()) {
	d.sendNotify("READY=1")
	if d.notify.socket == "" || d.notify.watchdog <= 0 {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d.notify.watchdog)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				d.sendNotify("WATCHDOG=1")
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// notifyReloading tells systemd a configuration reload has begun; call
// notifyReady when it has ended, whether or not it succeeded.
func (d *daemon) notifyReloading() {
	d.sendNotify("RELOADING=1")
}

// notifyReady tells systemd the daemon is ready again after a reload.
func (d *daemon) notifyReady() {
	d.sendNotify("READY=1")
}

// notifyStopping marks the daemon as shutting down: /readyz answers 503
// from now on and systemd is told the service is stopping.
func (d *daemon) notifyStopping() {
	d.health.stop()
	d.sendNotify("STOPPING=1")
}
