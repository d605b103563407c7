// Package clientkeys holds a service provider's public keys: inline from
// config or fetched from its jwks_uri (with a timeout, cached, refetched at
// most every few seconds on an unknown kid). The broker encrypts the SP's
// tokens to them and checks its private_key_jwt assertions with them.
package clientkeys

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ErrNoKey means the SP has no usable key for the purpose.
var ErrNoKey = errors.New("clientkeys: no usable key")

const (
	// cacheFor is how long a fetched set is trusted before a refetch.
	cacheFor = 5 * time.Minute
	// refetchEvery bounds refetches on an unknown kid, so an SP (or an
	// attacker naming random kids) cannot make us hammer its jwks_uri.
	refetchEvery = 10 * time.Second
	maxBody      = 256 << 10
)

// Keys is one SP's key set.
type Keys struct {
	uri    string
	client *http.Client

	mu      sync.Mutex
	set     jose.JSONWebKeySet
	fetched time.Time
	// forced is the last refetch made for an unknown kid.
	forced time.Time
}

// New builds the key set from inline JSON or a jwks_uri (one of them).
func New(inline, uri string, client *http.Client) (*Keys, error) {
	k := &Keys{uri: uri, client: client}
	if inline != "" {
		if err := json.Unmarshal([]byte(inline), &k.set); err != nil {
			return nil, fmt.Errorf("clientkeys: inline jwks: %w", err)
		}
		k.uri = ""
	}
	return k, nil
}

// get returns the set, fetching it when stale, or when force is set (an
// unknown kid) and no forced refetch happened within refetchEvery.
func (k *Keys) get(ctx context.Context, force bool) (jose.JSONWebKeySet, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.uri == "" {
		return k.set, nil
	}
	fresh := !k.fetched.IsZero() && time.Since(k.fetched) < cacheFor
	if fresh && (!force || time.Since(k.forced) < refetchEvery) {
		return k.set, nil
	}
	if force && fresh {
		k.forced = time.Now()
	}
	set, err := k.fetch(ctx)
	if err != nil {
		if !k.fetched.IsZero() {
			// A stale set beats none while the SP's endpoint is down.
			return k.set, nil
		}
		return jose.JSONWebKeySet{}, err
	}
	k.set, k.fetched = set, time.Now()
	return set, nil
}

func (k *Keys) fetch(ctx context.Context) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.uri, nil)
	if err != nil {
		return set, fmt.Errorf("clientkeys: %w", err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return set, fmt.Errorf("clientkeys: fetch jwks_uri: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("clientkeys: jwks_uri answered %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return set, fmt.Errorf("clientkeys: read jwks_uri: %w", err)
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return set, fmt.Errorf("clientkeys: jwks_uri is not a JWK set: %w", err)
	}
	return set, nil
}

// Encryption returns the SP's first public key meant for encryption that
// fits alg (or, when alg is empty, any such key with the alg it implies).
func (k *Keys) Encryption(ctx context.Context, alg string) (jose.JSONWebKey, jose.KeyAlgorithm, error) {
	set, err := k.get(ctx, false)
	if err != nil {
		return jose.JSONWebKey{}, "", err
	}
	for _, key := range set.Keys {
		if !key.IsPublic() || !key.Valid() || (key.Use != "" && key.Use != "enc") {
			continue
		}
		want := jose.KeyAlgorithm(alg)
		if want == "" {
			want = jose.KeyAlgorithm(key.Algorithm)
		}
		if want == "" {
			want = defaultAlg(key)
		}
		if key.Algorithm != "" && key.Algorithm != string(want) {
			continue
		}
		if fits(key, want) {
			return key, want, nil
		}
	}
	return jose.JSONWebKey{}, "", ErrNoKey
}

// Verification returns the SP's signing keys matching kid (all of them when
// kid is empty), refetching once on an unknown kid.
func (k *Keys) Verification(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	for _, force := range []bool{false, true} {
		set, err := k.get(ctx, force)
		if err != nil {
			return nil, err
		}
		var out []jose.JSONWebKey
		for _, key := range set.Keys {
			if key.IsPublic() && key.Valid() && (key.Use == "" || key.Use == "sig") && (kid == "" || key.KeyID == kid) {
				out = append(out, key)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, ErrNoKey
}

// defaultAlg is the key-management algorithm a key's type implies.
func defaultAlg(key jose.JSONWebKey) jose.KeyAlgorithm {
	switch key.Key.(type) {
	case *rsa.PublicKey:
		return jose.RSA_OAEP_256
	case *ecdsa.PublicKey:
		return jose.ECDH_ES
	}
	return ""
}

// fits reports whether alg can use the key's type; RSA1_5 never can.
func fits(key jose.JSONWebKey, alg jose.KeyAlgorithm) bool {
	switch alg {
	case jose.RSA_OAEP, jose.RSA_OAEP_256:
		return defaultAlg(key) == jose.RSA_OAEP_256
	case jose.ECDH_ES:
		return defaultAlg(key) == jose.ECDH_ES
	}
	return false
}
