//go:build pkcs11

// Package pkcs11 signs with keys held in a PKCS#11 token (an HSM, or
// SoftHSM2 in tests) through crypto11. The private keys never leave the
// token: it is asked to sign digests, and the public keys are read from
// it. The package needs cgo and the vendor's module, so it is built only
// with the pkcs11 tag; the default binary stays static and cgo-free.
package pkcs11

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"
)

// Token is a logged-in session pool on one token.
type Token struct {
	ctx *crypto11.Context
}

// Open loads module, finds the token labelled tokenLabel and logs in with
// pin.
func Open(module, tokenLabel, pin string) (*Token, error) {
	if module == "" || tokenLabel == "" {
		return nil, errors.New("pkcs11: a module path and a token label are required")
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: tokenLabel, Pin: pin})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: open token %q with %s: %w", tokenLabel, module, err)
	}
	return &Token{ctx: ctx}, nil
}

// Signer finds the key pair labelled label. It refuses a private key the
// token would let out (CKA_EXTRACTABLE true or CKA_SENSITIVE false): a
// signing key in an HSM is there so that nobody can copy it.
func (t *Token) Signer(label string) (crypto.Signer, error) {
	s, err := t.ctx.FindKeyPair(nil, []byte(label))
	if err != nil {
		return nil, fmt.Errorf("pkcs11: no key pair labelled %q (with a CKA_ID, and its public key beside it): %w", label, err)
	}
	if s == nil {
		return nil, fmt.Errorf("pkcs11: no key pair labelled %q", label)
	}
	attrs, err := t.ctx.GetAttributes(s, []crypto11.AttributeType{p11.CKA_EXTRACTABLE, p11.CKA_SENSITIVE})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: key %q: read its attributes: %w", label, err)
	}
	if a := attrs[p11.CKA_EXTRACTABLE]; a != nil && isTrue(a.Value) {
		return nil, fmt.Errorf("pkcs11: key %q is extractable (CKA_EXTRACTABLE): make a non-extractable key in the HSM", label)
	}
	if a := attrs[p11.CKA_SENSITIVE]; a != nil && !isTrue(a.Value) {
		return nil, fmt.Errorf("pkcs11: key %q is not sensitive (CKA_SENSITIVE false): its value could be read out", label)
	}
	return s, nil
}

func isTrue(v []byte) bool { return len(v) > 0 && v[0] != 0 }

// Generate makes a key pair in the token for alg (ES256: P-256; RS256
// and PS256: RSA 2048), sensitive and not extractable, with a random
// CKA_ID (which crypto11 needs to pair the halves) and the label given.
func (t *Token) Generate(label, alg string) (crypto.Signer, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("pkcs11: key id: %w", err)
	}
	var s crypto.Signer
	var err error
	switch alg {
	case "ES256":
		s, err = t.ctx.GenerateECDSAKeyPairWithLabel(id, []byte(label), elliptic.P256())
	case "RS256", "PS256":
		s, err = t.ctx.GenerateRSAKeyPairWithLabel(id, []byte(label), 2048)
	default:
		return nil, fmt.Errorf("pkcs11: alg %q: expected ES256, RS256 or PS256", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("pkcs11: generate %s key %q: %w", alg, label, err)
	}
	return s, nil
}

// Attribute reads one attribute of a key pair's private half (for tests
// that check what the token lets out).
func (t *Token) Attribute(s crypto.Signer, attr uint) ([]byte, error) {
	a, err := t.ctx.GetAttribute(s, attr)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errors.New("pkcs11: attribute not returned")
	}
	return a.Value, nil
}

// Close logs out and releases the module once no other Token uses it.
func (t *Token) Close() error {
	if err := t.ctx.Close(); err != nil {
		return fmt.Errorf("pkcs11: close: %w", err)
	}
	return nil
}
