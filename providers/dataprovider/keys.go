package dataprovider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// The key management algorithms a broker may encrypt an introspection
// answer with, and the one content encryption: the contract's, no more.
var (
	keyAlgs     = []jose.KeyAlgorithm{jose.ECDH_ES, jose.RSA_OAEP_256}
	contentEncs = []jose.ContentEncryption{jose.A256GCM}
)

// decryptionKeys are a provider's private keys, each for one algorithm;
// all are published at /dp/<id>/jwks.
type decryptionKeys []jose.JSONWebKey

// generateKeys makes an ECDH-ES key (P-256) and an RSA-OAEP-256 key
// (2048 bits), so a broker can use either.
func generateKeys() (decryptionKeys, error) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	var ks decryptionKeys
	for _, k := range []jose.JSONWebKey{
		{Key: ec, Algorithm: string(jose.ECDH_ES), Use: "enc"},
		{Key: rs, Algorithm: string(jose.RSA_OAEP_256), Use: "enc"},
	} {
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, err
		}
		k.KeyID = "enc-" + base64.RawURLEncoding.EncodeToString(tp)[:16]
		ks = append(ks, k)
	}
	return ks, nil
}

// GenerateKeys returns a fresh private JWK set in the format the keys
// field of a data provider reads.
func GenerateKeys() (jose.JSONWebKeySet, error) {
	ks, err := generateKeys()
	return jose.JSONWebKeySet{Keys: ks}, err
}

// loadKeys reads a private JWK set: every key private, with a unique kid
// and the alg ECDH-ES (an EC key) or RSA-OAEP-256 (RSA of 2048 bits or
// more), use enc or none. A key the provider would not use is an error,
// not something silently published.
func loadKeys(path string) (decryptionKeys, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("%s: not a JWK set: %w", path, err)
	}
	seen := map[string]bool{}
	var ks decryptionKeys
	for i, k := range set.Keys {
		name := fmt.Sprintf("%s: key %d (kid %q)", path, i, k.KeyID)
		if k.IsPublic() || !k.Valid() {
			return nil, fmt.Errorf("%s: a valid private key is required", name)
		}
		if k.KeyID == "" || seen[k.KeyID] {
			return nil, fmt.Errorf("%s: kid is empty or duplicate", name)
		}
		seen[k.KeyID] = true
		if k.Use != "" && k.Use != "enc" {
			return nil, fmt.Errorf("%s: use %q: a data provider's keys decrypt (use enc)", name, k.Use)
		}
		k.Use = "enc"
		switch jose.KeyAlgorithm(k.Algorithm) {
		case jose.ECDH_ES:
			if _, ok := k.Key.(*ecdsa.PrivateKey); !ok {
				return nil, fmt.Errorf("%s: ECDH-ES needs an EC key", name)
			}
		case jose.RSA_OAEP_256:
			if p, ok := k.Key.(*rsa.PrivateKey); !ok || p.N.BitLen() < 2048 {
				return nil, fmt.Errorf("%s: RSA-OAEP-256 needs an RSA key of 2048 bits or more", name)
			}
		default:
			return nil, fmt.Errorf("%s: alg %q: expected ECDH-ES or RSA-OAEP-256", name, k.Algorithm)
		}
		ks = append(ks, k)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("%s: no key", path)
	}
	return ks, nil
}

// public is what /jwks publishes.
func (ks decryptionKeys) public() jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range ks {
		set.Keys = append(set.Keys, k.Public())
	}
	return set
}

// decrypt opens a compact JWE made for one of the keys (the one its kid
// names, and only with that key's own alg) and returns the nested JWS it
// must hold (cty JWT).
func (ks decryptionKeys) decrypt(raw string) (string, error) {
	obj, err := jose.ParseEncryptedCompact(raw, keyAlgs, contentEncs)
	if err != nil {
		return "", fmt.Errorf("not a JWE for ECDH-ES or RSA-OAEP-256 with A256GCM: %v", err)
	}
	h := obj.Header
	var key *jose.JSONWebKey
	for i := range ks {
		if ks[i].Algorithm == h.Algorithm && (h.KeyID == "" || ks[i].KeyID == h.KeyID) {
			key = &ks[i]
			break
		}
	}
	if key == nil {
		return "", fmt.Errorf("JWE for kid %q and alg %s: not one of this provider's keys", h.KeyID, h.Algorithm)
	}
	plain, err := obj.Decrypt(key.Key)
	if err != nil {
		return "", fmt.Errorf("JWE does not decrypt with key %s: %v", key.KeyID, err)
	}
	// RFC 7519 §5.2: cty JWT, compared case-insensitively.
	if cty, _ := h.ExtraHeaders[jose.HeaderContentType].(string); !strings.EqualFold(cty, "JWT") {
		return "", fmt.Errorf("JWE cty %v, want JWT (a nested signed JWT)", h.ExtraHeaders[jose.HeaderContentType])
	}
	return string(plain), nil
}
