package demosp

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/config"
)

// testKeysFile holds one set of demo SP keys shared by the tests: generating
// an RSA key for every demo SP a test starts would cost seconds. It also
// runs the keys-file path of New in every test.
var testKeysFile string

// TestMain silences the error-page log lines the negative tests provoke on
// purpose (a failing test says itself what went wrong) and writes the
// shared keys file.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "demosp-keys-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	set, err := GenerateKeys()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	raw, _ := json.Marshal(set)
	testKeysFile = filepath.Join(dir, "keys.json")
	if err := os.WriteFile(testKeysFile, raw, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startSP serves a demo SP for issuer on a loopback port; its config is the
// one a real deployment would have, with the callback on its own URL.
func startSP(t *testing.T, issuer string, mutate ...func(*config.DemoSP)) (*App, *httptest.Server) {
	t.Helper()
	var app *App
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(issuer)
	cfg.Listen, cfg.BaseURL = srv.Listener.Addr().String(), srv.URL
	for _, m := range mutate {
		m(cfg)
	}
	var err error
	if app, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return app, srv
}

// testConfig is the demo SP's config as a test registers it at a provider.
func testConfig(issuer string) *config.DemoSP {
	return &config.DemoSP{
		Listen:       "127.0.0.1:8200",
		BaseURL:      "http://127.0.0.1:8200",
		Issuer:       issuer,
		ClientID:     "demo-sp",
		ClientSecret: "secret",
		Scopes:       []string{"openid", "identite_pivot", "email"},
		ACRValues:    "eidas1",
		Keys:         testKeysFile,
	}
}

// withPlus registers the demo SP on a "+" platform at issuer, as
// config/dev.yaml does: client demo-sp-plus, private_key_jwt, eidas3, PAR
// and DPoP.
func withPlus(issuer string) func(*config.DemoSP) {
	return func(c *config.DemoSP) {
		c.Plus = &config.DemoSPPlatform{
			Issuer: issuer, ClientID: "demo-sp-plus", AuthMethod: "private_key_jwt",
			// A secret configured by mistake must still never be sent.
			ClientSecret: "must-not-be-sent-with-private-key-jwt",
			Scopes:       []string{"openid", "identite_pivot", "email"}, ACRValues: "eidas3",
			PAR: true, DPoP: true,
		}
	}
}

// startPlus serves a demo SP registered on the standard platform at std and
// on "+" at the fake plus, which it puts in "+" mode, encrypting with alg
// to the keys the SP publishes.
func startPlus(t *testing.T, std string, plus *fakeOP, alg jose.KeyAlgorithm) (*App, *httptest.Server) {
	t.Helper()
	app, sp := startSP(t, std, withPlus(plus.issuer()))
	plus.plusMode(sp.URL+"/jwks", alg)
	return app, sp
}

// browser is a cookie-keeping client that does not follow redirects, so
// each test sees every hop of the flow.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body), header: resp.Header}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// follow GETs redirects until a page answers, resolving relative locations.
func (b *browser) follow(p page, from string) (page, string) {
	b.t.Helper()
	for i := 0; p.status == http.StatusSeeOther || p.status == http.StatusFound; i++ {
		if i > 10 {
			b.t.Fatal("too many redirects")
		}
		base, _ := url.Parse(from)
		next, err := base.Parse(p.location)
		if err != nil {
			b.t.Fatalf("bad Location %q: %v", p.location, err)
		}
		from = next.String()
		p = b.get(from)
	}
	return p, from
}

// wantError checks that a flow ended on a page with the given status and
// error code, never on a 5xx from a crash.
func wantError(t *testing.T, p page, status int, code string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d; body:\n%s", p.status, status, p.body)
	}
	if !strings.Contains(p.body, code) {
		t.Fatalf("page does not show error code %s:\n%s", code, p.body)
	}
}

func (b *browser) cookie(u, name string) *http.Cookie {
	parsed, _ := url.Parse(u)
	for _, c := range b.c.Jar.Cookies(parsed) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
