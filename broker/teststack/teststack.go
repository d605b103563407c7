// Package teststack starts the broker and the mock IdPs in process, on
// loopback listeners with real HTTP between them, and drives a browser's
// part of a login. It serves the broker's tests and the conformance suite.
// It imports the apps it starts, so it lives beside the broker, not in
// internal/.
package teststack

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/providers"
)

// Stack is a broker platform and the mock IdPs, in process, on loopback
// listeners with real HTTP between them.
type Stack struct {
	BrokerURL, IdPURL string
	Platform          *broker.Platform
	// Broker is the broker the platform belongs to (for reload tests).
	Broker *broker.Broker

	// down are the mock IdPs taken down by SetIdPDown.
	down *sync.Map
	// Browser is a cookie-keeping client that does not follow redirects.
	Browser *http.Client
	Config  *config.Config
}

const (
	SPID       = "sp"
	SPSecret   = "sp-secret-0123456789abcdef0123456789"
	SPRedirect = "https://sp.example/cb"
	IdPSecret  = "idp-secret-0123456789abcdef0123456789"
)

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Option adjusts the stack's config before it starts.
type Option func(*config.Config)

// New starts a stack: SP "sp" (sector-a) on platform "std", and mock IdPs
// impots (eidas1) and laposte (eidas1-3).
func New(t testing.TB, opts ...Option) *Stack {
	t.Helper()
	return NewWrapped(t, nil, opts...)
}

// NewWrapped is New with the broker's store wrapped (nil: as is), to
// count its round trips or give it a network's latency.
func NewWrapped(t testing.TB, wrap func(store.Store) store.Store, opts ...Option) *Stack {
	t.Helper()
	var bopts []broker.Option
	if wrap != nil {
		bopts = append(bopts, broker.WithStoreWrapper(wrap))
	}
	return NewWith(t, bopts, opts...)
}

// NewWith is New with options for the broker itself (a history store, a
// mailer, an audit sink).
func NewWith(t testing.TB, bopts []broker.Option, opts ...Option) *Stack {
	t.Helper()
	return build(t, func(*config.Config) []broker.Option { return bopts }, opts...)
}

// NewWithHistory is New with the history store h wired as in production:
// the broker enforces the preferences saved in h, and a history.Feeder
// (flushing every 10ms, so that tests wait little) writes its audit
// events to h. The feeder's names are the stack's config, once the
// options have shaped it.
func NewWithHistory(t testing.TB, h history.Store, opts ...Option) *Stack {
	t.Helper()
	return build(t, func(c *config.Config) []broker.Option {
		f := history.NewFeeder(h, broker.HistoryNames(c.Broker), history.FeederConfig{FlushEvery: 10 * time.Millisecond}, nil)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = f.Close(ctx)
		})
		return []broker.Option{broker.WithHistory(h), broker.WithAudit(audit.Sinks{f})}
	}, opts...)
}

// build starts a stack whose broker options may depend on the config.
func build(t testing.TB, bopts func(*config.Config) []broker.Option, opts ...Option) *Stack {
	t.Helper()
	lnB, lnI := listen(t), listen(t)
	s := &Stack{BrokerURL: "http://" + lnB.Addr().String(), IdPURL: "http://" + lnI.Addr().String()}
	client := config.MockClient{
		ClientID: "sesame", ClientSecret: IdPSecret,
		RedirectURIs:           []string{s.BrokerURL + "/idp/callback"},
		PostLogoutRedirectURIs: []string{s.BrokerURL + "/idp/logout/callback"},
	}
	cfg := &config.Config{
		File: "test",
		Providers: &config.Providers{Listen: lnI.Addr().String(), BaseURL: s.IdPURL, IdPs: []config.MockIdP{
			{ID: "impots", ACRValues: []string{"eidas1"}, Clients: []config.MockClient{client}},
			{ID: "laposte", ACRValues: []string{"eidas1", "eidas2", "eidas3"}, Clients: []config.MockClient{client}},
			{ID: "msa", ACRValues: []string{"eidas1", "eidas2", "eidas3"}, Clients: []config.MockClient{client}},
		}},
		Broker: &config.Broker{
			SubSecret:   "test-sub-secret-0123456789abcdef0123",
			SessionKeys: []string{base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))},
			IdentityProviders: []config.IdP{
				{ID: "impots", Issuer: s.IdPURL + "/impots", ClientID: "sesame", ClientSecret: IdPSecret, ACRValues: []string{"eidas1"}},
				{ID: "laposte", Issuer: s.IdPURL + "/laposte", ClientID: "sesame", ClientSecret: IdPSecret, ACRValues: []string{"eidas1", "eidas2", "eidas3"}},
				// The broker trusts msa up to eidas2 only, while the mock
				// can assert eidas3: the case of an IdP claiming more
				// than it may.
				{ID: "msa", Issuer: s.IdPURL + "/msa", ClientID: "sesame", ClientSecret: IdPSecret, ACRValues: []string{"eidas1", "eidas2"}},
			},
			Platforms: []config.Platform{{
				ID: "std", Listen: lnB.Addr().String(), Issuer: s.BrokerURL,
				IdentityProviders: []string{"impots", "laposte"},
				ServiceProviders: []config.SP{{
					ClientID: SPID, ClientSecret: SPSecret, Sector: "sector-a",
					RedirectURIs: []string{SPRedirect}, PostLogoutRedirectURIs: []string{"https://sp.example/bye"},
					Scopes: []string{"openid", "identite_pivot", "email"},
				}},
			}},
		},
	}
	for _, o := range opts {
		o(cfg)
	}
	s.Config = cfg
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	idps, err := providers.New(cfg.Providers)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(cfg.Broker, slog.New(slog.NewTextHandler(io.Discard, nil)), bopts(cfg)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	s.Broker, s.Platform = b, b.Platforms[0]
	s.down = &sync.Map{}
	// A mock IdP taken down drops its connections unanswered, as a dead
	// host behind a load balancer does.
	idpsOrDown := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if _, down := s.down.Load(id); down {
			panic(http.ErrAbortHandler)
		}
		idps.ServeHTTP(w, r)
	})
	for ln, h := range map[net.Listener]http.Handler{lnB: s.Platform, lnI: idpsOrDown} {
		srv := httptest.NewUnstartedServer(h)
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		t.Cleanup(srv.Close)
	}
	s.Browser = NewBrowser()
	return s
}

// Plus turns the platform into a "+" platform (eidas2 and eidas3, IdPs
// laposte and msa) whose SP registers the given public keys and
// authenticates with private_key_jwt.
func Plus(spKeys string) Option {
	return func(c *config.Config) {
		pl := &c.Broker.Platforms[0]
		pl.ID, pl.Level = "plus", "plus"
		pl.ACRValues, pl.DefaultACR, pl.SSOLevels = []string{"eidas2", "eidas3"}, "eidas3", []string{"eidas2"}
		pl.IdentityProviders = []string{"laposte", "msa"}
		sp := &pl.ServiceProviders[0]
		sp.JWKS = config.InlineJWKS(spKeys)
		sp.ClientSecret = ""
		sp.TokenEndpointAuthMethods = []string{"private_key_jwt"}
		sp.Claims = []string{"amr"}
		// The "+" rules other than FAPI 2.0's are tested with plain
		// authorization requests; FAPI() turns PAR, PKCE and DPoP back
		// on, as a "+" platform has them by default.
		off := false
		pl.FAPI = config.FAPI{RequirePAR: &off, RequirePKCE: &off, RequireDPoP: &off}
	}
}

// FAPI gives a Plus platform its default FAPI 2.0 profile: PAR, PKCE and
// DPoP required, private_key_jwt only.
func FAPI() Option {
	return func(c *config.Config) { c.Broker.Platforms[0].FAPI = config.FAPI{} }
}

// RedisURL makes the broker keep its sessions in the Redis at u.
func RedisURL(u string) Option {
	return func(c *config.Config) { c.Broker.Redis.URL = u }
}

// RedisAddrs makes the broker keep its sessions in the Redis at addrs:
// several addresses are a Cluster.
func RedisAddrs(addrs ...string) Option {
	return func(c *config.Config) {
		c.Broker.Redis.URL, c.Broker.Redis.Addrs = "", addrs
	}
}

// RedisSentinel makes the broker find its Redis master through the
// sentinels at addrs.
func RedisSentinel(addrs []string, master string) Option {
	return func(c *config.Config) {
		c.Broker.Redis.URL, c.Broker.Redis.Addrs, c.Broker.Redis.MasterName = "", addrs, master
	}
}

// RedisTLS makes the broker use the Redis at a rediss:// URL, trusting the
// CA in caFile, as the ACL user name with password.
func RedisTLS(u, caFile, user, password string) Option {
	return func(c *config.Config) {
		r := &c.Broker.Redis
		r.URL, r.TLSCAFile, r.Username, r.Password = u, caFile, user, password
	}
}

// RedisClusterTLS makes the broker use the TLS Cluster at addrs, trusting
// the CA in caFile, as the ACL user name with password.
func RedisClusterTLS(addrs []string, caFile, user, password string) Option {
	return func(c *config.Config) {
		r := &c.Broker.Redis
		r.URL, r.Addrs, r.TLS, r.TLSCAFile, r.Username, r.Password = "", addrs, true, caFile, user, password
	}
}

// IdPTimeout sets the broker's timeout for its calls to one IdP.
func IdPTimeout(id string, d time.Duration) Option {
	return func(c *config.Config) {
		for i := range c.Broker.IdentityProviders {
			if c.Broker.IdentityProviders[i].ID == id {
				c.Broker.IdentityProviders[i].Timeout = config.Duration(d)
				return
			}
		}
		panic("teststack: IdPTimeout: no IdP " + id)
	}
}

// The citizen space's registration on the standard platform (see
// CitizenSpace).
const (
	SpaceID     = "espace"
	SpaceSecret = "espace-secret-0123456789abcdef0123456789"
)

// CitizenSpace registers the citizen space served at baseURL on the
// standard platform, as an SP with citizen_space: true (its tokens carry
// sesame_account and idp_id), its callback and its logout return, and
// makes baseURL the broker's citizen_space_url (the link of the blocked
// account page and of the e-mails).
func CitizenSpace(baseURL string) Option {
	return func(c *config.Config) {
		pl := &c.Broker.Platforms[0]
		pl.ServiceProviders = append(pl.ServiceProviders, config.SP{
			ClientID: SpaceID, ClientSecret: SpaceSecret, Name: "Mon espace Sésame", Sector: "sesame",
			RedirectURIs: []string{baseURL + "/callback"}, PostLogoutRedirectURIs: []string{baseURL + "/"},
			Scopes: []string{"openid", "given_name", "email"}, CitizenSpace: true,
		})
		c.Broker.CitizenSpaceURL = baseURL
	}
}

// SetIdPDown takes the mock IdP id down (every request to it is dropped
// unanswered) or brings it back.
func (s *Stack) SetIdPDown(id string, down bool) {
	if down {
		s.down.Store(id, true)
	} else {
		s.down.Delete(id)
	}
}

// SessionCookie is the browser's broker session cookie (not the pending
// request's).
func (s *Stack) SessionCookie(t testing.TB) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(s.BrokerURL)
	name := s.Config.Broker.Platforms[0].Cookie
	for _, c := range s.Browser.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie in the browser", name)
	return nil
}

// NewBrowser is a fresh browser: cookie jar, redirects not followed.
func NewBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// AuthParams is a valid authorization request for the test SP.
func AuthParams() url.Values {
	return url.Values{
		"client_id": {SPID}, "redirect_uri": {SPRedirect}, "response_type": {"code"},
		"scope": {"openid identite_pivot"}, "state": {"state-1"}, "nonce": {"nonce-0123456789012345678"},
		"acr_values": {"eidas1"},
	}
}

// Get fetches u and returns the response and its body.
func Get(t testing.TB, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// Post submits a form and returns the response and its body.
func Post(t testing.TB, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// Abs resolves loc against base.
func Abs(base, loc string) string {
	b, _ := url.Parse(base)
	l, _ := url.Parse(loc)
	return b.ResolveReference(l).String()
}

var (
	CSRFRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	TxRE   = regexp.MustCompile(`name="tx" value="([^"]+)"`)
)

// Field extracts the first group of re from a page.
func Field(t testing.TB, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, body)
	}
	return m[1]
}

// Login runs the browser part of a login and returns the final redirect to
// the SP.
func (s *Stack) Login(t testing.TB, params url.Values, idp, identityID string) *url.URL {
	t.Helper()
	return s.LoginScenario(t, params, idp, identityID, nil)
}

// LoginScenario is Login with mock-IdP scenario fields (scenario_acr,
// scenario_amr, …; see docs/scenarios.md) posted beside the identity.
func (s *Stack) LoginScenario(t testing.TB, params url.Values, idp, identityID string, scenario url.Values) *url.URL {
	t.Helper()
	resp, _ := Get(t, s.Browser, s.BrokerURL+"/authorize?"+params.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != "/authorize/choose" {
		return s.Finish(t, Abs(s.BrokerURL, loc))
	}
	return s.Finish(t, s.IdPLogin(t, s.Choose(t, idp), identityID, scenario))
}

// Choose shows the chooser of the request under way, picks idp and returns
// the broker's redirect to that IdP's authorization endpoint.
func (s *Stack) Choose(t testing.TB, idp string) string {
	t.Helper()
	_, page := Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
	resp, _ := Post(t, s.Browser, s.BrokerURL+"/authorize/choose", url.Values{"csrf": {Field(t, CSRFRE, page)}, "idp": {idp}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("choose: %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// IdPLogin opens the mock IdP's login page at idpAuth, posts it for
// identityID with the scenario fields (nil: behave correctly) and returns
// the IdP's redirect back to the broker.
func (s *Stack) IdPLogin(t testing.TB, idpAuth, identityID string, scenario url.Values) string {
	t.Helper()
	_, page := Get(t, s.Browser, idpAuth)
	form := url.Values{"tx": {Field(t, TxRE, page)}, "identity": {identityID}, "action": {"login"}}
	for k, v := range scenario {
		form[k] = v
	}
	resp, body := Post(t, s.Browser, strings.Split(idpAuth, "?")[0], form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("idp login: %d\n%s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// WithBrowser returns a copy of the stack driven by a fresh browser, so
// that several citizens can use one stack, in parallel if need be.
func (s *Stack) WithBrowser() *Stack {
	c := *s
	c.Browser = NewBrowser()
	return &c
}

// Finish follows the broker's pages from the callback or SSO to the SP.
func (s *Stack) Finish(t testing.TB, next string) *url.URL {
	t.Helper()
	return s.FinishAt(t, next, "https://sp.example/")
}

// FinishAt is Finish for an SP whose redirect URIs start with prefix
// (the citizen space, on its own loopback port).
func (s *Stack) FinishAt(t testing.TB, next, prefix string) *url.URL {
	t.Helper()
	for range 5 {
		u, _ := url.Parse(next)
		if strings.HasPrefix(next, prefix) {
			return u
		}
		var resp *http.Response
		var body string
		if u.Path == "/authorize/consent" {
			_, page := Get(t, s.Browser, next)
			resp, body = Post(t, s.Browser, next, url.Values{"csrf": {Field(t, CSRFRE, page)}})
		} else {
			resp, body = Get(t, s.Browser, next)
		}
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", u.Path, resp.StatusCode, body)
		}
		next = Abs(s.BrokerURL, resp.Header.Get("Location"))
	}
	t.Fatal("too many hops")
	return nil
}

// Token calls the token endpoint, with Basic auth for SPID when basic.
func (s *Stack) Token(t testing.TB, form url.Values, basic bool) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(SPID, SPSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token Cache-Control = %q", cc)
	}
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// UserinfoStatus calls userinfo with an Authorization header and returns
// the status, checking that a 401 names invalid_token.
func (s *Stack) UserinfoStatus(t testing.TB, header string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.BrokerURL+"/userinfo", nil)
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("401 without WWW-Authenticate invalid_token: %q", resp.Header.Get("WWW-Authenticate"))
	}
	return resp.StatusCode
}

// RegistrySecret is the mock civil registry's bearer secret in the stack.
const RegistrySecret = "rnipp-secret-0123456789abcdef0123456789"

// CivilRegistry makes the mock providers serve the civil registry (at
// IdPURL/rnipp/) and the broker check every login there, with the outage
// policy onOutage ("refuse" or "flag") and the timeout (0: 2s). A later
// option may point the broker elsewhere (Config.Broker.CivilRegistry).
func CivilRegistry(onOutage string, timeout time.Duration) Option {
	return func(c *config.Config) {
		c.Providers.CivilRegistry = &config.MockCivilRegistry{Secret: RegistrySecret}
		c.Broker.CivilRegistry = &config.CivilRegistry{URL: c.Providers.BaseURL + "/rnipp/check", Secret: RegistrySecret,
			Timeout: config.Duration(timeout), OnOutage: onOutage}
	}
}
