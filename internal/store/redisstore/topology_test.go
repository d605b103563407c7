package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/store/storetest"
	"github.com/sesame-id/sesame/internal/testredis"
)

// conformance runs the store suite on stores opened from cfg. The suite
// checks semantics, not latency: its racing subtests hammer three to five
// servers on a shared CI machine, so the per-call deadline is raised from
// the 500 ms default (the fault tests pin the default's behaviour).
func conformance(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Timeout = 3 * time.Second
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestConformanceSentinel runs the suite through three sentinels to a
// master with one replica.
func TestConformanceSentinel(t *testing.T) {
	t.Parallel()
	r := testredis.StartSentinel(t)
	conformance(t, Config{Addrs: r.Addrs(), MasterName: r.MasterName()})
}

// TestConformanceCluster runs the suite on a three-master Cluster: the
// suite's keys spread over the nodes, so multi-key operations must be split
// by slot.
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	r := testredis.StartCluster(t)
	conformance(t, Config{Addrs: r.Addrs()})
}

// TestConformanceTLS runs the suite over TLS, trusting a private CA, as an
// ACL user (the default user is off).
func TestConformanceTLS(t *testing.T) {
	t.Parallel()
	r := testredis.StartTLS(t)
	r.AddUser("sesame", "acl-pw-31f0")
	conformance(t, Config{URL: r.URL(), TLSCAFile: r.CAFile(), Username: "sesame", Password: "acl-pw-31f0"})
}

// TestTLSRefused: without the CA the certificate is not trusted, a wrong
// ACL password is refused, and a CA file needs rediss://.
func TestTLSRefused(t *testing.T) {
	t.Parallel()
	r := testredis.StartTLS(t)
	r.AddUser("sesame", "acl-pw-31f0")
	ctx := context.Background()
	for name, cfg := range map[string]Config{
		"no CA":          {URL: r.URL(), Username: "sesame", Password: "acl-pw-31f0"},
		"wrong password": {URL: r.URL(), TLSCAFile: r.CAFile(), Username: "sesame", Password: "nope"},
		"default user":   {URL: r.URL(), TLSCAFile: r.CAFile()},
	} {
		s, err := Open(cfg)
		if err != nil {
			t.Fatalf("%s: Open: %v", name, err)
		}
		err = s.Ping(ctx)
		_ = s.Close()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: Ping = %v, want ErrUnavailable", name, err)
		}
	}
	// Control: the same server with the CA and the password answers.
	good, err := Open(Config{URL: r.URL(), TLSCAFile: r.CAFile(), Username: "sesame", Password: "acl-pw-31f0"})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if err := good.Ping(ctx); err != nil {
		t.Fatalf("control: Ping with CA and password = %v", err)
	}
	if _, err := Open(Config{URL: "redis://127.0.0.1:1", TLSCAFile: r.CAFile()}); err == nil {
		t.Error("a CA file with redis:// was accepted")
	}
	if _, err := Open(Config{URL: r.URL(), TLSCAFile: "/nonexistent/ca.pem"}); err == nil {
		t.Error("a missing CA file was accepted")
	}
}

// TestClusterTLS runs the suite on a Cluster that speaks TLS only,
// reached through Addrs with TLS and a private CA, as an ACL user; a URL
// with TLS is refused (its scheme says it), and without the CA the
// nodes' certificates are not trusted.
func TestClusterTLS(t *testing.T) {
	t.Parallel()
	c := testredis.StartClusterWith(t, testredis.ClusterOptions{TLS: true})
	c.AddUser("sesame", "acl-pw-7c1a")
	conformance(t, Config{Addrs: c.Addrs(), TLS: true, TLSCAFile: c.CAFile(), Username: "sesame", Password: "acl-pw-7c1a"})

	if _, err := Open(Config{URL: "rediss://127.0.0.1:1", TLS: true}); err == nil {
		t.Error("TLS with a URL was accepted")
	}
	noCA, err := Open(Config{Addrs: c.Addrs(), TLS: true, Username: "sesame", Password: "acl-pw-7c1a"})
	if err != nil {
		t.Fatal(err)
	}
	defer noCA.Close()
	if err := noCA.Ping(context.Background()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("without the CA: Ping = %v, want ErrUnavailable", err)
	}
}
