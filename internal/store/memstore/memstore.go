// Package memstore is an in-process implementation of store.Store.
//
// It is meant for development, tests and single-replica deployments: state is
// lost on restart and not shared between broker instances, so running several
// replicas behind a load balancer with memstore breaks logins.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sesame-id/sesame/internal/store"
)

// janitorInterval bounds how long expired entries that nobody reads again keep
// occupying memory. Correctness does not depend on it: reads check expiry.
const janitorInterval = time.Minute

type entry struct {
	value   []byte
	expires time.Time
}

// Store is an in-memory store.Store. The zero value is not usable; call New.
type Store struct {
	mu     sync.Mutex
	items  map[string]entry
	closed bool

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// New returns an empty store and starts its janitor goroutine; call Close to
// stop it.
func New() *Store {
	s := &Store{
		items: make(map[string]entry),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go s.janitor(janitorInterval)
	return s
}

func (s *Store) janitor(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.sweep(now)
		}
	}
}

// sweep drops every entry expired at now.
func (s *Store) sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.items {
		if e.expired(now) {
			delete(s.items, k)
		}
	}
}

func (e entry) expired(now time.Time) bool { return !now.Before(e.expires) }

// begin checks the preconditions shared by every operation and, on success,
// returns with s.mu held.
func (s *Store) begin(ctx context.Context, op string) error {
	// Checked before locking so a cancelled request never has side effects,
	// matching what callers can expect from a remote backend.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s: %w", op, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memstore: %s: store closed: %w", op, store.ErrUnavailable)
	}
	return nil
}

// lookup returns the live entry for key, dropping it if it has expired.
// s.mu must be held.
func (s *Store) lookup(key string) (entry, bool) {
	e, ok := s.items[key]
	if !ok {
		return entry{}, false
	}
	if e.expired(time.Now()) {
		delete(s.items, key)
		return entry{}, false
	}
	return e, true
}

func checkTTL(op string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memstore: %s: ttl must be > 0, got %v", op, ttl)
	}
	return nil
}

// clone copies b so that neither the caller nor the store can observe later
// mutations by the other; it never returns nil so an empty value stays
// distinguishable from a missing one.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(ctx, "get"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e, ok := s.lookup(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	return clone(e.value), nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL("put", ttl); err != nil {
		return err
	}
	if err := s.begin(ctx, "put"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.items[key] = entry{value: clone(value), expires: time.Now().Add(ttl)}
	return nil
}

// Write implements store.Store; in memory it is one critical section.
func (s *Store) Write(ctx context.Context, puts []store.Entry, deletes ...string) error {
	for _, e := range puts {
		if err := checkTTL("write", e.TTL); err != nil {
			return err
		}
	}
	if err := s.begin(ctx, "write"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	now := time.Now()
	for _, e := range puts {
		s.items[e.Key] = entry{value: clone(e.Value), expires: now.Add(e.TTL)}
	}
	for _, k := range deletes {
		delete(s.items, k)
	}
	return nil
}

// Incr implements store.Store; the count is kept as decimal text, as
// Redis does.
func (s *Store) Incr(ctx context.Context, key string, ttl time.Duration) (int64, time.Duration, error) {
	if err := checkTTL("incr", ttl); err != nil {
		return 0, 0, err
	}
	if err := s.begin(ctx, "incr"); err != nil {
		return 0, 0, err
	}
	defer s.mu.Unlock()
	e, ok := s.lookup(key)
	n := int64(1)
	now := time.Now()
	if ok {
		prev, err := strconv.ParseInt(string(e.value), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("memstore: incr: value is not a counter")
		}
		n = prev + 1
	} else {
		e.expires = now.Add(ttl)
	}
	e.value = []byte(strconv.FormatInt(n, 10))
	s.items[key] = e
	return n, e.expires.Sub(now), nil
}

// Swap implements store.Store; in memory it is one critical section.
func (s *Store) Swap(ctx context.Context, prev []byte, next store.Entry, puts []store.Entry, deletes ...string) (bool, error) {
	for _, e := range append([]store.Entry{next}, puts...) {
		if err := checkTTL("swap", e.TTL); err != nil {
			return false, err
		}
	}
	if err := s.begin(ctx, "swap"); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	now := time.Now()
	for _, e := range puts {
		s.items[e.Key] = entry{value: clone(e.Value), expires: now.Add(e.TTL)}
	}
	for _, k := range deletes {
		delete(s.items, k)
	}
	cur, ok := s.lookup(next.Key)
	if (prev == nil && ok) || (prev != nil && (!ok || !bytes.Equal(cur.value, prev))) {
		return false, nil
	}
	s.items[next.Key] = entry{value: clone(next.Value), expires: now.Add(next.TTL)}
	return true, nil
}

// GetMany implements store.Store.
func (s *Store) GetMany(ctx context.Context, keys ...string) ([][]byte, error) {
	if err := s.begin(ctx, "getmany"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if e, ok := s.lookup(k); ok {
			out[i] = clone(e.value)
		}
	}
	return out, nil
}

// Add implements store.Store.
func (s *Store) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("add", ttl); err != nil {
		return false, err
	}
	if err := s.begin(ctx, "add"); err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	if _, ok := s.lookup(key); ok {
		return false, nil
	}
	s.items[key] = entry{value: clone(value), expires: time.Now().Add(ttl)}
	return true, nil
}

// AddAll implements store.Store; in memory it is one critical section.
func (s *Store) AddAll(ctx context.Context, entries []store.Entry) ([]bool, error) {
	for _, e := range entries {
		if err := checkTTL("addall", e.TTL); err != nil {
			return nil, err
		}
	}
	if err := s.begin(ctx, "addall"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]bool, len(entries))
	now := time.Now()
	for i, e := range entries {
		if _, ok := s.lookup(e.Key); ok {
			continue
		}
		s.items[e.Key] = entry{value: clone(e.Value), expires: now.Add(e.TTL)}
		out[i] = true
	}
	return out, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.begin(ctx, "delete"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.items, key)
	return nil
}

// Take implements store.Store.
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	if err := s.begin(ctx, "take"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	e, ok := s.lookup(key)
	if !ok {
		return nil, store.ErrNotFound
	}
	delete(s.items, key)
	// The entry is gone from the map, so its buffer can be handed over as is.
	return e.value, nil
}

// Close stops the janitor and drops all entries. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.mu.Lock()
		s.closed = true
		s.items = nil
		s.mu.Unlock()
	})
	return nil
}
