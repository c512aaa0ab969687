package wire

// Logout says goodbye without waiting for the answer, then closes the connection.
func (c *Conn) Logout() error {
	c.send("LOGOUT\r\n")
	c.flush()
	return c.Close()
}
