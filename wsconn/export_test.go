package wsconn

// CloseCodeOf is closeCode for the tests of package wsconn_test.
func CloseCodeOf(c *Conn) StatusCode { return closeCode(c) }
