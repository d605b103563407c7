package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

// The example client logs in for real: the broker and the mock IdPs of
// teststack, in process over loopback HTTP, the client on its own
// listener, and the browser's part driven as teststack does.

const exampleSecret = "example-client-secret-0123456789abcdef0123"

// listenApp reserves the client's address, so that its redirect_uri can
// be registered before the stack starts.
func listenApp(t *testing.T) (net.Listener, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// register adds the example as an SP of the stack's platform.
func register(sp config.SP) teststack.Option {
	return func(c *config.Config) {
		pl := &c.Broker.Platforms[0]
		pl.ServiceProviders = append(pl.ServiceProviders, sp)
	}
}

// serve starts the client on ln.
func serve(t *testing.T, ln net.Listener, c Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	app, err := New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(app)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
}

// browse logs in through the client at appURL with idp and identity, and
// returns the client's result page.
func browse(t *testing.T, s *teststack.Stack, appURL, idp, identity string) string {
	t.Helper()
	resp, body := teststack.Get(t, s.Browser, appURL+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/login"`) {
		t.Fatalf("home: %d %s", resp.StatusCode, body)
	}
	resp, body = teststack.Get(t, s.Browser, appURL+"/login")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	authz := resp.Header.Get("Location")
	if !strings.HasPrefix(authz, s.BrokerURL+"/authorize?") {
		t.Fatalf("login sends the browser to %s", authz)
	}
	resp, body = teststack.Get(t, s.Browser, authz)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/authorize/choose" {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	back := s.FinishAt(t, s.IdPLogin(t, s.Choose(t, idp), identity, nil), appURL+"/callback")
	resp, body = teststack.Get(t, s.Browser, back.String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
	return body
}

func TestStandardLogin(t *testing.T) {
	ln, appURL := listenApp(t)
	s := teststack.New(t, register(config.SP{
		ClientID: "go-client", ClientSecret: exampleSecret, Sector: "example",
		RedirectURIs: []string{appURL + "/callback"}, Scopes: []string{"openid", "identite_pivot", "email"},
	}))
	serve(t, ln, Config{Issuer: s.BrokerURL, ClientID: "go-client", ClientSecret: exampleSecret,
		ACR: "eidas1", Scope: "openid identite_pivot email", RedirectURI: appURL + "/callback"})
	page := browse(t, s, appURL, "impots", "angela-dubois")
	for _, want := range []string{`<h1 id="citizen">Angela Claire Louise Dubois</h1>`, `<code id="acr">eidas1</code>`, `&#34;birthplace&#34;: &#34;75107&#34;`} {
		if !strings.Contains(page, want) {
			t.Errorf("result page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "JWE") {
		t.Error("a JWE on the standard platform")
	}

	// A callback replayed, or from another browser, is refused.
	resp, _ := teststack.Get(t, teststack.NewBrowser(), appURL+"/callback?state=x&code=y&iss="+s.BrokerURL)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a foreign callback: %d", resp.StatusCode)
	}
}

// TestPlusLogin runs the client on a "+" platform with the FAPI 2.0
// profile on (PAR, PKCE, DPoP, private_key_jwt), at eidas2 and eidas3.
func TestPlusLogin(t *testing.T) {
	// The client's keys, in the file format of `sesame sp new -plus`.
	var private, public jose.JSONWebKeySet
	for _, k := range []struct{ use, alg, kid string }{{"sig", "ES256", "sig-1"}, {"enc", "ECDH-ES", "enc-1"}} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		jwk := jose.JSONWebKey{Key: key, Use: k.use, Algorithm: k.alg, KeyID: k.kid}
		private.Keys = append(private.Keys, jwk)
		public.Keys = append(public.Keys, jwk.Public())
	}
	keysFile := filepath.Join(t.TempDir(), "go-client.jwks.json")
	raw, _ := json.Marshal(private)
	if err := os.WriteFile(keysFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(public)

	for _, acr := range []string{"eidas2", "eidas3"} {
		t.Run(acr, func(t *testing.T) {
			ln, appURL := listenApp(t)
			s := teststack.New(t, teststack.Plus(string(pub)), teststack.FAPI(), register(config.SP{
				ClientID: "go-client-plus", Sector: "example", RedirectURIs: []string{appURL + "/callback"},
				Scopes: []string{"openid", "identite_pivot", "email"}, TokenEndpointAuthMethods: []string{"private_key_jwt"},
				JWKS: config.InlineJWKS(pub),
			}))
			serve(t, ln, Config{Issuer: s.BrokerURL, ClientID: "go-client-plus", KeysFile: keysFile,
				ACR: acr, Scope: "openid identite_pivot email", RedirectURI: appURL + "/callback"})
			page := browse(t, s, appURL, "laposte", "klaus-mueller")
			for _, want := range []string{`<h1 id="citizen">Klaus Müller</h1>`, `<code id="acr">` + acr + `</code>`,
				`<p class="jwe">id_token: JWE ECDH-ES A256GCM, kid enc-1</p>`, `<p class="jwe">userinfo: JWE ECDH-ES A256GCM, kid enc-1</p>`} {
				if !strings.Contains(page, want) {
					t.Errorf("result page lacks %q:\n%s", want, page)
				}
			}
		})
	}
}

func TestPlusNeedsBothKeys(t *testing.T) {
	s := teststack.New(t)
	keys := filepath.Join(t.TempDir(), "k.json")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, set := range map[string]jose.JSONWebKeySet{
		"none":        {},
		"public only": {Keys: []jose.JSONWebKey{{Key: key.Public(), Use: "sig", Algorithm: "ES256"}, {Key: key.Public(), Use: "enc", Algorithm: "ECDH-ES"}}},
		"no enc":      {Keys: []jose.JSONWebKey{{Key: key, Use: "sig", Algorithm: "ES256"}}},
	} {
		raw, _ := json.Marshal(set)
		if err := os.WriteFile(keys, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(context.Background(), Config{Issuer: s.BrokerURL, ClientID: "x", KeysFile: keys}); err == nil || !strings.Contains(err.Error(), "private sig key and a private enc key") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
