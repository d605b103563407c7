//go:build pkcs11

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/internal/keys"
	"github.com/sesame-id/sesame/internal/testhsm"
)

// `sesame keys hsm-generate` makes a key pair in the token, `keys rotate
// -hsm-label` lists it as next, and the directory loads with the HSM.
func TestHSMGenerateCommand(t *testing.T) {
	tk := testhsm.Start(t)
	t.Setenv("SESAME_TEST_HSM_PIN", tk.PIN)
	var out bytes.Buffer
	gen := []string{"hsm-generate", "-module", tk.Module, "-token-label", tk.Label, "-pin-env", "SESAME_TEST_HSM_PIN", "-label", "k1", "-alg", "RS256"}
	if err := genKeys(gen, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"kty": "RSA"`) || strings.Contains(out.String(), `"d"`) {
		t.Fatalf("hsm-generate printed:\n%s", out.String())
	}
	if err := genKeys(gen, &out); err == nil || !strings.Contains(err.Error(), "already has a key pair") {
		t.Fatalf("second hsm-generate: %v", err)
	}
	dir := t.TempDir()
	out.Reset()
	if err := genKeys([]string{"init", dir, "-alg", "RS256"}, &out); err != nil {
		t.Fatal(err)
	}
	if err := genKeys([]string{"rotate", dir, "-alg", "RS256", "-hsm-label", "k1", "-lead", "1s"}, &out); err != nil {
		t.Fatal(err)
	}
	h, err := keys.OpenHSM(keys.HSMConfig{Module: tk.Module, TokenLabel: tk.Label, PIN: tk.PIN})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s, err := keys.LoadDir(dir, h)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := s.SigningKeyAt(jose.RS256, time.Now().Add(2*time.Second))
	if !ok || k.KeyID != "k1" || !k.InHSM {
		t.Fatalf("signing key after activation: %+v", k)
	}
}
