package config

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDevConfigIsValid(t *testing.T) {
	c, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.Redis.Enabled() {
		t.Fatal("dev.yaml must default to the in-memory store")
	}
	if len(c.Providers.IdPs) < 3 || len(c.Broker.Platforms[0].ServiceProviders) < 2 {
		t.Fatal("dev.yaml needs three mock IdPs and two SPs")
	}
	sectors := map[string]bool{}
	for _, sp := range c.Broker.Platforms[0].ServiceProviders {
		sectors[sp.Sector] = true
	}
	if len(sectors) < 2 {
		t.Fatal("dev.yaml's SPs must be in different sectors")
	}
	if p := c.DemoSP.Plus; p == nil || !p.PAR || !p.DPoP {
		t.Fatal("dev.yaml's demo SP must use PAR and DPoP on the \"+\" platform")
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("SESAME_TEST_URL", "redis://127.0.0.1:6379/0")
	c, err := Parse("x.yaml", []byte(strings.Replace(minimal, `url: ""`, `url: "${SESAME_TEST_URL}"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.Redis.URL != "redis://127.0.0.1:6379/0" || !c.Broker.Redis.Enabled() {
		t.Fatalf("redis url = %q", c.Broker.Redis.URL)
	}
	os.Unsetenv("SESAME_NOT_SET")
	_, err = Parse("x.yaml", []byte(strings.Replace(minimal, `url: ""`, `url: "${SESAME_NOT_SET}"`, 1)))
	if err == nil || !strings.Contains(err.Error(), "SESAME_NOT_SET") {
		t.Fatalf("missing variable not reported: %v", err)
	}
	c, err = Parse("x.yaml", []byte(strings.Replace(minimal, `url: ""`, `url: "${SESAME_NOT_SET:-}"`, 1)))
	if err != nil || c.Broker.Redis.Enabled() {
		t.Fatalf("default expansion: %v", err)
	}
}

func TestTripTTL(t *testing.T) {
	c, err := Parse("x.yaml", []byte(strings.Replace(minimal, "      identity_providers: [idp]\n", "      identity_providers: [idp]\n      trip_ttl: 90s\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Broker.Platforms[0].TripTTL.D(15 * time.Minute); got != 90*time.Second {
		t.Fatalf("trip_ttl = %v, want 90s", got)
	}
}

func TestErrorsNameFileEntryField(t *testing.T) {
	bad := strings.NewReplacer(
		`client_secret: "sp-secret-0123456789abcdef0123456789"`, `client_secret: "short"`,
		`redirect_uris: ["https://sp.example/cb"]`, `redirect_uris: ["http://sp.example/cb"]`,
		`acr_values: [eidas1]`, `acr_values: [eidas9]`,
	).Replace(minimal)
	_, err := Parse("bad.yaml", []byte(bad))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("want ErrInvalid, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"bad.yaml",
		"broker.platforms[0] (std).service_providers[0] (sp): client_secret: must be at least 32 characters",
		`redirect_uris: "http://sp.example/cb": "http://sp.example/cb": http is allowed only on localhost`,
		`acr_values: "eidas9"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if _, err := Parse("typo.yaml", []byte(minimal+"\nbrokr: {}\n")); err == nil || !strings.Contains(err.Error(), "brokr") {
		t.Errorf("unknown field not reported: %v", err)
	}
}

const minimal = `
broker:
  redis:
    url: ""
  sub_secret: "0123456789abcdef0123456789abcdef"
  session_keys: ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"]
  identity_providers:
    - id: idp
      issuer: https://idp.example
      client_id: sesame
      client_secret: "idp-secret-0123456789abcdef0123456789"
      acr_values: [eidas1]
  platforms:
    - id: std
      listen: "127.0.0.1:0"
      issuer: https://sesame.example
      identity_providers: [idp]
      service_providers:
        - client_id: sp
          client_secret: "sp-secret-0123456789abcdef0123456789"
          sector: a
          redirect_uris: ["https://sp.example/cb"]
`

func TestMockClientBackchannelLogoutURI(t *testing.T) {
	providers := func(uri string) []byte {
		return []byte(minimal + `
providers:
  listen: "127.0.0.1:0"
  base_url: http://localhost:8100
  idps:
    - id: impots
      acr_values: [eidas1]
      clients:
        - client_id: sesame
          client_secret: "idp-secret-0123456789abcdef0123456789"
          redirect_uris: ["http://localhost:8000/idp/callback"]
          backchannel_logout_uri: "` + uri + `"
`)
	}
	for _, ok := range []string{"", "http://localhost:8000/idp/impots/backchannel-logout", "https://broker.example/idp/impots/backchannel-logout?x=1"} {
		c, err := Parse("ok.yaml", providers(ok))
		if err != nil {
			t.Errorf("%q refused: %v", ok, err)
			continue
		}
		if got := c.Providers.IdPs[0].Clients[0].BackchannelLogoutURI; got != ok {
			t.Errorf("backchannel_logout_uri = %q, want %q", got, ok)
		}
	}
	for uri, want := range map[string]string{
		"/idp/impots/backchannel-logout":                      "expected an absolute https URL",
		"ftp://localhost/x":                                   "expected an absolute https URL",
		"http://broker.example/idp/impots/backchannel-logout": "http is allowed only on localhost",
		"https://u:p@broker.example/x":                        "must not contain user info",
		"https://broker.example/x#frag":                       "must not contain a fragment",
	} {
		_, err := Parse("bad.yaml", providers(uri))
		field := "providers.idps[0] (impots).clients[0] (sesame): backchannel_logout_uri: "
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: want %q after %q, got %v", uri, want, field, err)
		}
	}
}

func TestDevConfigBackchannelLogoutURIs(t *testing.T) {
	c, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Providers.IdPs {
		for _, cl := range m.Clients {
			if want := "http://localhost:8000/idp/" + m.ID + "/backchannel-logout"; cl.ClientID == "sesame" && cl.BackchannelLogoutURI != want {
				t.Errorf("%s: backchannel_logout_uri = %q, want %q", m.ID, cl.BackchannelLogoutURI, want)
			}
		}
	}
}

// withData is minimal with a data-scope catalogue, a data provider on std
// and the SP granted one data scope.
func withData(r *strings.Replacer) []byte {
	y := strings.Replace(minimal, "  identity_providers:\n    - id: idp", `  data_scopes:
    - scope: dgfip_rfr
      provider: dgfip
      claims: [revenu_fiscal_de_reference]
      label_fr: Revenu fiscal de référence (DGFiP)
  identity_providers:
    - id: idp`, 1)
	y = strings.Replace(y, `          redirect_uris: ["https://sp.example/cb"]
`, `          redirect_uris: ["https://sp.example/cb"]
          scopes: [openid, identite_pivot, dgfip_rfr]
      data_providers:
        - id: dgfip
          client_id: dp-dgfip
          client_secret: "dp-secret-0123456789abcdef0123456789"
          scopes: [dgfip_rfr, identite_pivot]
`, 1)
	if r != nil {
		y = r.Replace(y)
	}
	return []byte(y)
}

// check-config explains every mistake in data providers and data scopes.
func TestDataProvidersValidation(t *testing.T) {
	if _, err := Parse("ok.yaml", withData(nil)); err != nil {
		t.Fatalf("a valid data provider refused: %v", err)
	}
	for name, c := range map[string]struct {
		r    *strings.Replacer
		want string
	}{
		"short secret":                {strings.NewReplacer(`"dp-secret-0123456789abcdef0123456789"`, `"short"`), "data_providers[0] (dgfip): client_secret: must be at least 32 characters"},
		"client_id of an SP":          {strings.NewReplacer("client_id: dp-dgfip", "client_id: sp"), `client_id: "sp" is already the client_id of another SP or data provider`},
		"scope not in catalogue":      {strings.NewReplacer("scopes: [dgfip_rfr, identite_pivot]", "scopes: [dgfip_rfr, cnaf_qf]"), `scopes: "cnaf_qf" is neither an identity scope nor in broker.data_scopes`},
		"scope of another provider":   {strings.NewReplacer("      provider: dgfip\n", "      provider: cnaf\n"), `scopes: "dgfip_rfr" is served by "cnaf" in broker.data_scopes, not by this provider`},
		"SP granted an unknown scope": {strings.NewReplacer("scopes: [openid, identite_pivot, dgfip_rfr]", "scopes: [openid, dgfip_rfx]"), `service_providers[0] (sp): scopes: "dgfip_rfx" is neither an identity scope nor in broker.data_scopes`},
		"no French label":             {strings.NewReplacer("      label_fr: Revenu fiscal de référence (DGFiP)\n", ""), "data_scopes[0] (dgfip_rfr): label_fr: is missing"},
		"identity scope as data":      {strings.NewReplacer("    - scope: dgfip_rfr\n", "    - scope: email\n"), `data_scopes[0] (email): scope: "email" is an identity scope`},
		"bad encryption alg": {strings.NewReplacer("          scopes: [dgfip_rfr, identite_pivot]\n", "          scopes: [dgfip_rfr, identite_pivot]\n          introspection_encrypted_response_alg: RSA1_5\n"),
			`introspection_encrypted_response_alg: "RSA1_5": expected ECDH-ES, RSA-OAEP, RSA-OAEP-256`},
		"encryption without keys": {strings.NewReplacer("          scopes: [dgfip_rfr, identite_pivot]\n", "          scopes: [dgfip_rfr, identite_pivot]\n          introspection_encrypted_response_alg: ECDH-ES\n"),
			"jwks_uri: encrypted introspection answers need the provider's keys"},
		"private_key_jwt without keys": {strings.NewReplacer("          scopes: [dgfip_rfr, identite_pivot]\n", "          scopes: [dgfip_rfr, identite_pivot]\n          token_endpoint_auth_methods: [private_key_jwt]\n"),
			"token_endpoint_auth_methods: private_key_jwt needs the provider's keys"},
	} {
		_, err := Parse("dp.yaml", withData(c.r))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func TestDataProviders(t *testing.T) {
	providers := func(dps string) []byte {
		return []byte(minimal + `
providers:
  listen: "127.0.0.1:0"
  base_url: http://localhost:8100
  data_providers:
` + dps)
	}
	const good = `    - id: dgfip
      issuers: [http://localhost:8000, https://sesame.example]
      client_id: dp-dgfip
      client_secret: "dp-secret-0123456789abcdef0123456789"
`
	c, err := Parse("ok.yaml", providers(good))
	if err != nil {
		t.Fatal(err)
	}
	if dp := c.Providers.DataProviders[0]; dp.Name != "dgfip" || len(dp.Issuers) != 2 || dp.ClientID != "dp-dgfip" {
		t.Fatalf("data provider = %+v; want name defaulted to the id", dp)
	}
	entry := "providers.data_providers[0] (dgfip): "
	for name, tc := range map[string]struct{ from, to, want string }{
		"unknown api":        {"id: dgfip", "id: urssaf", `providers.data_providers[0] (urssaf): id: "urssaf": expected one of dgfip, cnaf`},
		"no id":              {"id: dgfip", "id: ''", "providers.data_providers[0] (): id: is missing"},
		"no issuers":         {"issuers: [http://localhost:8000, https://sesame.example]", "issuers: []", entry + "issuers: list at least one"},
		"http issuer":        {"https://sesame.example", "http://sesame.example", entry + `issuers: "http://sesame.example": http is allowed only on localhost`},
		"trailing slash":     {"https://sesame.example", "https://sesame.example/", entry + `issuers: "https://sesame.example/": must have no fragment or trailing slash`},
		"issuer with query":  {"https://sesame.example", `"https://sesame.example?x=1"`, entry + `issuers: "https://sesame.example?x=1": must not contain a query`},
		"issuer twice":       {"https://sesame.example", "http://localhost:8000", entry + `issuers: "http://localhost:8000" is listed twice`},
		"no client_id":       {"client_id: dp-dgfip", "client_id: ''", entry + "client_id: is missing"},
		"short secret":       {`"dp-secret-0123456789abcdef0123456789"`, `"short"`, entry + "client_secret: must be at least 32 characters"},
		"relative issuer":    {"https://sesame.example", "/sesame", entry + `issuers: "/sesame": expected an absolute https URL`},
		"unknown yaml field": {"client_id: dp-dgfip", "client_id: dp-dgfip\n      scopes: [dgfip_rfr]", "providers.data_providers[0] (dgfip): scopes: unknown field"},
	} {
		_, err := Parse("bad.yaml", providers(strings.Replace(good, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", name, tc.want, err)
		}
	}
	second := strings.Replace(good, "client_secret", "name: autre\n      client_secret", 1)
	_, err = Parse("dup.yaml", providers(good+second))
	for _, want := range []string{
		`providers.data_providers[1] (dgfip): id: duplicate id "dgfip"`,
		`providers.data_providers[1] (dgfip): client_id: duplicate client_id "dp-dgfip"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}

func TestDevConfigDataProviders(t *testing.T) {
	c, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"dgfip": "dp-dgfip", "cnaf": "dp-cnaf"}
	if len(c.Providers.DataProviders) != len(want) {
		t.Fatalf("dev.yaml has %d data providers, want dgfip and cnaf", len(c.Providers.DataProviders))
	}
	for _, dp := range c.Providers.DataProviders {
		if want[dp.ID] != dp.ClientID || !strings.HasPrefix(dp.ClientSecret, "dev-only-") {
			t.Errorf("%s: client_id %q, secret %q: want %q and a dev-only- secret", dp.ID, dp.ClientID, dp.ClientSecret, want[dp.ID])
		}
		if strings.Join(dp.Issuers, " ") != "http://localhost:8000 http://localhost:8001" {
			t.Errorf("%s: issuers %v, want both dev platforms", dp.ID, dp.Issuers)
		}
	}
}

// demoSP is a demo_sp section with the two data providers of dev.yaml.
const demoSP = `
demo_sp:
  listen: "127.0.0.1:8200"
  base_url: http://localhost:8200
  issuer: http://localhost:8000
  client_id: demo-sp
  client_secret: secret
  data_providers:
    - id: dgfip
      name: DGFiP
      url: http://localhost:8100/dp/dgfip/
    - id: cnaf
      name: CNAF
      url: https://cnaf.example/dp/cnaf
`

// check-config explains every mistake in the demo SP's data providers: the
// access token goes to their URL.
func TestDemoSPDataProvidersValidation(t *testing.T) {
	c, err := Parse("ok.yaml", []byte(demoSP))
	if err != nil {
		t.Fatalf("valid data providers refused: %v", err)
	}
	if got := c.DemoSP.DataProviders; len(got) != 2 || got[0].URL != "http://localhost:8100/dp/dgfip" || got[1].Name != "CNAF" {
		t.Fatalf("data_providers = %+v (the trailing slash should be gone)", got)
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		"no url":         {"      url: https://cnaf.example/dp/cnaf\n", "", "demo_sp.data_providers[1] (cnaf): url: is missing"},
		"relative url":   {"https://cnaf.example/dp/cnaf", "/dp/cnaf", `url: "/dp/cnaf": expected an absolute https URL`},
		"http elsewhere": {"https://cnaf.example/dp/cnaf", "http://cnaf.example/dp/cnaf", "url: \"http://cnaf.example/dp/cnaf\": http is allowed only on localhost"},
		"query":          {"https://cnaf.example/dp/cnaf", "https://cnaf.example/dp/cnaf?x=1", "must not contain a query"},
		"empty query":    {"https://cnaf.example/dp/cnaf", "https://cnaf.example/dp/cnaf?", "must not contain a query or a fragment"},
		"fragment":       {"https://cnaf.example/dp/cnaf", "https://cnaf.example/dp/cnaf#x", "must not contain a query or a fragment"},
		"user info":      {"https://cnaf.example/dp/cnaf", "https://u:p@cnaf.example/dp/cnaf", "must not contain user info"},
		"no id":          {"    - id: cnaf\n", "    - id: \"\"\n", "demo_sp.data_providers[1] (): id: is missing"},
		"unknown id":     {"    - id: cnaf\n", "    - id: urssaf\n", `id: "urssaf": the demo SP knows the API of dgfip, cnaf only`},
		"twice":          {"    - id: cnaf\n", "    - id: dgfip\n", `demo_sp.data_providers[1] (dgfip): id: "dgfip" is listed twice`},
		"no name":        {"      name: CNAF\n", "", "demo_sp.data_providers[1] (cnaf): name: is missing"},
	} {
		_, err := Parse("dp.yaml", []byte(strings.Replace(demoSP, tc.from, tc.to, 1)))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// dev.yaml's demo SP asks for every data scope on both platforms and calls
// both mock data providers on the providers listener.
func TestDevConfigDemoSPData(t *testing.T) {
	c, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := c.DemoSP
	for _, s := range c.Broker.DataScopes {
		if !slices.Contains(d.Scopes, s.Scope) || !slices.Contains(d.Plus.Scopes, s.Scope) {
			t.Errorf("data scope %s is not asked by the demo SP on both platforms", s.Scope)
		}
	}
	want := map[string]string{"dgfip": c.Providers.BaseURL + "/dp/dgfip", "cnaf": c.Providers.BaseURL + "/dp/cnaf"}
	if len(d.DataProviders) != len(want) {
		t.Fatalf("data_providers = %+v", d.DataProviders)
	}
	for _, dp := range d.DataProviders {
		if want[dp.ID] != dp.URL {
			t.Errorf("data provider %s: url %q, want %q", dp.ID, dp.URL, want[dp.ID])
		}
	}
}

func TestRedisTLSCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := dir + "/not.pem"
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	with := func(url, ca string) string {
		return strings.Replace(minimal, `    url: ""`, "    url: \""+url+"\"\n    tls_ca_file: \""+ca+"\"", 1)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"plain redis": {with("redis://r:6379", notPEM), "redis.tls_ca_file: requires a rediss:// url"},
		"missing":     {with("rediss://r:6379", dir+"/absent.pem"), "redis.tls_ca_file: open"},
		"not PEM":     {with("rediss://r:6379", notPEM), "no PEM certificate"},
	} {
		_, err := Parse(name+".yaml", []byte(tc.yaml))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// tls: true is how addrs (Cluster nodes, Sentinels) say TLS, and lets
// them take a CA file; with a url it is refused, the scheme says it.
func TestRedisTLSAddrs(t *testing.T) {
	dir := t.TempDir()
	notPEM := dir + "/not.pem"
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := func(extra string) string {
		return strings.Replace(minimal, `    url: ""`, "    addrs: [\"a:6379\", \"b:6379\", \"c:6379\"]\n"+extra, 1)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"tls with url":        {strings.Replace(minimal, `    url: ""`, "    url: \"redis://r:6379\"\n    tls: true", 1), "redis.tls: applies to addrs"},
		"CA without tls":      {addrs("    tls_ca_file: \"" + notPEM + "\""), "redis.tls_ca_file: requires a rediss:// url, or addrs with tls: true"},
		"CA with tls, no PEM": {addrs("    tls: true\n    tls_ca_file: \"" + notPEM + "\""), "no PEM certificate"},
	} {
		_, err := Parse(name+".yaml", []byte(tc.yaml))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if _, err := Parse("ok.yaml", []byte(addrs("    tls: true"))); err != nil {
		t.Errorf("addrs with tls: %v", err)
	}
}
