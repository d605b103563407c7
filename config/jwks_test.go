package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// withSPJWKS is the minimal config with its SP's jwks written as given
// (YAML, indented for the SP's entry).
func withSPJWKS(jwks string) []byte {
	return []byte(strings.Replace(minimal, `          redirect_uris: ["https://sp.example/cb"]`,
		"          redirect_uris: [\"https://sp.example/cb\"]\n          jwks:"+jwks, 1))
}

const testJWK = `{"kty":"EC","use":"enc","kid":"e1","alg":"ECDH-ES","crv":"P-256","x":"vMEKmgcsObS9cVDTEImMrfyUQ-AnL-wWmslYnXep00M","y":"lf2dDqC01i2DiEWmN07CdgDYddYt8MsuqmCeDQU6KGU"}`

func TestSPJWKSAsMappingOrString(t *testing.T) {
	asString, err := Parse("s.yaml", withSPJWKS(` '{"keys":[`+testJWK+`]}'`))
	if err != nil {
		t.Fatalf("jwks as a JSON string: %v", err)
	}
	asMapping, err := Parse("m.yaml", withSPJWKS(`
            keys:
              - kty: EC
                use: enc
                kid: e1
                alg: ECDH-ES
                crv: P-256
                x: vMEKmgcsObS9cVDTEImMrfyUQ-AnL-wWmslYnXep00M
                y: lf2dDqC01i2DiEWmN07CdgDYddYt8MsuqmCeDQU6KGU`))
	if err != nil {
		t.Fatalf("jwks as a YAML mapping: %v", err)
	}
	flow, err := Parse("f.yaml", withSPJWKS(` {keys: [`+testJWK+`]}`))
	if err != nil {
		t.Fatalf("jwks as a YAML flow mapping: %v", err)
	}
	decode := func(c *Config) any {
		var v any
		raw := c.Broker.Platforms[0].ServiceProviders[0].JWKS
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			t.Fatalf("jwks %q is not JSON: %v", raw, err)
		}
		return v
	}
	want := decode(asString)
	for name, c := range map[string]*Config{"mapping": asMapping, "flow mapping": flow} {
		if got := decode(c); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: jwks = %v, want %v", name, got, want)
		}
	}
}

func TestSPJWKSRefused(t *testing.T) {
	for name, tc := range map[string]struct{ jwks, want string }{
		"a list":        {"\n            - " + testJWK, "expected a key set"},
		"a private key": {` {keys: [` + strings.Replace(testJWK, `"kty"`, `"d":"icE1f9rgiFT3zgJkwrDKwwdK1DruEX6wkNc1ZAmBXaQ","kty"`, 1) + `]}`, "only valid public keys"},
		"no keys":       {` {keys: []}`, "holds no key"},
		"not a key set": {` 'keys'`, "not a JSON Web Key Set"},
		"a number":      {" 42", "not a JSON Web Key Set"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("x.yaml", withSPJWKS(tc.jwks))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "config.") {
				t.Errorf("the error names a Go type: %v", err)
			}
		})
	}
}
