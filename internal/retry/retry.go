// Package retry holds what every client of a remote service shares about trying again: which
// errors are the connection failing rather than the service answering. The IMAP connector and the
// Graph client both ask it, on error types, never on their text.
package retry

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// NetworkError reports whether err is the connection failing — reset, closed, timed out, cut
// short — rather than the server answering: worth a new connection and another try.
func NetworkError(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
