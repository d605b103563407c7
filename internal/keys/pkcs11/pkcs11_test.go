//go:build pkcs11

package pkcs11_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/sesame-id/sesame/internal/testhsm"
)

// Keys made in a SoftHSM2 token sign inside it (ES256 and RS256), the
// signatures verify with the public keys read from the token, and the
// private values cannot be read out.
func TestHSMSignAndKeyStaysInside(t *testing.T) {
	tk := testhsm.Start(t)
	tk.Generate(t, "es", "ES256")
	tk.Generate(t, "rs", "RS256")
	tok := tk.Open(t)
	digest := sha256.Sum256([]byte("payload"))
	for _, label := range []string{"es", "rs"} {
		s, err := tok.Signer(label)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(nil, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatalf("%s: sign: %v", label, err)
		}
		switch pub := s.Public().(type) {
		case *ecdsa.PublicKey:
			if !ecdsa.VerifyASN1(pub, digest[:], sig) {
				t.Fatalf("%s: ECDSA signature does not verify", label)
			}
		case *rsa.PublicKey:
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
				t.Fatalf("%s: RSA signature: %v", label, err)
			}
		default:
			t.Fatalf("%s: public key %T", label, pub)
		}
		for attr, want := range map[uint]byte{p11.CKA_EXTRACTABLE: 0, p11.CKA_SENSITIVE: 1} {
			v, err := tok.Attribute(s, attr)
			if err != nil || len(v) != 1 || v[0] != want {
				t.Fatalf("%s: attribute %#x = %v (%v), want %d", label, attr, v, err, want)
			}
		}
		// The private value (CKA_VALUE for EC, CKA_PRIVATE_EXPONENT for
		// RSA) is refused by the token.
		secret := uint(p11.CKA_VALUE)
		if label == "rs" {
			secret = p11.CKA_PRIVATE_EXPONENT
		}
		if v, err := tok.Attribute(s, secret); err == nil && len(v) > 0 {
			t.Fatalf("%s: the token gave out the private key (%d bytes)", label, len(v))
		}
	}
	if _, err := tok.Signer("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("missing key: %v", err)
	}
}

// A key pair the token would let out (CKA_EXTRACTABLE) is refused: an HSM
// key is there so that nobody can copy it.
func TestHSMRefusesExtractableKey(t *testing.T) {
	tk := testhsm.Start(t)
	ctx, err := crypto11.Configure(&crypto11.Config{Path: tk.Module, TokenLabel: tk.Label, Pin: tk.PIN})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := crypto11.NewAttributeSetWithIDAndLabel([]byte{1}, []byte("loose"))
	priv, _ := crypto11.NewAttributeSetWithIDAndLabel([]byte{1}, []byte("loose"))
	if err := priv.Set(p11.CKA_EXTRACTABLE, true); err != nil {
		t.Fatal(err)
	}
	if _, err := ctx.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P256()); err != nil {
		t.Fatal(err)
	}
	_ = ctx.Close()
	if _, err := tk.Open(t).Signer("loose"); err == nil || !strings.Contains(err.Error(), "extractable") {
		t.Fatalf("extractable key: %v", err)
	}
}
