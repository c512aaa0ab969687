package retry

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
)

func TestNetworkError(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("NO [ALREADYEXISTS] folder exists"), false},
		{errors.New("connection reset by peer"), false}, // text alone is no proof
		{fmt.Errorf("fetch: %w", reset), true},
		{fmt.Errorf("append: %w", syscall.EPIPE), true},
		{fmt.Errorf("read literal: %w", io.ErrUnexpectedEOF), true},
		{io.EOF, true},
		{fmt.Errorf("write: %w", net.ErrClosed), true},
		{&url.Error{Op: "Get", URL: "https://graph.example/", Err: errors.New("http: server closed idle connection")}, true},
	} {
		if got := NetworkError(c.err); got != c.want {
			t.Errorf("NetworkError(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
