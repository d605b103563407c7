// Package store defines the seam between Sésame and its short-lived state:
// sessions, authorization codes, PKCE/nonce/state markers and jti replay
// records. Everything stored here is ephemeral, so every key carries a TTL
// and the backend may be wiped without breaking anything but in-flight logins.
//
// Implementations live in subpackages (memstore for development and tests,
// redisstore for production); storetest holds the conformance suite that
// every implementation must pass.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a key is absent or expired.
var ErrNotFound = errors.New("store: not found")

// ErrUnavailable wraps any backend failure (Redis down, timeout) so callers
// can map it to temporarily_unavailable without leaking driver text.
//
// Errors wrapping it never contain keys or values: keys are often bearer
// secrets themselves (session IDs, authorization codes).
var ErrUnavailable = errors.New("store: unavailable")

// Store is a key/value store for short-lived protocol state.
//
// Implementations must be safe for concurrent use. Values passed in and
// returned are never aliased by the store, so callers may reuse buffers.
// A cancelled or expired caller context yields an error wrapping the context
// error; such errors do not wrap ErrUnavailable, because the backend is not
// at fault.
type Store interface {
	// Get returns the value stored under key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores value under key with a TTL; ttl must be > 0 (every key has a TTL).
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Add stores value only if key is absent (SET NX); reports whether it was stored. Used for jti replay protection and one-time markers.
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// AddAll is Add for several keys in one round trip: it reports, key by
	// key, whether each was stored. Used for the single-use jtis of one
	// request (a client assertion's and a DPoP proof's). Never resent.
	AddAll(ctx context.Context, entries []Entry) ([]bool, error)
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Take atomically reads and deletes (GETDEL): of N concurrent Takes exactly one gets the value.
	Take(ctx context.Context, key string) ([]byte, error)
	// Write applies puts and deletes in one round trip where the backend
	// allows (a Redis pipeline), to keep each HTTP step within two round
	// trips. The writes are idempotent, so a resend is harmless; the batch
	// is not atomic. Every put needs a TTL > 0.
	Write(ctx context.Context, puts []Entry, deletes ...string) error
	// Incr adds one to the counter at key and returns the new count and
	// what is left of its window; the first increment starts the key's TTL
	// (a fixed window), later ones keep it. Used for rate limits, whose
	// Retry-After is the window's real remainder.
	Incr(ctx context.Context, key string, ttl time.Duration) (n int64, left time.Duration, err error)
	// Swap is a compare-and-set: it writes next only if next.Key holds
	// prev, or does not exist when prev is nil, and reports whether it
	// did. Of N concurrent Swaps from one prev exactly one wins, on any
	// replica: that is what makes a login step single use.
	//
	// In the same round trip it applies puts and deletes whatever the
	// outcome, so they must be harmless when the swap fails: a record
	// under a fresh secret nobody holds yet, the deletion of a session
	// being replaced. Swap is never resent by the backend.
	Swap(ctx context.Context, prev []byte, next Entry, puts []Entry, deletes ...string) (bool, error)
	// GetMany returns the values of keys in one round trip, in order, nil
	// for a key that is absent or expired.
	GetMany(ctx context.Context, keys ...string) ([][]byte, error)
	// Close releases the backend. Operations after Close fail with an
	// error wrapping ErrUnavailable. Close is idempotent.
	Close() error
}

// Entry is one put of a Write.
type Entry struct {
	Key   string
	Value []byte
	TTL   time.Duration
}
