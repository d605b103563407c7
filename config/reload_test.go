package config

import (
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// A config written back to YAML loads again as the same settings: the
// reload compares a file with what runs, and must see no change where
// there is none.
func TestRestartNeededNoChange(t *testing.T) {
	cur, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.Marshal(cur)
	if err != nil {
		t.Fatal(err)
	}
	next, err := Parse("dev.yaml", raw)
	if err != nil {
		t.Fatalf("dev.yaml written back does not load: %v", err)
	}
	if got := RestartNeeded(cur, next); len(got) != 0 {
		t.Fatalf("no change, yet RestartNeeded says %v", got)
	}
}

// Registry changes need no restart; listeners, the store, keys, platform
// settings, the set of platforms and other sections do, each named by
// its path and never by its value.
func TestRestartNeeded(t *testing.T) {
	cur, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	next, _ := Load("dev.yaml")
	pl := &next.Broker.Platforms[0]
	pl.ServiceProviders = append(pl.ServiceProviders, pl.ServiceProviders[0])
	pl.ServiceProviders[0].RedirectURIs = []string{"https://elsewhere.example/cb"}
	pl.IdentityProviders = pl.IdentityProviders[:1]
	next.Broker.IdentityProviders[0].Name = "Renamed"
	next.Broker.DataScopes = nil
	if got := RestartNeeded(cur, next); len(got) != 0 {
		t.Fatalf("registry changes reported as needing a restart: %v", got)
	}

	pl.Listen = "127.0.0.1:1"
	pl.SigningKeys = []string{"/keys.json"}
	next.Broker.Redis.URL = "redis://secret-pw@127.0.0.1:6379"
	next.Broker.SubSecret = "another-secret-0123456789abcdef0123456789"
	next.Broker.Platforms = append(next.Broker.Platforms, Platform{ID: "new"})
	next.Log.Format = "json"
	want := []string{
		"broker.redis", "broker.sub_secret",
		"broker.platforms[" + pl.ID + "].listen", "broker.platforms[" + pl.ID + "].signing_keys",
		"broker.platforms (added: new)", "log",
	}
	got := RestartNeeded(cur, next)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("RestartNeeded = %v, missing %q", got, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("RestartNeeded names %q, which did not change", g)
		}
	}
}

// WithRegistries takes the registries of next and every other setting of
// cur, leaving cur as it was.
func TestWithRegistries(t *testing.T) {
	cur, _ := Load("dev.yaml")
	next, _ := Load("dev.yaml")
	npl := &next.Broker.Platforms[0]
	npl.Listen = "127.0.0.1:1"
	npl.ServiceProviders = npl.ServiceProviders[:1]
	next.Broker.IdentityProviders[0].Name = "Renamed"
	next.Broker.Redis.URL = "redis://127.0.0.1:6379"

	before := len(cur.Broker.Platforms[0].ServiceProviders)
	got := cur.Broker.WithRegistries(next.Broker)
	if len(got.Platforms[0].ServiceProviders) != 1 || got.IdentityProviders[0].Name != "Renamed" {
		t.Fatal("the registries of next were not taken")
	}
	if got.Platforms[0].Listen != cur.Broker.Platforms[0].Listen || got.Redis.URL != "" {
		t.Fatal("a setting that needs a restart was taken from next")
	}
	if len(cur.Broker.Platforms[0].ServiceProviders) != before || cur.Broker.IdentityProviders[0].Name == "Renamed" {
		t.Fatal("cur was modified")
	}
}
