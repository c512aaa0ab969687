package wire

// Select opens a mailbox (RFC 3501 6.3.1), unless it is the one already selected.
func (c *Conn) Select(mailbox string) error {
	if c.Selected == mailbox {
		return nil
	}
	if _, err := c.command("SELECT " + Quote(UTF7(mailbox))); err != nil {
		return err
	}
	c.Selected = mailbox
	return nil
}
