package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeSPFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sp.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const stdSPFile = `level: standard
service_providers:
  - client_id: mine
    client_secret: mine-secret-0123456789abcdef0123456789
    sector: mine.localhost
    redirect_uris: [http://localhost:9000/callback]
`

var plusSPFile = `level: plus
service_providers:
  - client_id: mine-plus
    sector: mine.localhost
    redirect_uris: [http://localhost:9000/callback]
    token_endpoint_auth_methods: [private_key_jwt]
    jwks:
      keys:
        - ` + testJWK + `
`

func TestAddSPFiles(t *testing.T) {
	c, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	before := len(c.Broker.Platforms[1].ServiceProviders)
	stdFile, plusFile := writeSPFile(t, stdSPFile), writeSPFile(t, plusSPFile)
	added, err := c.AddSPFiles(stdFile, plusFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := []AddedSP{{"mine", "std", stdFile}, {"mine-plus", "plus", plusFile}}; !slices.Equal(added, want) {
		t.Errorf("added = %v, want %v", added, want)
	}
	find := func(pl int, id string) *SP {
		sps := c.Broker.Platforms[pl].ServiceProviders
		if i := slices.IndexFunc(sps, func(s SP) bool { return s.ClientID == id }); i >= 0 {
			return &sps[i]
		}
		return nil
	}
	std, plus := find(0, "mine"), find(1, "mine-plus")
	if std == nil || plus == nil || find(1, "mine") != nil || find(0, "mine-plus") != nil {
		t.Fatalf("SPs not on the platform of their level: std %v, plus %v", std, plus)
	}
	if len(c.Broker.Platforms[1].ServiceProviders) != before+1 {
		t.Errorf("plus platform: %d SPs, want %d", len(c.Broker.Platforms[1].ServiceProviders), before+1)
	}
	// Validated as entries of their platform: defaults filled.
	if std.Name != "mine" || !slices.Equal(std.Scopes, []string{"openid"}) {
		t.Errorf("standard SP not validated: name %q scopes %v", std.Name, std.Scopes)
	}
	if plus.IDTokenEncryptedResponseEnc != "A256GCM" || plus.UserinfoSignedResponseAlg != "ES256" {
		t.Errorf("plus SP without the plus defaults: enc %q userinfo alg %q", plus.IDTokenEncryptedResponseEnc, plus.UserinfoSignedResponseAlg)
	}
}

func TestAddSPFilesRefused(t *testing.T) {
	for name, tc := range map[string]struct{ file, want string }{
		"unknown field":      {strings.Replace(stdSPFile, "redirect_uris", "redirect_uri", 1), "redirect_uri"},
		"no level":           {strings.Replace(stdSPFile, "level: standard\n", "", 1), "level: missing"},
		"bad level":          {strings.Replace(stdSPFile, "level: standard", "level: eidas2", 1), `"eidas2": expected standard or plus`},
		"no SP":              {"level: plus\n", "service_providers: missing"},
		"empty":              {"", "empty"},
		"duplicate":          {strings.Replace(stdSPFile, "client_id: mine", "client_id: oidc-client", 1), `duplicate client_id "oidc-client"`},
		"secret on plus":     {strings.Replace(stdSPFile, "level: standard", "level: plus", 1), "private_key_jwt only"},
		"bad jwks":           {strings.Replace(plusSPFile, `"kty":"EC"`, `"kty":"EC","d":"icE1f9rgiFT3zgJkwrDKwwdK1DruEX6wkNc1ZAmBXaQ"`, 1), "only valid public keys"},
		"short secret":       {strings.Replace(stdSPFile, "mine-secret-0123456789abcdef0123456789", "short", 1), "client_secret"},
		"not a platform key": {stdSPFile + "listen: 127.0.0.1:1\n", "listen"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Load("dev.yaml")
			if err != nil {
				t.Fatal(err)
			}
			p := writeSPFile(t, tc.file)
			_, err = c.AddSPFiles(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("no platform of the level", func(t *testing.T) {
		c, err := Parse("min.yaml", []byte(minimal))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.AddSPFiles(writeSPFile(t, plusSPFile))
		if err == nil || !strings.Contains(err.Error(), "min.yaml has no platform with level plus") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		c, _ := Parse("min.yaml", []byte(minimal))
		if _, err := c.AddSPFiles(filepath.Join(t.TempDir(), "nope.yaml")); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
			t.Fatalf("err = %v", err)
		}
	})
}
