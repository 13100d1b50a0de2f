//go:build unix

package listener

// unixgramSupported says whether Unix datagram sockets are available.
const unixgramSupported = true
