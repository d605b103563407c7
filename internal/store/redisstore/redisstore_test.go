package redisstore

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/store/storetest"
	"github.com/sesame-id/sesame/internal/testredis"
)

func TestConformance(t *testing.T) {
	srv := testredis.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(Config{URL: srv.URL()})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestConformanceNew runs the suite on a caller-built client with go-redis
// defaults (retries on), as New allows.
func TestConformanceNew(t *testing.T) {
	srv := testredis.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s := New(redis.NewClient(&redis.Options{Addr: srv.Socket(), ContextTimeoutEnabled: true}), Options{})
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// secretKey stands for a session id: it must never show up in errors.
const secretKey = "sess:SECRET-4f9a2c"

type op struct {
	name string
	run  func(ctx context.Context, s *Store) error
}

var ops = []op{
	{"Get", func(ctx context.Context, s *Store) error { _, err := s.Get(ctx, secretKey); return err }},
	{"Put", func(ctx context.Context, s *Store) error { return s.Put(ctx, secretKey, []byte("v"), time.Minute) }},
	{"Add", func(ctx context.Context, s *Store) error {
		_, err := s.Add(ctx, secretKey+":add", []byte("v"), time.Minute)
		return err
	}},
	{"Delete", func(ctx context.Context, s *Store) error { return s.Delete(ctx, secretKey) }},
	{"Take", func(ctx context.Context, s *Store) error { _, err := s.Take(ctx, secretKey); return err }},
	{"Ping", func(ctx context.Context, s *Store) error { return s.Ping(ctx) }},
}

// wantUnavailable runs every operation against a broken backend and checks
// each fails fast with ErrUnavailable.
func wantUnavailable(t *testing.T, s *Store, timeout time.Duration) {
	t.Helper()
	// Generous slack for a loaded CI machine, yet below go-redis's own
	// 3 s read and 5 s dial defaults, so a missing per-call deadline (or a
	// hang) still fails.
	limit := timeout + 1500*time.Millisecond
	for _, o := range ops {
		start := time.Now()
		err := o.run(context.Background(), s)
		elapsed := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s on broken Redis = %v, want an error wrapping only ErrUnavailable", o.name, err)
		}
		if elapsed > limit {
			t.Errorf("%s on broken Redis took %v, want < %v", o.name, elapsed, limit)
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s error leaks the key: %v", o.name, err)
		}
	}
}

// eventually retries fn until it succeeds or 5 s pass. After repeated dial
// failures go-redis stops dialling and probes once a second, so recovery is
// not instantaneous.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 5s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The fault tests run in parallel with each other: each owns its server and
// they mostly wait on timeouts.
func TestRedisKilledAndRestarted(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	const timeout = 200 * time.Millisecond
	s, err := Open(Config{URL: srv.URL(), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, secretKey, []byte("before"), time.Minute); err != nil {
		t.Fatalf("Put before the outage: %v", err)
	}

	srv.Kill()
	wantUnavailable(t, s, timeout)

	srv.Restart()
	eventually(t, "Ping after restart", func() error { return s.Ping(ctx) })
	if _, err := s.Get(ctx, secretKey); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after restart of a non-persistent Redis = %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, secretKey, []byte("after"), time.Minute); err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	if v, err := s.Take(ctx, secretKey); err != nil || string(v) != "after" {
		t.Fatalf("Take after restart = %q, %v", v, err)
	}
	if ok, err := s.Add(ctx, secretKey, []byte("x"), time.Minute); err != nil || !ok {
		t.Fatalf("Add after restart = %v, %v", ok, err)
	}
}

func TestRedisHung(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	const timeout = 200 * time.Millisecond
	s, err := Open(Config{URL: srv.URL(), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, secretKey, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	wantUnavailable(t, s, timeout)
	srv.Resume()

	eventually(t, "Get after resume", func() error {
		v, err := s.Get(ctx, secretKey)
		if err == nil && string(v) != "v" {
			t.Fatalf("Get after resume = %q", v)
		}
		return err
	})
}

func TestCallerDeadlineIsNotAnOutage(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	s, err := Open(Config{URL: srv.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.Pause()
	defer srv.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get whose caller deadline expired = %v, want DeadlineExceeded without ErrUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Fatalf("caller deadline of 100ms honoured only after %v", elapsed)
	}
}

// dropProxy forwards a client to Redis, except that the first command
// mentioning marker on a connection is delivered to Redis and executed, its
// reply withheld, and the connection cut: the "written but no answer" case in
// which a client library is tempted to resend.
type dropProxy struct {
	ln       net.Listener
	upstream string
	marker   []byte
	sent     atomic.Int32 // commands with marker delivered to Redis
	wg       sync.WaitGroup
}

func startDropProxy(t *testing.T, upstream string, marker string) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, upstream: upstream, marker: []byte(marker)}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		_ = ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *dropProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.handle(c) })
	}
}

func (p *dropProxy) handle(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("unix", p.upstream)
	if err != nil {
		return
	}
	defer u.Close()

	var dropping atomic.Bool
	replyDropped := make(chan struct{})
	p.wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := u.Read(buf)
			if n > 0 && dropping.Load() {
				close(replyDropped)
				return
			}
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				_ = c.Close()
				return
			}
		}
	})

	buf := make([]byte, 64<<10)
	for {
		// go-redis writes each command with one write, so a single read sees
		// the whole command on a local socket.
		n, err := c.Read(buf)
		if n > 0 && bytes.Contains(buf[:n], p.marker) {
			dropping.Store(true)
			p.sent.Add(1)
			_, _ = u.Write(buf[:n])
			// Cut only once Redis has executed and answered.
			select {
			case <-replyDropped:
			case <-time.After(2 * time.Second):
			}
			return
		}
		if n > 0 {
			if _, err := u.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestSingleUseOpsAreNotRetried checks that Take and Add are sent at most
// once even by a client configured to retry (see noRetry for why).
func TestSingleUseOpsAreNotRetried(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	direct := redis.NewClient(&redis.Options{Addr: srv.Socket()})
	defer direct.Close()
	ctx := context.Background()

	viaProxy := func(marker string) (*dropProxy, *redis.Client) {
		p := startDropProxy(t, srv.Socket(), marker)
		c := redis.NewClient(&redis.Options{
			Addr:                  p.ln.Addr().String(),
			MaxRetries:            3,
			MinRetryBackoff:       time.Millisecond,
			MaxRetryBackoff:       5 * time.Millisecond,
			ContextTimeoutEnabled: true,
		})
		t.Cleanup(func() { _ = c.Close() })
		return p, c
	}

	// Control: the harness must see a plain go-redis GETDEL resent,
	// otherwise the assertions below prove nothing.
	{
		k := "probe:control"
		if err := direct.Set(ctx, k, "v", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		p, c := viaProxy(k)
		_ = c.GetDel(ctx, k).Err()
		if n := p.sent.Load(); n < 2 {
			t.Fatalf("control: plain GetDel reached Redis %d time(s); the proxy no longer provokes retries, fix the test", n)
		}
	}

	t.Run("Take", func(t *testing.T) {
		k := "probe:take"
		if err := direct.Set(ctx, k, "code", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		p, c := viaProxy(k)
		s := New(c, Options{Timeout: 3 * time.Second})
		v, err := s.Take(ctx, k)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Take with the reply lost = %q, %v; want ErrUnavailable (a resend would say ErrNotFound)", v, err)
		}
		if n := p.sent.Load(); n != 1 {
			t.Errorf("GETDEL reached Redis %d times, want exactly 1", n)
		}
		if err := direct.Get(ctx, k).Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("Redis did not execute the GETDEL (Get = %v); the test setup is broken", err)
		}
	})

	t.Run("Add", func(t *testing.T) {
		k := "probe:add"
		p, c := viaProxy(k)
		s := New(c, Options{Timeout: 3 * time.Second})
		ok, err := s.Add(ctx, k, []byte("jti"), time.Minute)
		if !errors.Is(err, store.ErrUnavailable) || ok {
			t.Errorf("Add with the reply lost = %v, %v; want false, ErrUnavailable (a resend would say false, nil: a replay)", ok, err)
		}
		if n := p.sent.Load(); n != 1 {
			t.Errorf("SET NX reached Redis %d times, want exactly 1", n)
		}
		if err := direct.Get(ctx, k).Err(); err != nil {
			t.Errorf("Redis did not execute the SET NX (Get = %v); the test setup is broken", err)
		}
	})
}

func TestPassword(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	const password = "pw-7c1e0b"
	admin := redis.NewClient(&redis.Options{Addr: srv.Socket()})
	defer admin.Close()
	if err := admin.ConfigSet(context.Background(), "requirepass", password).Err(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	good, err := Open(Config{URL: srv.URL(), Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if err := good.Ping(ctx); err != nil {
		t.Fatalf("Ping with Config.Password: %v", err)
	}

	bad, err := Open(Config{URL: "unix://:wrong-" + password + "@" + srv.Socket()})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	err = bad.Ping(ctx)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping with a wrong password = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestUniversalOptions(t *testing.T) {
	t.Run("unix URL", func(t *testing.T) {
		u, err := universalOptions(Config{URL: "unix:///run/redis/redis.sock?db=3"})
		if err != nil {
			t.Fatal(err)
		}
		if len(u.Addrs) != 1 || u.Addrs[0] != "/run/redis/redis.sock" || u.DB != 3 {
			t.Fatalf("Addrs=%q DB=%d", u.Addrs, u.DB)
		}
		if u.ReadTimeout != DefaultTimeout || u.DialTimeout != DefaultTimeout || !u.ContextTimeoutEnabled {
			t.Fatalf("timeouts not defaulted: dial=%v read=%v ctx=%v", u.DialTimeout, u.ReadTimeout, u.ContextTimeoutEnabled)
		}
	})
	t.Run("rediss URL with overrides", func(t *testing.T) {
		u, err := universalOptions(Config{
			URL:      "rediss://app:from-url@redis.example:6380/2?read_timeout=2s",
			Password: "from-secret",
			DB:       5,
			Timeout:  time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case u.Addrs[0] != "redis.example:6380":
			t.Errorf("Addrs = %q", u.Addrs)
		case u.TLSConfig == nil || u.TLSConfig.ServerName != "redis.example":
			t.Errorf("rediss did not enable TLS for redis.example: %+v", u.TLSConfig)
		case u.Username != "app" || u.Password != "from-secret" || u.DB != 5:
			t.Errorf("user=%q password override=%v DB=%d", u.Username, u.Password == "from-secret", u.DB)
		case u.ReadTimeout != 2*time.Second || u.WriteTimeout != time.Second:
			t.Errorf("read=%v (URL says 2s) write=%v (Timeout says 1s)", u.ReadTimeout, u.WriteTimeout)
		}
	})
	t.Run("client kinds", func(t *testing.T) {
		for _, tc := range []struct {
			cfg     Config
			cluster bool
		}{
			{Config{Addrs: []string{"a:6379"}}, false},
			{Config{Addrs: []string{"a:26379", "b:26379"}, MasterName: "mymaster"}, false},
			{Config{Addrs: []string{"a:6379", "b:6379", "c:6379"}}, true},
		} {
			s, err := Open(tc.cfg)
			if err != nil {
				t.Fatalf("Open(%+v): %v", tc.cfg, err)
			}
			_, isCluster := s.client.(*redis.ClusterClient)
			_, isSimple := s.client.(*redis.Client)
			if isCluster != tc.cluster || isSimple == tc.cluster {
				t.Errorf("Open(%+v) built a %T", tc.cfg, s.client)
			}
			_ = s.Close()
		}
	})
	for name, cfg := range map[string]Config{
		"nothing":             {},
		"URL and Addrs":       {URL: "redis://a", Addrs: []string{"b:6379"}},
		"MasterName with URL": {URL: "redis://a", MasterName: "m"},
		"DB on Cluster":       {Addrs: []string{"a:1", "b:1"}, DB: 1},
		"bad scheme":          {URL: "http://a"},
		"bad database":        {URL: "redis://a/notanumber"},
		"unknown option":      {URL: "redis://a/?bogus=1"},
		"malformed":           {URL: "redis://user:hunter2-secret@host:port:bad/"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := universalOptions(cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestTTLMillis(t *testing.T) {
	for ttl, want := range map[time.Duration]int64{
		time.Nanosecond:                     1,
		time.Millisecond:                    1,
		time.Millisecond + time.Microsecond: 2,
		250 * time.Millisecond:              250,
		time.Hour:                           3_600_000,
	} {
		if got := ttlMillis(ttl); got != want {
			t.Errorf("ttlMillis(%v) = %d, want %d", ttl, got, want)
		}
	}
}

func BenchmarkStore(b *testing.B) {
	srv := testredis.Start(b)
	s, err := Open(Config{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.Bench(b, s)
}
