package wire

import (
	"errors"
	"strings"
)

// Login signs in with LOGIN (RFC 3501 6.2.3).
func (c *Conn) Login(user, password string) error {
	if strings.ContainsAny(user+password, "\r\n\x00") {
		return errors.New("user or password holds a line break")
	}
	_, err := c.command("LOGIN " + Quote(user) + " " + Quote(password))
	return err
}
