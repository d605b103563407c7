package clientkeys

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func ecKey(t *testing.T, kid, use, alg string) jose.JSONWebKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Use: use, Algorithm: alg}
}

// served publishes a key set and counts the fetches.
func served(t *testing.T, set *jose.JSONWebKeySet) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestEncryptionKeyChoice(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		ecKey(t, "sig", "sig", "ES256"),
		{Key: &rk.PublicKey, KeyID: "rsa", Use: "enc"},
		ecKey(t, "ec", "enc", ""),
	}}
	raw, _ := json.Marshal(set)
	k, err := New(string(raw), "", http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for alg, want := range map[string]string{"": "rsa", "RSA-OAEP": "rsa", "RSA-OAEP-256": "rsa", "ECDH-ES": "ec"} {
		key, got, err := k.Encryption(ctx, alg)
		if err != nil || key.KeyID != want {
			t.Errorf("alg %q: key %q (%v), want %q", alg, key.KeyID, err, want)
		}
		if alg != "" && string(got) != alg {
			t.Errorf("alg %q: got %s", alg, got)
		}
	}
	if _, _, err := k.Encryption(ctx, "RSA1_5"); !errors.Is(err, ErrNoKey) {
		t.Errorf("RSA1_5 must never be used: %v", err)
	}
	if keys, err := k.Verification(ctx, "sig"); err != nil || len(keys) != 1 {
		t.Errorf("verification key: %v %v", keys, err)
	}
	if _, err := k.Verification(ctx, "ec"); !errors.Is(err, ErrNoKey) {
		t.Errorf("an encryption key verified a signature: %v", err)
	}
}

// An unknown kid refetches the SP's jwks_uri at most once per interval, so
// assertions naming random kids cannot make us hammer it.
func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	set := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{ecKey(t, "old", "sig", "ES256")}}
	srv, hits := served(t, set)
	k, _ := New("", srv.URL, srv.Client())
	ctx := context.Background()
	if _, err := k.Verification(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	set.Keys = append(set.Keys, ecKey(t, "new", "sig", "ES256"))
	// The rotation is seen at once: one refetch.
	if _, err := k.Verification(ctx, "new"); err != nil {
		t.Fatalf("rotated key not found: %v", err)
	}
	for range 20 {
		if _, err := k.Verification(ctx, "random"); !errors.Is(err, ErrNoKey) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("jwks_uri fetched %d times, want 2 (first use, then one refetch)", n)
	}
}

func TestJWKSURIDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	k, _ := New("", srv.URL, srv.Client())
	if _, _, err := k.Encryption(context.Background(), ""); err == nil {
		t.Fatal("a dead jwks_uri gave a key")
	}
}
