package demosp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/internal/dpop"
)

// maxNonce bounds a DPoP-Nonce the demo SP keeps and echoes: a nonce is a
// few dozen characters, and a huge one would ride along on every proof.
const maxNonce = 1 << 10

// dpopTransport adds a DPoP proof (RFC 9449) to every request it carries,
// signed with the demo SP's DPoP key, and keeps the latest DPoP-Nonce each
// server sent. It sits under an http.Client, so the PAR call, the token
// call made by x/oauth2 and the userinfo call all get their proofs in one
// place, each for its own method and URL:
//
//   - htm and htu come from the request itself, so they cannot disagree
//     with what is sent;
//   - ath is the hash of the access token in the request's
//     "Authorization: DPoP" header, when there is one (resource access, §7);
//   - nonce is the last DPoP-Nonce that server (scheme and host) answered.
//
// It does not retry: a use_dpop_nonce answer goes back to the caller, which
// rebuilds its request (with a fresh client assertion) and sends it once
// more, now that the nonce is known.
type dpopTransport struct {
	base http.RoundTripper
	// key is the demo SP's DPoP key: ES256, generated at start, never
	// published (it is not in /jwks). It is kept apart from the signing and
	// decryption keys on purpose: what it proves is possession by this
	// process, not the client's identity, which private_key_jwt proves.
	key jose.JSONWebKey

	mu     sync.Mutex
	nonces map[string]string // origin (scheme://host) -> latest DPoP-Nonce
}

// newDPoPTransport generates the DPoP key of this process.
func newDPoPTransport(base http.RoundTripper) (*dpopTransport, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demosp: generate DPoP key: %w", err)
	}
	return &dpopTransport{
		base:   base,
		key:    jose.JSONWebKey{Key: k, Algorithm: dpopAlg},
		nonces: map[string]string{},
	}, nil
}

// origin keys the nonces: RFC 9449 §8 nonces are per server.
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// RoundTrip implements http.RoundTripper.
func (t *dpopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var token string
	if scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "DPoP") {
		token = tok
	}
	o := origin(req.URL)
	t.mu.Lock()
	nonce := t.nonces[o]
	t.mu.Unlock()
	proof, err := dpop.NewProof(t.key, req.Method, req.URL.String(), token, nonce)
	if err != nil {
		if req.Body != nil {
			req.Body.Close() // RoundTrip must close the body, even on error
		}
		return nil, err
	}
	// A RoundTripper must not change the request it is given.
	out := req.Clone(req.Context())
	out.Header.Set(dpop.HeaderName, proof)
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	if n := resp.Header.Get(dpop.NonceHeader); n != "" && len(n) <= maxNonce {
		t.mu.Lock()
		t.nonces[o] = n
		t.mu.Unlock()
	}
	return resp, nil
}

// useNonce reports whether an authorization server's error answer (PAR,
// token) asks for a DPoP nonce and gives one (RFC 9449 §8): only then is a
// second try worth making.
func useNonce(code string, h http.Header) bool {
	return code == "use_dpop_nonce" && h.Get(dpop.NonceHeader) != ""
}

// resourceUseNonce is useNonce for a resource server, userinfo here, which
// answers 401 with the error in WWW-Authenticate (RFC 9449 §9).
func resourceUseNonce(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(dpop.NonceHeader) == "" {
		return false
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		scheme, params, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, "DPoP") && strings.Contains(params, `error="use_dpop_nonce"`) {
			return true
		}
	}
	return false
}
