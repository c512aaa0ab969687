package cli

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/internal/model"
)

// tokenCommand makes cmd, when given, the endpoint's source of XOAUTH2 access tokens: it is run
// by sh at every sign-in and prints the token, as mbsync's PassCmd does. Its standard error is
// kept for the error message; the token itself is never shown.
func tokenCommand(e *endpointURL, cmd, what string) error {
	if cmd == "" {
		return nil
	}
	if e.kind != model.KindIMAP {
		return withCode(ExitUsage, fmt.Errorf("--%s-token-cmd is for imap:// endpoints (m365 signs in with the app's client secret)", what))
	}
	switch strings.ToLower(e.settings.Auth) {
	case "":
		e.settings.Auth = "xoauth2"
	case "xoauth2":
	default:
		return withCode(ExitUsage, fmt.Errorf("--%s-token-cmd gives OAuth tokens, but the %s URL asks for auth=%s", what, what, e.settings.Auth))
	}
	e.token = func(ctx context.Context) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		c := exec.CommandContext(ctx, "sh", "-c", cmd)
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			if msg := strings.TrimSpace(stderr.String()); msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
			return "", fmt.Errorf("--%s-token-cmd: %w", what, err)
		}
		tok, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if tok = strings.TrimSpace(tok); tok == "" {
			return "", fmt.Errorf("--%s-token-cmd printed no token", what)
		}
		return tok, nil
	}
	return nil
}
