// Package redisstore implements store.Store on Redis (standalone, Sentinel or
// Cluster) through go-redis v9.
//
// It requires Redis 6.2 or later for GETDEL.
package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sesame-id/sesame/internal/store"
)

// DefaultTimeout is the per-call deadline used when Options.Timeout or
// Config.Timeout is zero. Redis answers in well under a millisecond when
// healthy; waiting longer only piles up browser requests during an outage.
const DefaultTimeout = 500 * time.Millisecond

// Options tunes a Store built by New.
type Options struct {
	// Timeout bounds every call on top of the caller's context; zero or
	// negative means DefaultTimeout. go-redis only honours it on sockets
	// when the client has ContextTimeoutEnabled, which Open sets.
	Timeout time.Duration
}

// Store is a store.Store backed by Redis. It is safe for concurrent use.
type Store struct {
	client  redis.UniversalClient
	timeout time.Duration

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// New wraps client, which the Store then owns: Close closes it.
//
// The client should have ContextTimeoutEnabled set, otherwise a hung server
// blocks calls for the client's ReadTimeout instead of opts.Timeout. Its
// retry settings do not matter for single-use operations (see noRetry).
func New(client redis.UniversalClient, opts Options) *Store {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Store{client: client, timeout: opts.Timeout}
}

// Config describes how to reach Redis, typically straight from the broker's
// configuration file. Exactly one of URL and Addrs must be set.
type Config struct {
	// URL is a redis://, rediss:// (TLS) or unix:// URL as understood by
	// redis.ParseURL, including its query options (dial_timeout, pool_size…).
	URL string
	// Addrs lists host:port seeds: one address is a standalone server,
	// several are Cluster nodes, and with MasterName they are Sentinels.
	Addrs []string
	// MasterName selects Sentinel mode; it requires Addrs.
	MasterName string
	// Username and Password, when set, override any credentials in URL so
	// the URL can live in plain configuration and the password in a secret.
	Username, Password string
	// DB, when non-zero, overrides the database in URL. Cluster supports
	// only database 0.
	DB int
	// Timeout is the per-call deadline; zero means DefaultTimeout. It also
	// defaults the dial, read, write and pool timeouts.
	Timeout time.Duration
	// TLSCAFile, when set, is a PEM file of the CAs that may issue the
	// server's certificate, instead of the system roots: for a Redis behind
	// a private CA. It requires a rediss:// URL, or Addrs with TLS.
	TLSCAFile string
	// TLS speaks TLS to Addrs (Cluster nodes, or Sentinels and their
	// masters); each server's certificate is checked against the host of
	// the address dialled. A URL says it by its scheme instead.
	TLS bool
}

// Open builds a client from cfg and wraps it. It does not contact Redis, so
// the broker can start before Redis does; use Ping for readiness.
func Open(cfg Config) (*Store, error) {
	opts, err := universalOptions(cfg)
	if err != nil {
		return nil, err
	}
	return New(redis.NewUniversalClient(opts), Options{Timeout: cfg.Timeout}), nil
}

func universalOptions(cfg Config) (*redis.UniversalOptions, error) {
	var u *redis.UniversalOptions
	switch {
	case cfg.URL != "" && len(cfg.Addrs) > 0:
		return nil, errors.New("redisstore: set either URL or Addrs, not both")
	case cfg.URL != "":
		if cfg.TLS {
			return nil, errors.New("redisstore: TLS applies to Addrs; a URL says it by its scheme (rediss://)")
		}
		if cfg.MasterName != "" {
			return nil, errors.New("redisstore: MasterName (Sentinel) requires Addrs, not URL")
		}
		o, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: invalid Redis URL: %w", redactURLError(err))
		}
		u = fromOptions(o)
	case len(cfg.Addrs) > 0:
		u = &redis.UniversalOptions{
			Addrs:      append([]string(nil), cfg.Addrs...),
			MasterName: cfg.MasterName,
		}
		if cfg.TLS {
			// No ServerName: crypto/tls takes it from each address
			// dialled, so every node, and every master a Sentinel
			// names, is checked under its own name.
			u.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if len(cfg.Addrs) > 1 && cfg.MasterName == "" && cfg.DB != 0 {
			return nil, fmt.Errorf("redisstore: DB %d requested but Redis Cluster only has database 0", cfg.DB)
		}
	default:
		return nil, errors.New("redisstore: no Redis configured: set URL or Addrs")
	}

	if cfg.Username != "" {
		u.Username = cfg.Username
	}
	if cfg.Password != "" {
		u.Password = cfg.Password
	}
	if cfg.DB != 0 {
		u.DB = cfg.DB
	}

	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// Explicit URL query options win; go-redis' own defaults (5 s reads,
	// 30 s pool waits) would let an outage hold requests far longer than
	// the per-call deadline we promise.
	for _, d := range []*time.Duration{&u.DialTimeout, &u.ReadTimeout, &u.WriteTimeout, &u.PoolTimeout} {
		if *d == 0 {
			*d = timeout
		}
	}
	if cfg.TLSCAFile != "" {
		if u.TLSConfig == nil {
			return nil, errors.New("redisstore: a TLS CA file requires a rediss:// URL, or Addrs with TLS")
		}
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("redisstore: TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redisstore: TLS CA file %s holds no PEM certificate", cfg.TLSCAFile)
		}
		u.TLSConfig.RootCAs = pool
	}
	u.ContextTimeoutEnabled = true
	return u, nil
}

// fromOptions carries everything ParseURL understands into UniversalOptions.
// A unix socket path survives as the single address: go-redis picks the
// "unix" network for addresses starting with '/'.
func fromOptions(o *redis.Options) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs:                 []string{o.Addr},
		ClientName:            o.ClientName,
		DB:                    o.DB,
		Protocol:              o.Protocol,
		Username:              o.Username,
		Password:              o.Password,
		MaxRetries:            o.MaxRetries,
		MinRetryBackoff:       o.MinRetryBackoff,
		MaxRetryBackoff:       o.MaxRetryBackoff,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		PoolFIFO:              o.PoolFIFO,
		PoolSize:              o.PoolSize,
		MaxConcurrentDials:    o.MaxConcurrentDials,
		PoolTimeout:           o.PoolTimeout,
		MinIdleConns:          o.MinIdleConns,
		MaxIdleConns:          o.MaxIdleConns,
		MaxActiveConns:        o.MaxActiveConns,
		ConnMaxIdleTime:       o.ConnMaxIdleTime,
		ConnMaxLifetime:       o.ConnMaxLifetime,
		ConnMaxLifetimeJitter: o.ConnMaxLifetimeJitter,
		TLSConfig:             o.TLSConfig,
	}
}

// redactURLError drops the URL that net/url echoes in its errors: it may
// carry the password, and this error ends up in logs.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// noRetry marks a command as never to be resent.
//
// go-redis resends a command when the connection breaks after the command
// was written (io.EOF, connection reset, failover), when Redis may already
// have executed it. For single-use operations that is harmful: a resent
// GETDEL finds nothing and reports ErrNotFound although the first execution
// consumed the value (a valid authorization code is burnt, the user gets
// invalid_grant), and a resent SET NX reports the key as present, so a fresh
// jti is rejected as a replay. Returning ErrUnavailable instead is honest.
//
// A client-wide MaxRetries: -1 would also prevent that, but only for
// clients built by Open: New accepts any client, and the idempotent
// operations (Get, Put, Delete, Ping) do profit from a retry after a stale
// pooled connection. go-redis consults Cmder.NoRetry before every resend, in
// the single-node, Sentinel and Cluster paths alike (MOVED/ASK redirects
// still happen; Redis did not execute the command then).
// TestSingleUseOpsAreNotRetried pins this against go-redis upgrades.
type noRetry struct{ redis.Cmder }

// NoRetry implements the go-redis hook described on noRetry.
func (noRetry) NoRetry() bool { return true }

// call runs fn under the per-call deadline. It refuses to start when the
// caller has already given up, so an abandoned request has no side effects.
func (s *Store) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := fn(cctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return err
	case ctx.Err() != nil:
		// The caller's own context ended: not the backend's fault.
		return fmt.Errorf("redisstore: %s: %w", op, ctx.Err())
	default:
		s.reloadSlots()
		// go-redis errors carry neither keys nor values, only addresses and
		// server messages, so they are safe to keep for the logs.
		return fmt.Errorf("redisstore: %s: %w: %w", op, store.ErrUnavailable, err)
	}
}

// reloadSlots asks a Cluster client to fetch the slot map again after a
// failure. go-redis refreshes it by itself on MOVED and READONLY, and
// otherwise only every ClusterStateReloadInterval (60 s): after a
// failover, commands to the dead master's slots fail on its refused
// port, never reach a node that would answer MOVED, and so failed for
// that long (measured: no login succeeded in the 10 s after a replica
// took over). The reload is lazy and coalesced (one at a time, 200 ms
// apart), so an outage costs a CLUSTER SLOTS now and then, not one per
// request.
func (s *Store) reloadSlots() {
	if c, ok := s.client.(*redis.ClusterClient); ok {
		c.ReloadState(context.Background())
	}
}

// ttlMillis converts ttl for PX, rounding up: a sub-millisecond TTL must
// not become PX 0, which Redis rejects.
func ttlMillis(ttl time.Duration) int64 {
	ms := ttl.Milliseconds()
	if ttl%time.Millisecond != 0 {
		ms++
	}
	return ms
}

func checkTTL(op string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redisstore: %s: ttl must be > 0, got %v", op, ttl)
	}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.call(ctx, "get", func(ctx context.Context) error {
		var err error
		v, err = s.client.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Put implements store.Store with SET PX.
func (s *Store) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL("put", ttl); err != nil {
		return err
	}
	return s.call(ctx, "put", func(ctx context.Context) error {
		return s.client.Process(ctx, redis.NewStatusCmd(ctx, "set", key, value, "px", ttlMillis(ttl)))
	})
}

// Write implements store.Store with one pipeline of SET PX and DEL.
func (s *Store) Write(ctx context.Context, puts []store.Entry, deletes ...string) error {
	for _, e := range puts {
		if err := checkTTL("write", e.TTL); err != nil {
			return err
		}
	}
	return s.call(ctx, "write", func(ctx context.Context) error {
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range puts {
				p.Set(ctx, e.Key, e.Value, time.Duration(ttlMillis(e.TTL))*time.Millisecond)
			}
			delEach(ctx, p, deletes)
			return nil
		})
		return err
	})
}

// delEach queues one DEL per key: a multi-key DEL is refused with CROSSSLOT
// in a Cluster when the keys hash to different slots, whereas single-key
// commands in a pipeline are routed to each key's node. On one server the
// pipeline still makes it one round trip.
func delEach(ctx context.Context, p redis.Pipeliner, keys []string) {
	for _, k := range keys {
		p.Del(ctx, k)
	}
}

// Incr implements store.Store with INCR and PEXPIRE NX in one pipeline:
// the TTL is set by the first increment only, so the window is fixed.
func (s *Store) Incr(ctx context.Context, key string, ttl time.Duration) (int64, time.Duration, error) {
	if err := checkTTL("incr", ttl); err != nil {
		return 0, 0, err
	}
	var n int64
	var left time.Duration
	err := s.call(ctx, "incr", func(ctx context.Context) error {
		var incr *redis.IntCmd
		var pttl *redis.DurationCmd
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			incr = p.Incr(ctx, key)
			p.Do(ctx, "pexpire", key, ttlMillis(ttl), "nx")
			pttl = p.PTTL(ctx, key)
			return nil
		})
		if err != nil {
			return err
		}
		n, left = incr.Val(), max(pttl.Val(), 0)
		return nil
	})
	return n, left, err
}

// swapScript sets KEYS[1] only if it holds ARGV[2] (or is absent when
// ARGV[1] is "absent"): compare-and-set in one atomic step on the server.
const swapScript = `
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == 'absent' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1`

// Swap implements store.Store: the puts and deletes, then the
// compare-and-set script, in one pipeline. The script is never resent
// (see noRetry): a resend after a win would report a loss. In a Cluster
// the pipeline is split by slot; the script touches one key only.
func (s *Store) Swap(ctx context.Context, prev []byte, next store.Entry, puts []store.Entry, deletes ...string) (bool, error) {
	for _, e := range append([]store.Entry{next}, puts...) {
		if err := checkTTL("swap", e.TTL); err != nil {
			return false, err
		}
	}
	mode := "equal"
	if prev == nil {
		mode = "absent"
	}
	var won bool
	err := s.call(ctx, "swap", func(ctx context.Context) error {
		var cas *redis.Cmd
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, e := range puts {
				p.Set(ctx, e.Key, e.Value, time.Duration(ttlMillis(e.TTL))*time.Millisecond)
			}
			delEach(ctx, p, deletes)
			cas = redis.NewCmd(ctx, "eval", swapScript, 1, next.Key, mode, prev, next.Value, ttlMillis(next.TTL))
			return p.Process(ctx, noRetry{cas})
		})
		if err != nil {
			return err
		}
		n, err := cas.Int()
		won = n == 1
		return err
	})
	return won, err
}

// GetMany implements store.Store with one pipeline of GETs, which a
// Cluster client splits by slot (MGET would need one slot).
func (s *Store) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	err := s.call(ctx, "getmany", func(ctx context.Context) error {
		cmds := make([]*redis.StringCmd, len(keys))
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for i, c := range cmds {
			v, err := c.Bytes()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return err
			default:
				out[i] = v
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Add implements store.Store with SET NX PX, never resent (see noRetry).
func (s *Store) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("add", ttl); err != nil {
		return false, err
	}
	var added bool
	err := s.call(ctx, "add", func(ctx context.Context) error {
		cmd := redis.NewStatusCmd(ctx, "set", key, value, "px", ttlMillis(ttl), "nx")
		_ = s.client.Process(ctx, noRetry{cmd})
		switch err := cmd.Err(); {
		case errors.Is(err, redis.Nil):
			return nil // NX refused: the key exists.
		case err != nil:
			return err
		}
		added = true
		return nil
	})
	return added, err
}

// AddAll implements store.Store with one pipeline of SET NX PX, none of
// them ever resent (see noRetry).
func (s *Store) AddAll(ctx context.Context, entries []store.Entry) ([]bool, error) {
	for _, e := range entries {
		if err := checkTTL("addall", e.TTL); err != nil {
			return nil, err
		}
	}
	out := make([]bool, len(entries))
	err := s.call(ctx, "addall", func(ctx context.Context) error {
		cmds := make([]*redis.StatusCmd, len(entries))
		_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, e := range entries {
				cmds[i] = redis.NewStatusCmd(ctx, "set", e.Key, e.Value, "px", ttlMillis(e.TTL), "nx")
				if err := p.Process(ctx, noRetry{cmds[i]}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for i, c := range cmds {
			switch err := c.Err(); {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return err
			default:
				out[i] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.call(ctx, "delete", func(ctx context.Context) error {
		return s.client.Del(ctx, key).Err()
	})
}

// Take implements store.Store with GETDEL, never resent (see noRetry).
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.call(ctx, "take", func(ctx context.Context) error {
		cmd := redis.NewStringCmd(ctx, "getdel", key)
		_ = s.client.Process(ctx, noRetry{cmd})
		var err error
		v, err = cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			return store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Ping checks that Redis answers, for readiness probes. Failures wrap
// store.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	return s.call(ctx, "ping", func(ctx context.Context) error {
		return s.client.Ping(ctx).Err()
	})
}

// Close closes the underlying client. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := s.client.Close(); err != nil {
			s.closeErr = fmt.Errorf("redisstore: close: %w", err)
		}
	})
	return s.closeErr
}
