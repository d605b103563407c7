// Package keys holds an issuer's signing keys and its public JWKS. Several
// keys can be live at once so that a new key is published before it signs
// and an old one stays published while tokens signed with it live.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Signer is the seam an HSM can sit behind: it signs claims with a named
// algorithm and publishes its public keys.
type Signer interface {
	// SignJWT signs claims as a compact JWS with alg; typ is the JOSE "typ"
	// header (empty means "JWT").
	SignJWT(alg jose.SignatureAlgorithm, typ string, claims any) (string, error)
	// PublicJWKS returns the public keys to publish, every one with a kid.
	PublicJWKS() jose.JSONWebKeySet
}

// State is where a key stands in its rotation.
type State string

// The three states of a signing key. A next key is published so that
// SPs' caches hold it before it signs; it signs from its activation time
// on. A retired key signs no more but stays published until its removal
// time, so that every token it signed still verifies.
const (
	Next    State = "next"
	Current State = "current"
	Retired State = "retired"
)

// Key is one signing key of a Set with its rotation state.
type Key struct {
	KeyID string
	Alg   jose.SignatureAlgorithm
	State State
	// ActivateAt is when a next key starts signing (zero: never by time
	// alone). For a current key it records when it started, if known.
	ActivateAt time.Time
	// RemoveAt is when a retired key leaves the published set.
	RemoveAt time.Time
	// InHSM marks a key whose private part is held by an HSM.
	InHSM bool

	public jose.JSONWebKey
	// key is what go-jose signs with: the private JWK of a file key, or
	// a jose.OpaqueSigner in front of an HSM.
	key any
}

// Public returns the key's public JWK.
func (k Key) Public() jose.JSONWebKey { return k.public }

// Set is an immutable set of signing keys, each with its state. Which
// key signs is decided at each call from the clock, so that replicas that
// loaded the same set switch to a next key at the same instant, whenever
// they loaded it. A Set is safe for concurrent use.
type Set struct {
	keys []Key
	now  func() time.Time
}

var _ Signer = (*Set)(nil)

// Generate makes one fresh key per algorithm (ES256 → P-256, RS256 → RSA
// 2048), all current. Generated keys suit one dev process; replicas need
// shared files.
func Generate(algs ...jose.SignatureAlgorithm) (*Set, error) {
	s := &Set{}
	for _, alg := range algs {
		k, err := NewKey(alg)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, fileKey(k, Current))
	}
	return s, nil
}

// fileKey wraps a private JWK held in memory.
func fileKey(k jose.JSONWebKey, st State) Key {
	return Key{KeyID: k.KeyID, Alg: jose.SignatureAlgorithm(k.Algorithm), State: st, public: k.Public(), key: k}
}

// NewKey generates one private JWK for alg, with a kid derived from its
// thumbprint so every replica that loads it agrees on the kid.
func NewKey(alg jose.SignatureAlgorithm) (jose.JSONWebKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256, jose.PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return jose.JSONWebKey{}, fmt.Errorf("keys: unsupported algorithm %s (want ES256, RS256 or PS256)", alg)
	}
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("keys: generate %s: %w", alg, err)
	}
	k := jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"}
	kid, err := thumbprintKID(k)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k.KeyID = kid
	return k, nil
}

// thumbprintKID derives a kid from a key's RFC 7638 thumbprint.
func thumbprintKID(k jose.JSONWebKey) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)[:16], nil
}

// Load reads private JWK sets from files (as written by `sesame keys
// signing`). Every key is current; since the files carry no state, the
// first key of an alg in file order signs and the others are published.
func Load(paths ...string) (*Set, error) {
	s := &Set{}
	seen := map[string]bool{}
	for _, p := range paths {
		set, err := readJWKS(p)
		if err != nil {
			return nil, err
		}
		for i, k := range set.Keys {
			if err := checkPrivate(k); err != nil {
				return nil, fmt.Errorf("keys: %s: key %d: %w", p, i, err)
			}
			if seen[k.KeyID] {
				return nil, fmt.Errorf("keys: %s: key %d: kid %q is duplicate", p, i, k.KeyID)
			}
			seen[k.KeyID] = true
			s.keys = append(s.keys, fileKey(k, Current))
		}
	}
	if len(s.keys) == 0 {
		return nil, errors.New("keys: no key in the given files")
	}
	return s, nil
}

// readJWKS reads one JWK set file.
func readJWKS(path string) (jose.JSONWebKeySet, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("keys: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("keys: %s: not a JWK set: %w", path, err)
	}
	return set, nil
}

// checkPrivate checks that a JWK can sign with its alg: a private key of
// the matching type, with a kid.
func checkPrivate(k jose.JSONWebKey) error {
	if k.IsPublic() || !k.Valid() {
		return errors.New("a private signing key is required")
	}
	if k.KeyID == "" {
		return errors.New("kid is empty")
	}
	if k.Algorithm == "" {
		return fmt.Errorf("key %s: alg is required", k.KeyID)
	}
	return checkKeyType(jose.SignatureAlgorithm(k.Algorithm), k.Public().Key)
}

// checkKeyType reports whether a public key fits alg: a P-256 key for
// ES256, RSA of at least 2048 bits for RS256 and PS256.
func checkKeyType(alg jose.SignatureAlgorithm, pub any) error {
	switch alg {
	case jose.ES256:
		if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			return fmt.Errorf("alg ES256 needs a P-256 EC key, not %T", pub)
		}
	case jose.RS256, jose.PS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("alg %s needs an RSA key, not %T", alg, pub)
		}
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("alg %s needs an RSA key of at least 2048 bits, not %d", alg, k.N.BitLen())
		}
	default:
		return fmt.Errorf("alg %q is not supported (want ES256, RS256 or PS256)", alg)
	}
	return nil
}

// PrivateJWKS returns the private keys held in memory, for writing a key
// file (HSM keys have none to give).
func (s *Set) PrivateJWKS() jose.JSONWebKeySet {
	out := jose.JSONWebKeySet{}
	for _, k := range s.keys {
		if jwk, ok := k.key.(jose.JSONWebKey); ok {
			out.Keys = append(out.Keys, jwk)
		}
	}
	return out
}

// Keys lists the set's keys with their states as written, in order.
func (s *Set) Keys() []Key { return slices.Clone(s.keys) }

func (s *Set) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// Has reports whether the set can sign with alg now.
func (s *Set) Has(alg jose.SignatureAlgorithm) bool {
	_, ok := s.SigningKeyAt(alg, s.clock())
	return ok
}

// SigningKeyAt is the key that signs alg at t: the next key of that alg
// whose activation time has come (the latest, if several), else the first
// current key. A key the rotation has not moved on yet keeps the state it
// was written with; only the clock moves a next key to signing.
func (s *Set) SigningKeyAt(alg jose.SignatureAlgorithm, t time.Time) (Key, bool) {
	var best *Key
	for i := range s.keys {
		k := &s.keys[i]
		if k.Alg != alg || k.State != Next || k.ActivateAt.IsZero() || t.Before(k.ActivateAt) {
			continue
		}
		if best == nil || k.ActivateAt.After(best.ActivateAt) {
			best = k
		}
	}
	if best != nil {
		return *best, true
	}
	for _, k := range s.keys {
		if k.Alg == alg && k.State == Current {
			return k, true
		}
	}
	return Key{}, false
}

// PublishedAt lists the keys published at t: all but the retired ones
// past their removal time.
func (s *Set) PublishedAt(t time.Time) []Key {
	var out []Key
	for _, k := range s.keys {
		if k.State == Retired && !t.Before(k.RemoveAt) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// SignJWT implements Signer.
func (s *Set) SignJWT(alg jose.SignatureAlgorithm, typ string, claims any) (string, error) {
	k, ok := s.SigningKeyAt(alg, s.clock())
	if !ok {
		return "", fmt.Errorf("keys: no %s key", alg)
	}
	if typ == "" {
		typ = "JWT"
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", k.KeyID)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k.key}, opts)
	if err != nil {
		return "", fmt.Errorf("keys: signer %s: %w", k.KeyID, err)
	}
	out, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("keys: sign with %s: %w", k.KeyID, err)
	}
	return out, nil
}

// PublicJWKS implements Signer: the keys published now.
func (s *Set) PublicJWKS() jose.JSONWebKeySet {
	out := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range s.PublishedAt(s.clock()) {
		out.Keys = append(out.Keys, k.public)
	}
	return out
}

// Algorithms lists the algorithms the set can sign with now, in key order.
func (s *Set) Algorithms() []string {
	var out []string
	now := s.clock()
	for _, k := range s.keys {
		if slices.Contains(out, string(k.Alg)) {
			continue
		}
		if _, ok := s.SigningKeyAt(k.Alg, now); ok {
			out = append(out, string(k.Alg))
		}
	}
	return out
}

// DefaultJWKSMaxAge is how long SPs may cache /jwks. It is short because a
// next key must be in every SP's cache before it signs: the lead time of a
// rotation must exceed it (see docs/operations.md).
const DefaultJWKSMaxAge = 60 * time.Second

// JWKSHandler serves a signer's public keys as application/json, cached
// for DefaultJWKSMaxAge.
func JWKSHandler(s Signer) http.Handler { return JWKSHandlerMaxAge(s, DefaultJWKSMaxAge) }

// JWKSHandlerMaxAge is JWKSHandler with the Cache-Control max-age given.
func JWKSHandlerMaxAge(s Signer, maxAge time.Duration) http.Handler {
	cc := fmt.Sprintf("public, max-age=%d", int(maxAge.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := json.Marshal(s.PublicJWKS())
		if err != nil {
			http.Error(w, "jwks unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", cc)
		_, _ = w.Write(body)
	})
}

// HalfHash computes OIDC's at_hash/c_hash: the left half of the hash of the
// value, with the hash that matches the signing algorithm's size.
func HalfHash(alg jose.SignatureAlgorithm, value string) (string, error) {
	var sum []byte
	switch alg {
	case jose.ES256, jose.RS256, jose.PS256, jose.HS256:
		h := sha256.Sum256([]byte(value))
		sum = h[:]
	case jose.ES384, jose.RS384, jose.PS384:
		h := sha512.Sum384([]byte(value))
		sum = h[:]
	case jose.ES512, jose.RS512, jose.PS512:
		h := sha512.Sum512([]byte(value))
		sum = h[:]
	default:
		return "", fmt.Errorf("keys: no hash for %s", alg)
	}
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}
