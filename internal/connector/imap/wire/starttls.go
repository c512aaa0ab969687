package wire

import (
	"crypto/tls"
	"fmt"
)

// StartTLS asks for TLS on a plain connection (RFC 3501 6.2.1) and shakes hands.
func (c *Conn) StartTLS(cfg *tls.Config) error {
	if _, err := c.command("STARTTLS"); err != nil {
		return err
	}
	return c.Handshake(cfg)
}

// Handshake turns the connection into a TLS one: after STARTTLS, or before the greeting for TLS
// from the start.
func (c *Conn) Handshake(cfg *tls.Config) error {
	t := tls.Client(c.nc, cfg)
	if err := t.Handshake(); err != nil {
		return fmt.Errorf("TLS with %s: %w", cfg.ServerName, err)
	}
	c.setConn(t)
	return nil
}
