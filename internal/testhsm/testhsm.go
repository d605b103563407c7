//go:build pkcs11

// Package testhsm gives a test its own SoftHSM2 token, in a private
// directory, so that the PKCS#11 signer is tested against a real
// PKCS#11 module (Debian's softhsm2), never a fake.
package testhsm

import (
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/internal/keys/pkcs11"
)

// Token is an initialised SoftHSM2 token.
type Token struct {
	Module, Label, PIN string
}

// modules are where Debian and Ubuntu put SoftHSM2's PKCS#11 library.
var modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
}

const missingMsg = "testhsm: SoftHSM2 is not installed (softhsm2-util and libsofthsm2.so); run `make deps` or apt-get install softhsm2"

// Start initialises a fresh token labelled "sesame-test" in a temporary
// directory (the module: SESAME_SOFTHSM_MODULE, or Debian's and Ubuntu's
// paths), pointing SOFTHSM2_CONF at it for the rest of the test (so the
// test must not run in parallel with another that loads the module).
// Without SoftHSM2 the test is skipped, unless SESAME_REQUIRE_HSM=1 or CI
// is set, when it fails: make test must never pass by skipping the HSM.
func Start(t testing.TB) *Token {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	module := ""
	candidates := modules
	if m := os.Getenv("SESAME_SOFTHSM_MODULE"); m != "" {
		candidates = []string{m}
	}
	for _, m := range candidates {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	if err != nil || module == "" {
		if os.Getenv("CI") != "" || os.Getenv("SESAME_REQUIRE_HSM") == "1" {
			t.Fatal(missingMsg)
		}
		t.Skip(missingMsg)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	tk := &Token{Module: module, Label: "sesame-test", PIN: "1234-test"}
	out, err := exec.Command(util, "--init-token", "--free", "--label", tk.Label, "--pin", tk.PIN, "--so-pin", "5678-test").CombinedOutput()
	if err != nil {
		t.Fatalf("testhsm: softhsm2-util --init-token: %v\n%s", err, out)
	}
	t.Logf("testhsm: token %q in %s (%s, %s)", tk.Label, tokens, module, strings.TrimSpace(string(out)))
	return tk
}

// Open logs in to the token; the session closes at the test's end.
func (tk *Token) Open(t testing.TB) *pkcs11.Token {
	t.Helper()
	p, err := pkcs11.Open(tk.Module, tk.Label, tk.PIN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Generate makes a key pair for alg inside the token, as an operator
// would with the HSM's tools, and returns its public key.
func (tk *Token) Generate(t testing.TB, label, alg string) crypto.PublicKey {
	t.Helper()
	p, err := pkcs11.Open(tk.Module, tk.Label, tk.PIN)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := p.Generate(label, alg)
	if err != nil {
		t.Fatal(err)
	}
	return s.Public()
}
