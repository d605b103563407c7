package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/internal/keys"
)

func withKeys(fields string) []byte {
	return []byte(strings.Replace(minimal, "      identity_providers: [idp]\n", "      identity_providers: [idp]\n"+fields, 1))
}

// A key directory is read at validation, so that check-config reports a
// broken manifest, with the platform and the field, before any broker
// starts on it; the reload period and the JWKS max-age get defaults.
func TestSigningKeysDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := keys.Init(dir, []jose.SignatureAlgorithm{jose.ES256}, time.Now()); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("x.yaml", withKeys("      signing_keys_dir: "+dir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	pl := c.Broker.Platforms[0]
	if pl.SigningKeysReload.D(0) != 30*time.Second || pl.JWKSMaxAge.D(0) != 60*time.Second {
		t.Fatalf("defaults: reload %v, max-age %v", pl.SigningKeysReload.D(0), pl.JWKSMaxAge.D(0))
	}

	if err := os.WriteFile(filepath.Join(dir, keys.ManifestFile), []byte(`{"version":1,"keys":[{"kid":"a","alg":"ES256","state":"next","file":"a.json"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Parse("x.yaml", withKeys("      signing_keys_dir: "+dir+"\n      signing_keys: [k.json]\n"))
	if err == nil {
		t.Fatal("broken manifest accepted")
	}
	for _, want := range []string{
		"broker.platforms[0] (std): signing_keys_dir: set signing_keys (files, all current) or signing_keys_dir",
		"broker.platforms[0] (std): signing_keys_dir: " + dir + ": keys[0] (a): activate_at: is required",
		"broker.platforms[0] (std): signing_keys_dir: " + dir + ": keys: no current key",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// An HSM is checked for its fields, and a binary without PKCS#11 says so
// at check-config rather than at the first login.
func TestHSMConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := keys.Init(dir, []jose.SignatureAlgorithm{jose.ES256}, time.Now()); err != nil {
		t.Fatal(err)
	}
	m, _ := keys.ReadManifest(dir)
	m.Keys = append(m.Keys, keys.ManifestKey{KeyID: "h", Alg: "RS256", State: keys.Current, HSMLabel: "h"})
	if err := keys.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	_, err := Parse("x.yaml", withKeys("      signing_keys_dir: "+dir+"\n"))
	if err == nil || !strings.Contains(err.Error(), "hsm: the manifest of "+dir+" lists keys with hsm_label") {
		t.Fatalf("HSM keys without hsm: %v", err)
	}
	_, err = Parse("x.yaml", withKeys("      signing_keys_dir: "+dir+"\n      hsm: {module: /nonexistent/lib.so, pin_env: \"1234\"}\n"))
	if err == nil {
		t.Fatal("bad hsm accepted")
	}
	wants := []string{
		"hsm.module: stat /nonexistent/lib.so",
		"hsm.token_label: is missing",
		`hsm.pin_env: "1234": expected the name of the environment variable`,
	}
	if !keys.HSMSupported() {
		wants = append(wants, "hsm: this binary was built without PKCS#11 support")
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
