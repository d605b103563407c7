package testredis

import (
	"strings"
	"testing"
)

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	s := StartSentinel(t)
	old := s.Failover()
	now := s.WaitNewMaster(old)
	t.Logf("failover: %s -> %s", old, now)
	old = s.KillMaster()
	if again := s.WaitNewMaster(old); again == old {
		t.Fatalf("master still %s", again)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	c := StartCluster(t)
	if a, b := c.KeySlot("{x}a"), c.KeySlot("{x}b"); a != b {
		t.Fatalf("hash tag ignored: %d %d", a, b)
	}
}

func TestTLSOnly(t *testing.T) {
	t.Parallel()
	s := StartTLS(t)
	if !strings.HasPrefix(s.URL(), "rediss://127.0.0.1:") {
		t.Fatal(s.URL())
	}
	if r, err := Do(s.p.addr, s.TLSConfig(), "PING"); err != nil || r != "PONG" {
		t.Fatalf("PING over TLS = %v, %v", r, err)
	}
}
