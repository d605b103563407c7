package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// agent is a browser without a renderer: it keeps cookies (one jar for all
// of localhost, like a browser ignoring ports) but never follows a redirect
// on its own, so every hop of a flow is asserted.
type agent struct {
	t   *testing.T
	jar *cookiejar.Jar
	c   *http.Client
}

func newAgent(t *testing.T) *agent {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &agent{t: t, jar: jar, c: &http.Client{
		Jar:           jar,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is one HTTP answer.
type page struct {
	method string
	url    *url.URL
	status int
	header http.Header
	body   string
}

func (a *agent) do(req *http.Request) *page {
	a.t.Helper()
	req.Header.Set("Accept-Language", "fr-FR,fr;q=0.9")
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return &page{method: req.Method, url: req.URL, status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (a *agent) get(u string) *page {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		a.t.Fatalf("GET %s: %v", u, err)
	}
	return a.do(req)
}

func (a *agent) post(u string, form url.Values) *page {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		a.t.Fatalf("POST %s: %v", u, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.do(req)
}

// cookie returns the value of a cookie the jar would send to u.
func (a *agent) cookie(u, name string) string {
	pu, _ := url.Parse(u)
	for _, c := range a.jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setCookie plants a cookie for u, as a stolen or kept cookie would be.
func (a *agent) setCookie(u, name, value string) {
	pu, _ := url.Parse(u)
	a.jar.SetCookies(pu, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

func (p *page) String() string {
	return p.method + " " + p.url.String() + " → " + http.StatusText(p.status)
}

// redirect asserts a 303 to exactly base (scheme, host and path; the query
// is free) and returns the resolved target.
func (p *page) redirect(t *testing.T, base string) *url.URL {
	t.Helper()
	if p.status != http.StatusSeeOther {
		t.Fatalf("%s: status %d, want 303 to %s\nbody: %s", p, p.status, base, excerpt(p.body))
	}
	loc := p.header.Get("Location")
	u, err := p.url.Parse(loc)
	if err != nil {
		t.Fatalf("%s: bad Location %q: %v", p, loc, err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != base {
		t.Fatalf("%s: redirects to %s, want %s (Location %q)", p, got, base, loc)
	}
	return u
}

// ok asserts a 200 HTML page.
func (p *page) ok(t *testing.T) *page {
	t.Helper()
	if p.status != http.StatusOK {
		t.Fatalf("%s: status %d, want 200\nbody: %s", p, p.status, excerpt(p.body))
	}
	return p
}

// errorPage asserts an error page: the status, no Location header, and the
// error code shown to the person.
func (p *page) errorPage(t *testing.T, status int, code string) {
	t.Helper()
	if p.status != status {
		t.Fatalf("%s: status %d, want %d (error %s)\nLocation: %q\nbody: %s", p, p.status, status, code, p.header.Get("Location"), excerpt(p.body))
	}
	if loc := p.header.Get("Location"); loc != "" {
		t.Errorf("%s: error page carries a Location header %q", p, loc)
	}
	if !strings.Contains(p.body, "<code>"+code+"</code>") {
		t.Errorf("%s: page does not show error code %s\nbody: %s", p, code, excerpt(p.body))
	}
	if id := p.correlationID(); id == "" || !strings.Contains(p.body, "<code>"+id+"</code>") {
		t.Errorf("%s: page does not show its correlation id %q", p, id)
	}
}

// correlationID is the id the answer carries in X-Correlation-Id.
func (p *page) correlationID() string { return p.header.Get("X-Correlation-Id") }

// text is the page's body with HTML entities decoded, for matching names
// such as d'Harcourt that the templates escape.
func (p *page) text() string { return html.UnescapeString(p.body) }

func excerpt(s string) string {
	if i := strings.Index(s, "<main"); i >= 0 {
		s = s[i:]
	}
	if len(s) > 1500 {
		s = s[:1500] + "…"
	}
	return s
}

var inputRE = regexp.MustCompile(`<input\b[^>]*>`)

// hidden returns the value of the input named name on the page.
func (p *page) hidden(t *testing.T, name string) string {
	t.Helper()
	for _, in := range inputRE.FindAllString(p.body, -1) {
		if strings.Contains(in, ` name="`+name+`"`) {
			if m := regexp.MustCompile(`\bvalue="([^"]*)"`).FindStringSubmatch(in); m != nil {
				return html.UnescapeString(m[1])
			}
		}
	}
	t.Fatalf("%s: no input named %q\nbody: %s", p, name, excerpt(p.body))
	return ""
}

// formAction returns the resolved action of the page's first POST form.
func (p *page) formAction(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("%s: no POST form\nbody: %s", p, excerpt(p.body))
	}
	u, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatalf("%s: form action %q: %v", p, m[1], err)
	}
	return u.String()
}

// byID returns the text inside the element with this id (no nested tags).
func (p *page) byID(t *testing.T, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("%s: no element #%s\nbody: %s", p, id, excerpt(p.body))
	}
	return strings.TrimSpace(html.UnescapeString(m[1]))
}

func (p *page) has(id string) bool { return strings.Contains(p.body, `id="`+id+`"`) }

// wantQuery asserts that the parameters of u hold the wanted values exactly.
func wantQuery(t *testing.T, what string, u *url.URL, want map[string]string) {
	t.Helper()
	q := u.Query()
	for k, v := range want {
		if got := q[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s: %s = %q, want %q (%s)", what, k, got, v, u)
		}
	}
}

// nonEmpty asserts that each parameter is present once and not empty, and
// returns them.
func nonEmpty(t *testing.T, what string, u *url.URL, names ...string) map[string]string {
	t.Helper()
	q := u.Query()
	out := map[string]string{}
	for _, n := range names {
		if v := q[n]; len(v) != 1 || v[0] == "" {
			t.Fatalf("%s: parameter %s = %q, want one non-empty value (%s)", what, n, v, u)
		}
		out[n] = q.Get(n)
	}
	return out
}

func randomString(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// brokerLogin is what one trip through the broker saw, hop by hop.
type brokerLogin struct {
	// IdPAuth is the broker's authorization request to the IdP.
	IdPAuth *url.URL
	// Callback is the IdP's redirect back to the broker.
	Callback *url.URL
	// Final is the broker's redirect to the SP: code, state and iss.
	Final *url.URL
}

// loginHooks let a test look at the stack between steps.
type loginHooks struct {
	// afterCallback runs once the broker accepted the IdP's callback; it
	// gets the broker's request to the IdP and the IdP's callback.
	afterCallback func(idpAuth, callback *url.URL)
}

// toChooser follows an authorization request to the chooser and returns
// the chooser page.
func (a *agent) toChooser(t *testing.T, st *stack, authURL string) *page {
	t.Helper()
	a.get(authURL).redirect(t, st.Broker+"/authorize/choose")
	ch := a.get(st.Broker + "/authorize/choose").ok(t)
	for _, id := range []string{"idp-impots", "idp-ameli", "idp-laposte"} {
		if !ch.has(id) {
			t.Fatalf("chooser has no button #%s\nbody: %s", id, excerpt(ch.body))
		}
	}
	return ch
}

// chooseIdP posts the chooser's form for one IdP and returns the IdP's
// login page and the authorization request the broker sent.
func (a *agent) chooseIdP(t *testing.T, st *stack, chooser *page, idp string) (*page, *url.URL) {
	t.Helper()
	to := a.post(st.Broker+"/authorize/choose", url.Values{"csrf": {chooser.hidden(t, "csrf")}, "idp": {idp}}).
		redirect(t, st.IdPIssuer(idp)+"/authorize")
	wantQuery(t, "broker → IdP", to, map[string]string{
		"client_id": brokerClientAtIdPs, "redirect_uri": st.Broker + "/idp/callback",
		"response_type": "code", "code_challenge_method": "S256", "prompt": "login", "acr_values": "eidas1",
	})
	nonEmpty(t, "broker → IdP", to, "state", "nonce", "code_challenge")
	if n := len(to.Query().Get("code_challenge")); n != 43 {
		t.Errorf("broker → IdP: code_challenge has %d characters, want 43 (S256)", n)
	}
	return a.get(to.String()).ok(t), to
}

// idpLogin picks a test identity on the mock IdP's page and returns the
// IdP's redirect to the broker's callback, checked against the request.
func (a *agent) idpLogin(t *testing.T, st *stack, idp string, login *page, idpAuth *url.URL, identityID string) *url.URL {
	t.Helper()
	if !login.has("identity-" + identityID) {
		t.Fatalf("login page of %s does not list identity %s", idp, identityID)
	}
	cb := a.post(login.formAction(t), url.Values{
		"tx": {login.hidden(t, "tx")}, "identity": {identityID}, "action": {"login"},
	}).redirect(t, st.Broker+"/idp/callback")
	wantQuery(t, "IdP → broker", cb, map[string]string{"state": idpAuth.Query().Get("state"), "iss": st.IdPIssuer(idp)})
	nonEmpty(t, "IdP → broker", cb, "code")
	return cb
}

// brokerCallback delivers the IdP's callback and checks the broker moved to
// the information page with a rotated session cookie.
func (a *agent) brokerCallback(t *testing.T, st *stack, cb *url.URL) {
	t.Helper()
	before := a.cookie(st.Broker, "sesame_std")
	if before == "" {
		t.Fatal("no broker session cookie before the IdP callback")
	}
	a.get(cb.String()).redirect(t, st.Broker+"/authorize/consent")
	after := a.cookie(st.Broker, "sesame_std")
	if after == "" || after == before {
		t.Errorf("the broker session id was not rotated at the IdP callback (before %q, after %q)", before, after)
	}
}

// consent reads the information page, checks it names the citizen, and
// continues; it returns the broker's redirect to the SP.
func (a *agent) consent(t *testing.T, st *stack, who identity) *url.URL {
	t.Helper()
	return a.consentAt(t, st.Broker, who)
}

// consentAt is consent on the platform whose issuer is given.
func (a *agent) consentAt(t *testing.T, issuer string, who identity) *url.URL {
	t.Helper()
	info := a.get(issuer + "/authorize/consent").ok(t)
	if got := info.byID(t, "citizen"); got != who.Name() {
		t.Errorf("information page greets %q, want %q", got, who.Name())
	}
	if !info.has("continue") {
		t.Fatalf("information page has no #continue button")
	}
	res := a.post(info.formAction(t), url.Values{"csrf": {info.hidden(t, "csrf")}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("%s: status %d, want 303 to the SP\nbody: %s", res, res.status, excerpt(res.body))
	}
	u, err := res.url.Parse(res.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// loginAtBroker runs the broker part of a login from an SP's authorization
// URL: chooser, IdP, callback, information page. It returns every hop.
func (a *agent) loginAtBroker(t *testing.T, st *stack, authURL, idp, identityID string, hooks loginHooks) brokerLogin {
	t.Helper()
	who := loadIdentity(t, identityID)
	ch := a.toChooser(t, st, authURL)
	login, idpAuth := a.chooseIdP(t, st, ch, idp)
	cb := a.idpLogin(t, st, idp, login, idpAuth, identityID)
	a.brokerCallback(t, st, cb)
	if hooks.afterCallback != nil {
		hooks.afterCallback(idpAuth, cb)
	}
	final := a.consent(t, st, who)
	return brokerLogin{IdPAuth: idpAuth, Callback: cb, Final: final}
}

// demoSPResult is what the demo SP's /me page shows.
type demoSPResult struct {
	Sub, ACR, Name string
	Me             *page
}

// demoSPLogin logs in at the demo SP process through the broker and one
// IdP, checking each hop, and returns what /me shows.
func demoSPLogin(t *testing.T, st *stack, a *agent, idp, identityID string) demoSPResult {
	t.Helper()
	who := loadIdentity(t, identityID)
	home := a.get(st.DemoSP + "/").ok(t)
	if !home.has("sesame-connect") {
		t.Fatalf("demo SP home has no #sesame-connect button")
	}
	auth := a.post(st.DemoSP+"/login", url.Values{"acr_values": {"eidas1"}}).redirect(t, st.Broker+"/authorize")
	wantQuery(t, "demo SP → broker", auth, map[string]string{
		"client_id": demoSPID, "redirect_uri": st.DemoSP + "/callback", "response_type": "code",
		"code_challenge_method": "S256", "acr_values": "eidas1",
	})
	p := nonEmpty(t, "demo SP → broker", auth, "state", "nonce", "code_challenge", "scope")
	if !slices.Contains(strings.Fields(p["scope"]), "openid") {
		t.Errorf("demo SP asks scope %q, without openid", p["scope"])
	}

	bl := a.loginAtBroker(t, st, auth.String(), idp, identityID, loginHooks{})
	if got := bl.Final.Scheme + "://" + bl.Final.Host + bl.Final.Path; got != st.DemoSP+"/callback" {
		t.Fatalf("broker → demo SP goes to %s, want %s/callback", bl.Final, st.DemoSP)
	}
	wantQuery(t, "broker → demo SP", bl.Final, map[string]string{"state": p["state"], "iss": st.Broker})
	nonEmpty(t, "broker → demo SP", bl.Final, "code")

	a.get(bl.Final.String()).redirect(t, st.DemoSP+"/me")
	me := a.get(st.DemoSP + "/me").ok(t)
	res := demoSPResult{Name: me.byID(t, "citizen-name"), Sub: me.byID(t, "sub"), ACR: me.byID(t, "acr"), Me: me}
	if res.Name != who.Name() {
		t.Errorf("demo SP /me shows %q, want %q", res.Name, who.Name())
	}
	if res.ACR != "eidas1" {
		t.Errorf("demo SP /me shows acr %q, want eidas1", res.ACR)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}v1$`).MatchString(res.Sub) {
		t.Errorf("demo SP /me shows sub %q, want 64 hex digits and v1 (pairwise HMAC)", res.Sub)
	}
	return res
}

// demoSPLogout logs out at the demo SP: through the broker's end_session,
// the IdP's end_session when it has one, and back to /logged-out.
func demoSPLogout(t *testing.T, st *stack, a *agent, idp string, idpHasEndSession bool) {
	t.Helper()
	es := a.post(st.DemoSP+"/logout", nil).redirect(t, st.Broker+"/session/end")
	wantQuery(t, "demo SP → broker logout", es, map[string]string{"post_logout_redirect_uri": st.DemoSP + "/logged-out", "client_id": demoSPID})
	p := nonEmpty(t, "demo SP → broker logout", es, "id_token_hint", "state")
	back := brokerLogout(t, st, a, es.String(), idp, idpHasEndSession, st.DemoSP+"/logged-out")
	wantQuery(t, "broker → demo SP after logout", back, map[string]string{"state": p["state"]})
	done := a.get(back.String()).ok(t)
	if strings.Contains(done.body, "<code>S8") {
		t.Errorf("demo SP /logged-out shows an error\nbody: %s", excerpt(done.body))
	}
	if a.cookie(st.Broker, "sesame_std") != "" {
		t.Error("the broker session cookie survived the logout")
	}
}

// brokerLogout follows the broker's end_session request through the IdP's
// end_session (when it has one) and returns the final redirect to target.
func brokerLogout(t *testing.T, st *stack, a *agent, endSessionURL, idp string, idpHasEndSession bool, target string) *url.URL {
	t.Helper()
	res := a.get(endSessionURL)
	if !idpHasEndSession {
		return res.redirect(t, target)
	}
	up := res.redirect(t, st.IdPIssuer(idp)+"/end_session")
	wantQuery(t, "broker → IdP logout", up, map[string]string{"post_logout_redirect_uri": st.Broker + "/idp/logout/callback"})
	p := nonEmpty(t, "broker → IdP logout", up, "id_token_hint", "state")
	cb := a.get(up.String()).redirect(t, st.Broker+"/idp/logout/callback")
	wantQuery(t, "IdP → broker logout", cb, map[string]string{"state": p["state"]})
	return a.get(cb.String()).redirect(t, target)
}

// stepCtx returns a context bounded for one test step.
func stepCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
