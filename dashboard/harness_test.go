package dashboard

import (
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/mail"
)

// TestMain silences the error-page log lines the negative tests provoke
// on purpose: a failing test says itself what went wrong.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// The people of the tests: test identities of the mock IdPs
// (providers/identities.csv).
const (
	angela = "angela-dubois"
	jean   = "jean-pierre-martin-dupont"
)

// Names as the broker and the space show them.
const (
	spName      = "Démarche test"
	impotsName  = "Impots.gouv"
	laposteName = "La Poste"
	msaName     = "MSA"
)

const (
	dpClientID = "dp-dgfip"
	dpSecret   = "dp-dgfip-secret-0123456789abcdef0123456"
)

// errDown is a store that is down.
var errDown = errors.New("database is locked")

// outbox is a mail.Mailer that keeps what it is given.
type outbox struct {
	mu   sync.Mutex
	msgs []mail.Message
}

func (o *outbox) Enqueue(m mail.Message) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, m)
	return true
}

func (o *outbox) sent() []mail.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.msgs)
}

// env is a real broker platform and mock IdPs (teststack) feeding a
// history store, and the citizen space in front of that store, each on
// its own loopback port, with real HTTP between them.
type env struct {
	stack *teststack.Stack
	store *testStore
	mails *outbox
	app   *App
	// URL is the space's base URL.
	URL string
}

type envConfig struct {
	stack []teststack.Option
	space []Option
	// noMailer builds the space with a nil mailer.
	noMailer bool
}

// names gives the SP and IdPs names, data scopes and a data provider
// (dgfip, serving dgfip_rfr) on the standard platform.
func names(c *config.Config) {
	for i, n := range map[string]string{"impots": impotsName, "laposte": laposteName, "msa": msaName} {
		for j := range c.Broker.IdentityProviders {
			if c.Broker.IdentityProviders[j].ID == i {
				c.Broker.IdentityProviders[j].Name = n
			}
		}
	}
	c.Broker.DataScopes = []config.DataScope{
		{Scope: "dgfip_rfr", Provider: "dgfip", Claims: []string{"revenu_fiscal_de_reference"}, LabelFR: "Revenu fiscal de référence", LabelEN: "Reference tax income"},
	}
	pl := &c.Broker.Platforms[0]
	pl.ServiceProviders[0].Name = spName
	pl.ServiceProviders[0].Scopes = append(pl.ServiceProviders[0].Scopes, "dgfip_rfr")
	pl.DataProviders = append(pl.DataProviders, config.DataProvider{ID: "dgfip", Name: "DGFiP", ClientID: dpClientID,
		ClientSecret: dpSecret, Scopes: []string{"dgfip_rfr"}})
}

// withMSA adds msa to the standard platform: an account the space's
// configuration does not list, as one added after the citizen saved.
func withMSA(c *config.Config) {
	pl := &c.Broker.Platforms[0]
	pl.IdentityProviders = append(pl.IdentityProviders, "msa")
}

var cookieKey = base64.StdEncoding.EncodeToString([]byte("dashboard-test-cookie-key-012345"))

func newEnv(t *testing.T, ec envConfig) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: newTestStore(t), mails: &outbox{}, URL: "http://" + ln.Addr().String()}
	opts := append([]teststack.Option{teststack.CitizenSpace(e.URL), names}, ec.stack...)
	e.stack = teststack.NewWithHistory(t, e.store, opts...)
	cfg := &config.Dashboard{
		Listen: ln.Addr().String(), BaseURL: e.URL, Issuer: e.stack.BrokerURL,
		ClientID: teststack.SpaceID, ClientSecret: teststack.SpaceSecret,
		Scopes: []string{"openid", "given_name", "email"}, CookieKey: cookieKey, Theme: "dsfr",
		IdentityProviders: []config.DashboardIdP{{ID: "impots", Name: impotsName}, {ID: "laposte", Name: laposteName}},
		DataScopes:        e.stack.Config.Broker.DataScopes,
		PageSize:          20,
	}
	var mailer mail.Mailer = e.mails
	if ec.noMailer {
		mailer = nil
	}
	e.app, err = New(cfg, e.store, mailer, slog.New(slog.NewTextHandler(io.Discard, nil)), ec.space...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(e.app)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

// citizen is one browser: its own cookies, at the broker, the IdPs and
// the space.
type citizen struct {
	e *env
	s *teststack.Stack
}

func (e *env) citizen() *citizen { return &citizen{e: e, s: e.stack.WithBrowser()} }

func (c *citizen) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	return teststack.Get(t, c.s.Browser, c.e.URL+path)
}

func (c *citizen) post(t *testing.T, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	return teststack.Post(t, c.s.Browser, c.e.URL+path, form)
}

// getWith is get with extra request headers.
func (c *citizen) getWith(t *testing.T, path string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.e.URL+path, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.s.Browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// startLogin asks the space for a login and returns the broker's
// authorization URL it redirects to.
func (c *citizen) startLogin(t *testing.T, path string) *url.URL {
	t.Helper()
	resp, body := c.get(t, path)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(u.String(), c.e.stack.BrokerURL+"/authorize?") {
		t.Fatalf("login goes to %q, not the broker's authorize", resp.Header.Get("Location"))
	}
	return u
}

// atBroker runs the browser's part of a login at the broker from its
// authorization URL: the chooser, the IdP's page, the information page;
// it returns the redirect to the space's callback.
func (c *citizen) atBroker(t *testing.T, authURL, idp, identity string) string {
	t.Helper()
	resp, body := teststack.Get(t, c.s.Browser, authURL)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/authorize/choose" {
		t.Fatalf("authorize: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	back := c.s.IdPLogin(t, c.s.Choose(t, idp), identity, nil)
	return c.s.FinishAt(t, teststack.Abs(c.s.BrokerURL, back), c.e.URL+"/").String()
}

// login logs in to the space through idp as identity, and returns the
// page the callback sends to. It waits for the history row of that login
// (the space is an SP like any), so that tests count rows for sure.
func (c *citizen) login(t *testing.T, idp, identity string) string {
	t.Helper()
	space := func(r history.Entry) bool { return r.Kind == history.KindConnection && r.SP == teststack.SpaceID }
	before := len(c.e.waitRows(t, 0, space))
	cb := c.atBroker(t, c.startLogin(t, "/login").String(), idp, identity)
	resp, body := teststack.Get(t, c.s.Browser, cb)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d\n%s", resp.StatusCode, body)
	}
	c.e.waitRows(t, before+1, space)
	return resp.Header.Get("Location")
}

// csrf is the first csrf field of a page.
func csrf(t *testing.T, page string) string {
	t.Helper()
	return teststack.Field(t, teststack.CSRFRE, page)
}

// loginAtSP logs in at the test SP with a fresh browser (another person's
// computer, or an attacker's: no session at the broker), with the
// identity and data scopes, and returns the SP's callback URL.
func (e *env) loginAtSP(t *testing.T, idp, identity string) *url.URL {
	t.Helper()
	p := teststack.AuthParams()
	p.Set("scope", "openid identite_pivot email dgfip_rfr")
	return e.stack.WithBrowser().Login(t, p, idp, identity)
}

// refusedAtSP is loginAtSP through an account the citizen blocked: it
// returns the broker's answer to the IdP's callback.
func (e *env) refusedAtSP(t *testing.T, idp, identity string) (*http.Response, string) {
	t.Helper()
	s := e.stack.WithBrowser()
	resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	back := s.IdPLogin(t, s.Choose(t, idp), identity, nil)
	return teststack.Get(t, s.Browser, teststack.Abs(s.BrokerURL, back))
}

// waitRows waits for the feeder to write rows matching ok (it flushes
// every 10ms), and returns them.
func (e *env) waitRows(t *testing.T, n int, ok func(history.Entry) bool) []history.Entry {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		var got []history.Entry
		for _, r := range e.store.entries(t) {
			if ok(r) {
				got = append(got, r)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d history rows after 3s, want %d; rows: %+v", len(got), n, e.store.entries(t))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kind matches the rows of a kind at SP "sp".
func kind(k string) func(history.Entry) bool {
	return func(e history.Entry) bool { return e.Kind == k && e.SP == teststack.SPID }
}

// account is the account id of a person: what the space's session holds.
func (c *citizen) account(t *testing.T) string {
	t.Helper()
	u, _ := url.Parse(c.e.URL)
	for _, ck := range c.s.Browser.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			s, ok := c.e.app.currentSession(&http.Request{Header: http.Header{"Cookie": {ck.String()}}})
			if !ok {
				t.Fatal("session cookie does not open")
			}
			return s.Account
		}
	}
	t.Fatal("no session cookie")
	return ""
}

var (
	h1RE      = regexp.MustCompile(`<h1[ >]`)
	errCodeRE = regexp.MustCompile(`<code>(S\d{6})</code>`)
)

// pageCode is the error code an error page shows.
func pageCode(t *testing.T, page string) string {
	t.Helper()
	m := errCodeRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no error code in page:\n%s", page)
	}
	return m[1]
}
