package demosp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/internal/keys"
)

// The demo SP's own keys: one signs its private_key_jwt client assertions,
// the others are what the "+" platform encrypts id_tokens and userinfo to.
// Each key has one use and one algorithm (RFC 8725 §3.1), written in the
// key itself and enforced when it is used.
const (
	algECDHES     = string(jose.ECDH_ES)
	algRSAOAEP    = string(jose.RSA_OAEP)
	algRSAOAEP256 = string(jose.RSA_OAEP_256)
)

// keyAlgs are the JWE key management algorithms the "+" platform may use
// (FranceConnect+: ECDH-ES, RSA-OAEP, RSA-OAEP-256); contentEncs its only
// content encryption.
var (
	keyAlgs     = []jose.KeyAlgorithm{jose.ECDH_ES, jose.RSA_OAEP, jose.RSA_OAEP_256}
	contentEncs = []jose.ContentEncryption{jose.A256GCM}
)

// assertionTTL is the lifetime of a client assertion: it is used at once,
// so a short life limits what a leaked one is worth.
const assertionTTL = 60 * time.Second

// spKeys are the demo SP's private keys.
type spKeys struct {
	sign jose.JSONWebKey   // the first ES256 key, which signs
	set  []jose.JSONWebKey // every key, in file order, all published
}

// GenerateKeys returns a fresh private JWK set for the demo SP, in the
// format demo_sp.keys reads: an ES256 signing key (private_key_jwt), an EC
// P-256 key for ECDH-ES and an RSA 2048 key for RSA-OAEP-256, each with a
// kid derived from its thumbprint, its use and its alg.
func GenerateKeys() (jose.JSONWebKeySet, error) {
	k, err := generateKeys()
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return jose.JSONWebKeySet{Keys: k.all()}, nil
}

func generateKeys() (*spKeys, error) {
	sign, err := keys.NewKey(jose.ES256)
	if err != nil {
		return nil, err
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demosp: generate EC key: %w", err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("demosp: generate RSA key: %w", err)
	}
	k := &spKeys{sign: sign, set: []jose.JSONWebKey{sign}}
	for _, e := range []jose.JSONWebKey{
		{Key: ec, Algorithm: algECDHES, Use: "enc"},
		{Key: rs, Algorithm: algRSAOAEP256, Use: "enc"},
	} {
		tp, err := e.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("demosp: thumbprint: %w", err)
		}
		e.KeyID = base64.RawURLEncoding.EncodeToString(tp)[:16]
		k.set = append(k.set, e)
	}
	return k, k.check()
}

// loadKeys reads a private JWK set. Every key must say what it is for: a
// key the demo SP would not use is an error, not something silently
// published.
func loadKeys(path string) (*spKeys, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("demosp: keys: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("demosp: keys: %s: not a JWK set: %w", path, err)
	}
	k := &spKeys{}
	haveSign := false
	for i, key := range set.Keys {
		name := fmt.Sprintf("%s: key %d (kid %q)", path, i, key.KeyID)
		if key.IsPublic() || !key.Valid() {
			return nil, fmt.Errorf("demosp: keys: %s: a valid private key is required", name)
		}
		switch key.Algorithm {
		case string(jose.ES256):
			if key.Use != "" && key.Use != "sig" {
				return nil, fmt.Errorf("demosp: keys: %s: an ES256 key has use sig, not %q", name, key.Use)
			}
			key.Use = "sig"
			// Further signing keys are published, for a rotation, but
			// never sign.
			if !haveSign {
				k.sign, haveSign = key, true
			}
		case algECDHES, algRSAOAEP256, algRSAOAEP:
			if key.Use != "" && key.Use != "enc" {
				return nil, fmt.Errorf("demosp: keys: %s: a %s key has use enc, not %q", name, key.Algorithm, key.Use)
			}
			key.Use = "enc"
		default:
			return nil, fmt.Errorf("demosp: keys: %s: alg %q is not one the demo SP uses (ES256 signs; %s, %s or %s decrypt)",
				name, key.Algorithm, algECDHES, algRSAOAEP256, algRSAOAEP)
		}
		k.set = append(k.set, key)
	}
	if !haveSign {
		return nil, fmt.Errorf("demosp: keys: %s: no ES256 signing key (needed for private_key_jwt)", path)
	}
	if err := k.check(); err != nil {
		return nil, fmt.Errorf("demosp: keys: %s: %w", path, err)
	}
	return k, nil
}

// all returns every private key.
func (k *spKeys) all() []jose.JSONWebKey { return k.set }

// check enforces what the rest of the code relies on: unique non-empty
// kids, key types that match the algorithms, RSA of 2048 bits at least, and
// at least one decryption key.
func (k *spKeys) check() error {
	seen := map[string]bool{}
	decrypts := false
	for _, key := range k.all() {
		if key.KeyID == "" || seen[key.KeyID] {
			return fmt.Errorf("kid %q is empty or duplicate", key.KeyID)
		}
		seen[key.KeyID] = true
		switch key.Algorithm {
		case string(jose.ES256):
			if p, ok := key.Key.(*ecdsa.PrivateKey); !ok || p.Curve != elliptic.P256() {
				return fmt.Errorf("key %s: ES256 needs an EC P-256 key", key.KeyID)
			}
		case algECDHES:
			if _, ok := key.Key.(*ecdsa.PrivateKey); !ok {
				return fmt.Errorf("key %s: %s needs an EC key", key.KeyID, key.Algorithm)
			}
			decrypts = true
		case algRSAOAEP, algRSAOAEP256:
			p, ok := key.Key.(*rsa.PrivateKey)
			if !ok || p.N.BitLen() < 2048 {
				return fmt.Errorf("key %s: %s needs an RSA key of 2048 bits or more", key.KeyID, key.Algorithm)
			}
			decrypts = true
		}
	}
	if !decrypts {
		return errors.New("no decryption key (ECDH-ES, RSA-OAEP-256 or RSA-OAEP): the \"+\" platform encrypts to it")
	}
	return nil
}

// public is what /jwks publishes: the public half of every key, with its
// kid, use and alg, so a provider knows which key to encrypt to and which
// verifies the client assertions.
func (k *spKeys) public() jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, key := range k.all() {
		set.Keys = append(set.Keys, key.Public())
	}
	return set
}

// jwks serves the public keys. The cache is short: generated keys change
// at every start, and a provider must not encrypt to a key that is gone.
func (a *App) jwks(w http.ResponseWriter, _ *http.Request) {
	body, err := json.Marshal(a.keys.public())
	if err != nil {
		http.Error(w, "jwks unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(body)
}

// decryptKey picks the key a JWE names. The header's alg must be the key's
// own: a key registered for ECDH-ES is never used with anything else. A JWE
// without kid gets the first key of its alg.
func (k *spKeys) decryptKey(kid, alg string) (jose.JSONWebKey, bool) {
	for _, key := range k.set {
		if key.Use != "enc" || key.Algorithm != alg {
			continue
		}
		if kid == "" || key.KeyID == kid {
			return key, true
		}
	}
	return jose.JSONWebKey{}, false
}

// clientAssertion is the private_key_jwt of RFC 7523 §2.2 (and OIDC Core
// §9): a JWT the demo SP signs about itself for one token request.
func (k *spKeys) clientAssertion(clientID, tokenURL string, now time.Time) (string, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.sign.KeyID)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.sign.Key}, opts)
	if err != nil {
		return "", fmt.Errorf("demosp: assertion signer: %w", err)
	}
	return jwt.Signed(signer).Claims(jwt.Claims{
		Issuer:   clientID,
		Subject:  clientID,
		Audience: jwt.Audience{tokenURL},
		ID:       randomString(32),
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(assertionTTL)),
	}).Serialize()
}

// errUndecryptable marks a JWE this SP cannot open: for another key, or
// damaged. errPlain marks a token sent in clear where encryption is required.
var (
	errUndecryptable = errors.New("the JWE cannot be decrypted with this SP's keys")
	errPlain         = errors.New("the token is not encrypted, and this platform must encrypt it")
)

// jweInfo describes how a token was encrypted, for /me.
type jweInfo struct {
	Alg, Enc, KeyID string
}

// isJWE tells a compact JWE (five parts) from a compact JWS (three).
func isJWE(raw string) bool { return strings.Count(raw, ".") == 4 }

// decrypt opens a compact JWE and returns the JWS it must hold; the JWS
// itself is verified by the caller. Only a nested signed JWT is accepted: an
// encrypted but unsigned token proves nothing about who wrote it.
func (k *spKeys) decrypt(raw string) (string, jweInfo, error) {
	obj, err := jose.ParseEncryptedCompact(raw, keyAlgs, contentEncs)
	if err != nil {
		return "", jweInfo{}, fmt.Errorf("%w: %v", errUndecryptable, err)
	}
	h := obj.Header
	info := jweInfo{Alg: h.Algorithm, KeyID: h.KeyID}
	info.Enc, _ = h.ExtraHeaders[jose.HeaderKey("enc")].(string)
	key, ok := k.decryptKey(h.KeyID, h.Algorithm)
	if !ok {
		return "", info, fmt.Errorf("%w: no %s key with kid %q", errUndecryptable, h.Algorithm, h.KeyID)
	}
	plain, err := obj.Decrypt(key.Key)
	if err != nil {
		return "", info, fmt.Errorf("%w: %v", errUndecryptable, err)
	}
	// RFC 7519 §5.2: a nested JWT says cty "JWT" (case-insensitively).
	if cty, present := h.ExtraHeaders[jose.HeaderContentType]; present {
		if s, _ := cty.(string); !strings.EqualFold(s, "JWT") {
			return "", info, fmt.Errorf("the JWE content type is %v, not JWT", cty)
		}
	}
	inner := strings.TrimSpace(string(plain))
	if strings.Count(inner, ".") != 2 {
		return "", info, errors.New("the JWE does not hold a signed JWT (JWS)")
	}
	return inner, info, nil
}
