//go:build pkcs11

package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/keys"
	"github.com/sesame-id/sesame/internal/testhsm"
)

const hsmPINEnv = "SESAME_TEST_HSM_PIN"

// hsmStack starts a stack whose platform signs from the key directory dir
// with the token tk, and which has an ES256 SP ("sp") and an RS256 one
// ("sp-rs256").
func hsmStack(t *testing.T, tk *testhsm.Token, dir string) (*teststack.Stack, *loadClient) {
	t.Helper()
	t.Setenv(hsmPINEnv, tk.PIN)
	s := teststack.New(t, func(c *config.Config) {
		pl := &c.Broker.Platforms[0]
		pl.SigningKeysDir = dir
		pl.SigningKeysReload = config.Duration(time.Hour) // reloads by hand here
		// A short max-age, so that the rotation's lead (2s) exceeds it as
		// the rule wants; the strict SP would fail otherwise.
		pl.JWKSMaxAge = config.Duration(time.Second)
		pl.HSM = &config.HSM{Module: tk.Module, TokenLabel: tk.Label, PINEnv: hsmPINEnv}
		rs := pl.ServiceProviders[0]
		rs.ClientID, rs.IDTokenSignedResponseAlg = "sp-rs256", "RS256"
		pl.ServiceProviders = append(pl.ServiceProviders, rs)
	})
	ctx := context.Background()
	lc := &loadClient{issuer: s.BrokerURL, replicas: []string{s.BrokerURL, s.BrokerURL}, verifiers: map[string][]*oidc.IDTokenVerifier{}}
	for _, sp := range []struct{ id, alg string }{{teststack.SPID, "ES256"}, {"sp-rs256", "RS256"}} {
		cfg := &oidc.Config{ClientID: sp.id, SupportedSigningAlgs: []string{sp.alg}}
		lc.verifiers[sp.id] = []*oidc.IDTokenVerifier{
			oidc.NewVerifier(s.BrokerURL, oidc.NewRemoteKeySet(ctx, s.BrokerURL+"/jwks"), cfg),
			oidc.NewVerifier(s.BrokerURL, &strictKeySet{url: s.BrokerURL + "/jwks"}, cfg),
		}
	}
	return s, lc
}

// published is the key of kid in the platform's /jwks.
func published(t *testing.T, s *teststack.Stack, kid string) jose.JSONWebKey {
	t.Helper()
	_, body := teststack.Get(t, http.DefaultClient, s.BrokerURL+"/jwks")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	found := set.Key(kid)
	if len(found) != 1 {
		t.Fatalf("kid %s not in /jwks: %s", kid, body)
	}
	return found[0]
}

// A full login whose id_token the HSM signs, for ES256 and for RS256: it
// verifies against /jwks, whose key is the one generated in the token,
// and the broker holds no private key in memory.
func TestHSMLogin(t *testing.T) {
	tk := testhsm.Start(t)
	pubs := map[string]any{
		"ES256": tk.Generate(t, "sesame-es256", "ES256"),
		"RS256": tk.Generate(t, "sesame-rs256", "RS256"),
	}
	dir := t.TempDir()
	if err := keys.WriteManifest(dir, &keys.Manifest{Version: keys.ManifestVersion, Keys: []keys.ManifestKey{
		{KeyID: "hsm-es256", Alg: "ES256", State: keys.Current, HSMLabel: "sesame-es256"},
		{KeyID: "hsm-rs256", Alg: "RS256", State: keys.Current, HSMLabel: "sesame-rs256"},
	}}); err != nil {
		t.Fatal(err)
	}
	s, lc := hsmStack(t, tk, dir)
	for i, c := range []struct{ client, alg, kid string }{
		{teststack.SPID, "ES256", "hsm-es256"},
		{"sp-rs256", "RS256", "hsm-rs256"},
	} {
		got, err := lc.login(context.Background(), i, c.client)
		if err != nil {
			t.Fatalf("%s login: %v", c.alg, err)
		}
		if got.kid != c.kid || got.alg != c.alg {
			t.Fatalf("%s id_token signed by %s (%s), want %s", c.alg, got.kid, got.alg, c.kid)
		}
		if k := published(t, s, c.kid); !reflect.DeepEqual(k.Key, pubs[c.alg]) || !k.IsPublic() {
			t.Fatalf("%s: /jwks publishes %v, the token holds %v", c.alg, k.Key, pubs[c.alg])
		}
	}
	set := s.Platform.Signer().Set()
	if n := len(set.PrivateJWKS().Keys); n != 0 {
		t.Fatalf("%d private keys in the broker's memory", n)
	}
	for _, k := range set.Keys() {
		if !k.InHSM {
			t.Fatalf("key %s is not in the HSM", k.KeyID)
		}
	}
}

// A rotation with one key in the HSM: a file key signs, an HSM key is
// added as next (published, not signing), signs from its activate_at on,
// and stays the signer when the next rotation retires the file key.
func TestHSMRotation(t *testing.T) {
	tk := testhsm.Start(t)
	tk.Generate(t, "sesame-es256-2", "ES256")
	dir := t.TempDir()
	if _, err := keys.Init(dir, []jose.SignatureAlgorithm{jose.ES256, jose.RS256}, time.Now()); err != nil {
		t.Fatal(err)
	}
	fileKid := ""
	m, _ := keys.ReadManifest(dir)
	for _, k := range m.Keys {
		if k.Alg == "ES256" {
			fileKid = k.KeyID
		}
	}
	s, lc := hsmStack(t, tk, dir)
	login := func(step, want string) {
		t.Helper()
		got, err := lc.login(context.Background(), 0, teststack.SPID)
		if err != nil {
			t.Fatalf("%s: login: %v", step, err)
		}
		if got.kid != want {
			t.Fatalf("%s: id_token signed by %s, want %s", step, got.kid, want)
		}
		t.Logf("%s: id_token signed by %s, verified against /jwks", step, got.kid)
	}
	login("file key current", fileKid)

	const lead = 2 * time.Second
	report, err := keys.Rotate(dir, keys.RotateOptions{Algs: []jose.SignatureAlgorithm{jose.ES256}, Lead: lead, HSMLabel: "sesame-es256-2", KeyID: "hsm-2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(report)
	if err := s.Platform.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	published(t, s, "hsm-2")
	login("HSM key next, not signing yet", fileKid)
	m, _ = keys.ReadManifest(dir)
	for _, k := range m.Keys {
		if k.KeyID == "hsm-2" {
			time.Sleep(time.Until(k.ActivateAt))
		}
	}
	login("HSM key past its activate_at", "hsm-2")

	if _, err := keys.Rotate(dir, keys.RotateOptions{Algs: []jose.SignatureAlgorithm{jose.ES256}, Lead: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := s.Platform.ReloadKeys(); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.Platform.Signer().Set().Keys() {
		if (k.KeyID == "hsm-2") != (k.State == keys.Current && k.Alg == jose.ES256) {
			t.Fatalf("after rotation 2: %s %s %s", k.KeyID, k.Alg, k.State)
		}
		if k.KeyID == fileKid && k.State != keys.Retired {
			t.Fatalf("file key %s is %s, want retired", k.KeyID, k.State)
		}
	}
	published(t, s, fileKid)
	login("HSM key current, file key retired", "hsm-2")
}
