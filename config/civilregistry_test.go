package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The dev stack checks logins against the mock registry it serves, with
// one secret on both sides.
func TestDevConfigCivilRegistry(t *testing.T) {
	c, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, m := c.Broker.CivilRegistry, c.Providers.CivilRegistry
	if r == nil || m == nil {
		t.Fatal("dev.yaml must enable the civil registry on the broker and the mock on the providers")
	}
	if r.URL != c.Providers.BaseURL+"/rnipp/check" || r.Secret != m.Secret {
		t.Errorf("broker's registry %s does not point at the mock's (%s/rnipp/check) with its secret", r.URL, c.Providers.BaseURL)
	}
	if r.OnOutage != OutageRefuse || time.Duration(r.Timeout) != 2*time.Second {
		t.Errorf("on_outage %q, timeout %s", r.OnOutage, time.Duration(r.Timeout))
	}
}

func withRegistry(block string) []byte {
	return []byte(strings.Replace(minimal, "  identity_providers:\n", block+"  identity_providers:\n", 1))
}

func TestCivilRegistryDefaults(t *testing.T) {
	c, err := Parse("ok.yaml", withRegistry(`  civil_registry:
    url: https://rnipp.example/check
    secret: "rnipp-secret-0123456789abcdef0123456789"
`))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Broker.CivilRegistry
	if r.OnOutage != OutageRefuse || time.Duration(r.Timeout) != DefaultCivilRegistryTimeout {
		t.Errorf("defaults: on_outage %q, timeout %s", r.OnOutage, time.Duration(r.Timeout))
	}
	if !c.Broker.IdentityProviders[0].ChecksCivilRegistry() {
		t.Error("an IdP is checked unless it says civil_registry: false")
	}
	off := false
	if (IdP{CivilRegistry: &off}).ChecksCivilRegistry() {
		t.Error("civil_registry: false still checked")
	}
	// Absent: no check, nothing filled in.
	c, err = Parse("ok.yaml", []byte(minimal))
	if err != nil || c.Broker.CivilRegistry != nil {
		t.Fatalf("no civil_registry block: %v, %+v", err, c.Broker.CivilRegistry)
	}
}

// Every mistake is named by entry and field, with what is expected.
func TestCivilRegistryValidation(t *testing.T) {
	for name, tc := range map[string]struct{ block, field, want string }{
		"no url":       {"    secret: \"rnipp-secret-0123456789abcdef0123456789\"\n", "url", "is missing"},
		"clear text":   {"    url: http://rnipp.example/check\n    secret: \"rnipp-secret-0123456789abcdef0123456789\"\n", "url", "use https"},
		"short secret": {"    url: https://rnipp.example/check\n    secret: short\n", "secret", "at least 32"},
		"bad policy":   {"    url: https://rnipp.example/check\n    secret: \"rnipp-secret-0123456789abcdef0123456789\"\n    on_outage: ignore\n", "on_outage", "expected refuse"},
		"long timeout": {"    url: https://rnipp.example/check\n    secret: \"rnipp-secret-0123456789abcdef0123456789\"\n    timeout: 1m\n", "timeout", "between 1ms and 10s"},
		"bad duration": {"    url: https://rnipp.example/check\n    secret: \"rnipp-secret-0123456789abcdef0123456789\"\n    timeout: soon\n", "", "not a duration"},
		"neg failures": {"    url: https://rnipp.example/check\n    secret: \"rnipp-secret-0123456789abcdef0123456789\"\n    circuit_failures: -1\n", "circuit_failures", "positive"},
	} {
		_, err := Parse("bad.yaml", withRegistry("  civil_registry:\n"+tc.block))
		if err == nil || !strings.Contains(err.Error(), "bad.yaml") || !strings.Contains(err.Error(), tc.want) ||
			(tc.field != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "broker.civil_registry: "+tc.field))) {
			t.Errorf("%s: want %q on %q, got %v", name, tc.want, tc.field, err)
		}
	}
	_, err := Parse("bad.yaml", []byte(minimal+`
providers:
  listen: "127.0.0.1:0"
  base_url: http://localhost:8100
  civil_registry:
    secret: short
`))
	if err == nil || !strings.Contains(err.Error(), "providers.civil_registry: secret: must be at least 32") {
		t.Errorf("mock registry's short secret: %v", err)
	}
}
