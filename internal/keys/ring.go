package keys

import (
	"sync"
	"sync/atomic"

	"github.com/go-jose/go-jose/v4"
)

// Ring is a platform's live keys: it signs and publishes with the Set it
// loaded last. Reload swaps in a new Set atomically, so a request signs
// and publishes with one whole set, the old or the new, and a reload that
// fails leaves the old one in place.
type Ring struct {
	cur atomic.Pointer[Set]
	// load reads the keys from their source; nil: the ring never reloads.
	load func() (*Set, error)
	// check vets a loaded set before it goes live (nil: any).
	check func(*Set) error
	// mu serialises reloads (SIGHUP and the periodic check may meet).
	mu sync.Mutex
}

var _ Signer = (*Ring)(nil)

// NewRing loads a first set with load, which must pass check, and
// returns a ring that Reload refreshes from the same source.
func NewRing(load func() (*Set, error), check func(*Set) error) (*Ring, error) {
	r := &Ring{load: load, check: check}
	if _, _, err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// StaticRing is a ring that holds s for good (generated keys).
func StaticRing(s *Set) *Ring {
	r := &Ring{}
	r.cur.Store(s)
	return r
}

// Reload reads the keys again; on success the new set goes live and is
// returned with the one it replaced. On failure the ring keeps its set.
func (r *Ring) Reload() (old, cur *Set, err error) {
	if r.load == nil {
		s := r.cur.Load()
		return s, s, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.load()
	if err != nil {
		return nil, nil, err
	}
	if r.check != nil {
		if err := r.check(s); err != nil {
			return nil, nil, err
		}
	}
	return r.cur.Swap(s), s, nil
}

// Reloadable reports whether the ring has a source to reload from.
func (r *Ring) Reloadable() bool { return r.load != nil }

// Set returns the live set.
func (r *Ring) Set() *Set { return r.cur.Load() }

// SignJWT implements Signer.
func (r *Ring) SignJWT(alg jose.SignatureAlgorithm, typ string, claims any) (string, error) {
	return r.cur.Load().SignJWT(alg, typ, claims)
}

// PublicJWKS implements Signer.
func (r *Ring) PublicJWKS() jose.JSONWebKeySet { return r.cur.Load().PublicJWKS() }

// Has reports whether the live set can sign with alg now.
func (r *Ring) Has(alg jose.SignatureAlgorithm) bool { return r.cur.Load().Has(alg) }

// Algorithms lists the algorithms the live set can sign with now.
func (r *Ring) Algorithms() []string { return r.cur.Load().Algorithms() }
