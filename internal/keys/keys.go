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

// Set is an in-process Signer. For each algorithm the first key signs; all
// keys are published.
type Set struct {
	keys []jose.JSONWebKey
}

var _ Signer = (*Set)(nil)

// Generate makes one fresh key per algorithm (ES256 → P-256, RS256 → RSA
// 2048). Generated keys suit one dev process; replicas need shared files.
func Generate(algs ...jose.SignatureAlgorithm) (*Set, error) {
	s := &Set{}
	for _, alg := range algs {
		k, err := NewKey(alg)
		if err != nil {
			return nil, err
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
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
		return jose.JSONWebKey{}, fmt.Errorf("keys: unsupported algorithm %s", alg)
	}
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("keys: generate %s: %w", alg, err)
	}
	k := jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("keys: thumbprint: %w", err)
	}
	k.KeyID = base64.RawURLEncoding.EncodeToString(tp)[:16]
	return k, nil
}

// Load reads private JWK sets from files (as written by `sesame keys`).
// Keys keep their file order, so the first key of an alg signs.
func Load(paths ...string) (*Set, error) {
	s := &Set{}
	seen := map[string]bool{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, fmt.Errorf("keys: %s: not a JWK set: %w", p, err)
		}
		for i, k := range set.Keys {
			if k.IsPublic() || !k.Valid() {
				return nil, fmt.Errorf("keys: %s: key %d: a private signing key is required", p, i)
			}
			if k.KeyID == "" || seen[k.KeyID] {
				return nil, fmt.Errorf("keys: %s: key %d: kid %q is empty or duplicate", p, i, k.KeyID)
			}
			if k.Algorithm == "" {
				return nil, fmt.Errorf("keys: %s: key %s: alg is required", p, k.KeyID)
			}
			seen[k.KeyID] = true
			s.keys = append(s.keys, k)
		}
	}
	if len(s.keys) == 0 {
		return nil, errors.New("keys: no key in the given files")
	}
	return s, nil
}

// PrivateJWKS returns the private set, for writing a key file.
func (s *Set) PrivateJWKS() jose.JSONWebKeySet { return jose.JSONWebKeySet{Keys: s.keys} }

// Has reports whether the set can sign with alg.
func (s *Set) Has(alg jose.SignatureAlgorithm) bool {
	_, ok := s.signingKey(alg)
	return ok
}

func (s *Set) signingKey(alg jose.SignatureAlgorithm) (jose.JSONWebKey, bool) {
	for _, k := range s.keys {
		if k.Algorithm == string(alg) {
			return k, true
		}
	}
	return jose.JSONWebKey{}, false
}

// SignJWT implements Signer.
func (s *Set) SignJWT(alg jose.SignatureAlgorithm, typ string, claims any) (string, error) {
	k, ok := s.signingKey(alg)
	if !ok {
		return "", fmt.Errorf("keys: no %s key", alg)
	}
	if typ == "" {
		typ = "JWT"
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", k.KeyID)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k.Key}, opts)
	if err != nil {
		return "", fmt.Errorf("keys: signer: %w", err)
	}
	out, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("keys: sign: %w", err)
	}
	return out, nil
}

// PublicJWKS implements Signer.
func (s *Set) PublicJWKS() jose.JSONWebKeySet {
	out := jose.JSONWebKeySet{}
	for _, k := range s.keys {
		out.Keys = append(out.Keys, k.Public())
	}
	return out
}

// Algorithms lists the algorithms the set can sign with, in key order.
func (s *Set) Algorithms() []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range s.keys {
		if !seen[k.Algorithm] {
			seen[k.Algorithm] = true
			out = append(out, k.Algorithm)
		}
	}
	return out
}

// JWKSHandler serves a signer's public keys as application/json. Caching
// is short so a newly published key is seen well before it signs.
func JWKSHandler(s Signer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := json.Marshal(s.PublicJWKS())
		if err != nil {
			http.Error(w, "jwks unavailable", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
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
