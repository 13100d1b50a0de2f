// Package sdnotify speaks systemd's sd_notify protocol: each message is one
// datagram of "KEY=value" lines sent to the unix socket named by
// $NOTIFY_SOCKET, and a service with WatchdogSec= sends "WATCHDOG=1"
// keep-alives.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// The states a daemon reports.
const (
	Ready     = "READY=1"     // started, or done reloading
	Reloading = "RELOADING=1" // a configuration reload has begun
	Stopping  = "STOPPING=1"  // shutting down
	Watchdog  = "WATCHDOG=1"  // the keep-alive
)

// writeTimeout bounds one send: a unix datagram socket blocks when the
// receiver's queue is full, and a stuck service manager must not stop the
// daemon.
const writeTimeout = time.Second

// Notifier sends notifications to systemd. The zero value sends nothing,
// which is what happens outside systemd (or under Type=simple).
type Notifier struct {
	socket   string        // $NOTIFY_SOCKET: an absolute path, or "@name" in the abstract namespace; "" disables
	watchdog time.Duration // keep-alive interval, half of $WATCHDOG_USEC; 0: systemd runs no watchdog for us
}

// FromEnv reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID with
// getenv. The watchdog is off when WATCHDOG_USEC is unset or not a
// positive number, or when WATCHDOG_PID names another process.
func FromEnv(getenv func(string) string) Notifier {
	n := Notifier{socket: getenv("NOTIFY_SOCKET")}
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

// WatchdogInterval returns how often keep-alives are due: half the
// watchdog's timeout, or 0 when systemd runs no watchdog for this process
// or there is no socket to send them to.
func (n Notifier) WatchdogInterval() time.Duration {
	if n.socket == "" {
		return 0
	}
	return n.watchdog
}

// Notify sends state, e.g. Ready, to systemd. It does nothing and returns
// nil when there is no notification socket.
func (n Notifier) Notify(state string) error {
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
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", state, err)
	}
	return nil
}

// StartWatchdog sends a keep-alive every WatchdogInterval from a goroutine
// until the returned stop is called, giving each failure to failed; stop
// waits for that goroutine to end. Without a watchdog it starts nothing.
func (n Notifier) StartWatchdog(failed func(error)) (stop func()) {
	every := n.WatchdogInterval()
	if every <= 0 {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if err := n.Notify(Watchdog); err != nil {
					failed(err)
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
