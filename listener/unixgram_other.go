//go:build !unix

package listener

// unixgramSupported says whether Unix datagram sockets are available: not here
// (Windows only has stream sockets).
const unixgramSupported = false
