package demosp

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// store is the demo SP's whole server-side state: one process, so a map with
// expiry is enough, and it keeps the demo free of any external service.
type store[T any] struct {
	mu        sync.Mutex
	items     map[string]entry[T]
	now       func() time.Time
	lastSweep time.Time
}

type entry[T any] struct {
	value   T
	expires time.Time
}

// sweepEvery bounds how long expired entries linger when nobody reads them,
// without scanning the map on every write.
const sweepEvery = time.Minute

func newStore[T any]() *store[T] {
	return &store[T]{items: map[string]entry[T]{}, now: time.Now}
}

func (s *store[T]) put(key string, v T, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.lastSweep) > sweepEvery {
		for k, e := range s.items {
			if !now.Before(e.expires) {
				delete(s.items, k)
			}
		}
		s.lastSweep = now
	}
	s.items[key] = entry[T]{value: v, expires: now.Add(ttl)}
}

func (s *store[T]) get(key string) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookup(key, false)
}

// take returns and removes the value in one step, so a one-time state cannot
// be used twice, even by two requests racing each other.
func (s *store[T]) take(key string) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookup(key, true)
}

func (s *store[T]) delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, key)
}

func (s *store[T]) lookup(key string, remove bool) (T, bool) {
	var zero T
	e, ok := s.items[key]
	if !ok {
		return zero, false
	}
	if remove || !s.now().Before(e.expires) {
		delete(s.items, key)
	}
	if !s.now().Before(e.expires) {
		return zero, false
	}
	return e.value, true
}

// randomString returns n random bytes in base64url: 32 bytes give 43
// characters, above the 22 FranceConnect requires of a nonce.
func randomString(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never fails on supported platforms (Go ≥ 1.24).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
