package app

import "testing"

// TestOpsServerTimeouts: the operations server closes idle keep-alive
// connections and bounds slow requests, so no client holds a connection
// open for ever.
func TestOpsServerTimeouts(t *testing.T) {
	o, err := startOps("127.0.0.1:0", nil, func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer o.shutdown(0)
	s := o.srv
	if s.IdleTimeout != opsIdleTimeout || s.IdleTimeout <= 0 || s.ReadTimeout <= 0 || s.WriteTimeout <= 0 || s.ReadHeaderTimeout <= 0 {
		t.Errorf("timeouts: idle %s, read %s, write %s, header %s; want all set", s.IdleTimeout, s.ReadTimeout, s.WriteTimeout, s.ReadHeaderTimeout)
	}
}
