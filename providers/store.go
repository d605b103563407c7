package providers

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"sync"
	"time"
)

// errStoreFull is returned when a store holds maxEntries live entries. The
// mock refuses new work rather than growing without bound under a flood.
var errStoreFull = errors.New("providers: too many pending entries")

// maxEntries bounds each in-memory store. A developer or a test suite needs
// a handful of live entries; this leaves room for load tests.
const maxEntries = 100_000

// sweepEvery is how often a write pays for removing expired entries when
// the store is not full; a full store sweeps on every write.
const sweepEvery = 10 * time.Second

// store is an in-memory map with a TTL per entry. The mock runs in one
// process and restarts lose nothing of value, so it needs no shared store.
type store[V any] struct {
	mu        sync.Mutex
	now       func() time.Time
	entries   map[string]entry[V]
	lastSweep time.Time
}

type entry[V any] struct {
	value   V
	expires time.Time
}

func newStore[V any](now func() time.Time) *store[V] {
	return &store[V]{now: now, entries: map[string]entry[V]{}}
}

// put stores v under key for ttl, replacing any previous value.
func (s *store[V]) put(key string, v V, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.entries) >= maxEntries || now.Sub(s.lastSweep) >= sweepEvery {
		for k, e := range s.entries {
			if !now.Before(e.expires) {
				delete(s.entries, k)
			}
		}
		s.lastSweep = now
	}
	if _, exists := s.entries[key]; !exists && len(s.entries) >= maxEntries {
		return errStoreFull
	}
	s.entries[key] = entry[V]{value: v, expires: now.Add(ttl)}
	return nil
}

// get returns the live value under key.
func (s *store[V]) get(key string) (V, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liveLocked(key)
}

// take returns the live value under key and removes it, so that of two
// concurrent takes exactly one wins: this is what makes codes single use.
func (s *store[V]) take(key string) (V, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.liveLocked(key)
	delete(s.entries, key)
	return v, ok
}

func (s *store[V]) delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
}

// live returns a copy of every live entry, for listing pages.
func (s *store[V]) live() map[string]V {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := map[string]V{}
	for k, e := range s.entries {
		if now.Before(e.expires) {
			out[k] = e.value
		}
	}
	return out
}

func (s *store[V]) liveLocked(key string) (V, bool) {
	e, ok := s.entries[key]
	if !ok || !s.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.value, true
}

// newSecret returns 256 random bits, base64url: codes, tokens and
// transaction ids are all bearer secrets, so they get the same strength.
func newSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// hashKey is the store key of a secret. Keeping only its hash means a dump
// of the mock's memory (or a debug print) shows nothing replayable, which is
// the rule the broker follows in Redis too.
func hashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
