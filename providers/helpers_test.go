package providers

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/config"
)

const (
	testClientID  = "sesame-std"
	testSecret    = "test-secret-0123456789abcdef0123456789"
	testRedirect  = "http://rp.test/idp/callback"
	testPostLogin = "http://rp.test/idp/logout/callback"
)

// harness is one running mock server and a browser-like client that does
// not follow redirects, so each hop can be inspected.
type harness struct {
	t       *testing.T
	s       *Server
	srv     *httptest.Server
	browser *http.Client

	mu    sync.Mutex
	clock time.Time // zero: real time
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h, err := startHarness()
	if err != nil {
		t.Fatal(err)
	}
	h.t = t
	t.Cleanup(h.srv.Close)
	return h
}

// shared is one server for the tests that never move the clock: building
// a server generates each IdP's RSA key, which is most of this package's
// test time.
var shared struct {
	once sync.Once
	h    *harness
	err  error
}

// sharedHarness returns a harness on the shared server, for t. Its tests
// may run in parallel; they must not call advance.
func sharedHarness(t *testing.T) *harness {
	t.Helper()
	shared.once.Do(func() { shared.h, shared.err = startHarness() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return &harness{t: t, s: shared.h.s, srv: shared.h.srv, browser: shared.h.browser}
}

// newHarnessWith starts a harness of its own whose config configure
// adjusts first.
func newHarnessWith(t *testing.T, configure func(*config.Providers)) *harness {
	t.Helper()
	h, err := startHarness(configure)
	if err != nil {
		t.Fatal(err)
	}
	h.t = t
	t.Cleanup(h.srv.Close)
	return h
}

func startHarness(configure ...func(*config.Providers)) (*harness, error) {
	h := &harness{}
	var handler http.Handler = http.NotFoundHandler()
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	off := false
	client := func() []config.MockClient {
		return []config.MockClient{{
			ClientID: testClientID, ClientSecret: testSecret,
			RedirectURIs:           []string{testRedirect},
			PostLogoutRedirectURIs: []string{testPostLogin},
		}}
	}
	cfg := &config.Providers{
		BaseURL: h.srv.URL,
		IdPs: []config.MockIdP{
			{ID: "impots", Name: "impots (mock)", ACRValues: []string{"eidas1"}, Clients: client()},
			{ID: "ameli", Name: "ameli (mock)", ACRValues: []string{"eidas1"}, EndSession: &off, Clients: client()},
			{ID: "laposte", Name: "La Poste (mock)", ACRValues: []string{"eidas1", "eidas2", "eidas3"}, Clients: client()},
		},
	}
	for _, c := range configure {
		c(cfg)
	}
	s, err := New(cfg)
	if err != nil {
		h.srv.Close()
		return nil, err
	}
	s.now = h.now
	h.s = s
	handler = s
	h.browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return h, nil
}

func (h *harness) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clock.IsZero() {
		return time.Now()
	}
	return h.clock
}

// advance moves the mock's clock (not go-oidc's) forward.
func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.clock.IsZero() {
		h.clock = time.Now()
	}
	h.clock = h.clock.Add(d)
}

func (h *harness) issuer(idp string) string { return h.srv.URL + "/" + idp }

// oidcClient discovers idp with go-oidc and returns an oauth2 config for
// the registered client.
func (h *harness) oidcClient(idp string) (*oidc.Provider, *oauth2.Config) {
	h.t.Helper()
	p, err := oidc.NewProvider(context.Background(), h.issuer(idp))
	if err != nil {
		h.t.Fatalf("discovery: %v", err)
	}
	return p, &oauth2.Config{
		ClientID: testClientID, ClientSecret: testSecret, Endpoint: p.Endpoint(),
		RedirectURL: testRedirect, Scopes: []string{oidc.ScopeOpenID, "profile", "birth", "email"},
	}
}

func (h *harness) get(u string) (*http.Response, string) {
	h.t.Helper()
	resp, err := h.browser.Get(u)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, readBody(h.t, resp)
}

func (h *harness) postForm(u string, form url.Values) (*http.Response, string) {
	h.t.Helper()
	resp, err := h.browser.PostForm(u, form)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, readBody(h.t, resp)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	txRE         = regexp.MustCompile(`name="tx" value="([^"]+)"`)
	identityRE   = regexp.MustCompile(`name="identity" value="([^"]+)"`)
)

// loginForm is what a person sees on the login page.
type loginForm struct {
	action     string
	tx         string
	identities []string
}

func parseLoginForm(t *testing.T, base, page string) loginForm {
	t.Helper()
	a, tx := formActionRE.FindStringSubmatch(page), txRE.FindStringSubmatch(page)
	if a == nil || tx == nil {
		t.Fatalf("no login form in page:\n%s", page)
	}
	f := loginForm{action: base + html.UnescapeString(a[1]), tx: html.UnescapeString(tx[1])}
	for _, m := range identityRE.FindAllStringSubmatch(page, -1) {
		f.identities = append(f.identities, html.UnescapeString(m[1]))
	}
	return f
}

// login opens authURL, picks identity on the login page and returns the
// redirect to the client.
func (h *harness) login(authURL, identity string) *url.URL {
	h.t.Helper()
	resp, page := h.get(authURL)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("authorize: status %d:\n%s", resp.StatusCode, page)
	}
	f := parseLoginForm(h.t, h.srv.URL, page)
	resp, page = h.postForm(f.action, url.Values{"tx": {f.tx}, "identity": {identity}, "action": {"login"}})
	return redirectTarget(h.t, resp, page)
}

func redirectTarget(t *testing.T, resp *http.Response, page string) *url.URL {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("want 303, got %d:\n%s", resp.StatusCode, page)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// authURL builds an authorization request by hand, for the cases a real
// client library refuses to send.
func (h *harness) authURL(idp string, override url.Values) string {
	q := url.Values{
		"client_id": {testClientID}, "redirect_uri": {testRedirect}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"state-123"}, "nonce": {"nonce-0123456789abcdefghijkl"},
	}
	for k, v := range override {
		if len(v) == 0 || v[0] == "-" {
			delete(q, k)
			continue
		}
		q[k] = v
	}
	return h.issuer(idp) + "/authorize?" + q.Encode()
}

// code runs a login with defaults and returns the code.
func (h *harness) code(idp string, override url.Values) string {
	h.t.Helper()
	u := h.login(h.authURL(idp, override), "angela-dubois")
	c := u.Query().Get("code")
	if c == "" {
		h.t.Fatalf("no code in %s", u)
	}
	return c
}

// tokenRequest posts to idp's token endpoint with client_secret_basic.
func (h *harness) tokenRequest(idp string, form url.Values, id, secret string) (*http.Response, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.issuer(idp)+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, decodeJSON(h.t, resp)
}

func decodeJSON(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	body := readBody(t, resp)
	m := map[string]any{}
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("status %d, not JSON: %q", resp.StatusCode, body)
	}
	return m
}

// TestMain silences the error-page log lines that negative tests provoke
// by the dozen; a failing test says what went wrong.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	code := m.Run()
	if shared.h != nil {
		shared.h.srv.Close()
	}
	os.Exit(code)
}
