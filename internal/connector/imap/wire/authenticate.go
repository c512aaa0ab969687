package wire

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// Authenticate signs in with a SASL mechanism (RFC 3501 6.2.2). The initial response goes with
// the first challenge; later challenges go to the mechanism, whose error ends the exchange.
func (c *Conn) Authenticate(sc sasl.Client) error {
	mech, ir, err := sc.Start()
	if err != nil {
		return err
	}
	tag := c.send("AUTHENTICATE " + mech + "\r\n")
	if err := c.flush(); err != nil {
		return err
	}
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, "+") {
			resp := ir
			if ir == nil {
				challenge, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(line, "+")))
				if err != nil {
					return fmt.Errorf("AUTHENTICATE challenge: %w", err)
				}
				if resp, err = sc.Next(challenge); err != nil {
					return err
				}
			}
			c.w.WriteString(base64.StdEncoding.EncodeToString(resp) + "\r\n")
			ir = nil
			if err := c.flush(); err != nil {
				return err
			}
			continue
		}
		if done, err := tagged(line, tag); done {
			return err
		}
	}
}
