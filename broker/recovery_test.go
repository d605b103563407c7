package broker_test

// Every page recovers (issue 9, item 1): a step replayed or out of date
// offers "Revenir sur <service>" through the OIDC error path when the
// session (or the pending request) still names the SP's request; the Back
// button after a completed login leads back to the SP; a session that
// names nothing gives a plain page.

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

// recoverySPName is the test SP's name, which the way back names.
const recoverySPName = "Démarche de test"

func recoveryRig(t *testing.T, opts ...teststack.Option) *rig {
	t.Helper()
	return newRig(t, nil, false, append([]teststack.Option{onSP(func(sp *config.SP) { sp.Name = recoverySPName })}, opts...)...)
}

// linkRE finds the links of a page with their text.
var linkRE = regexp.MustCompile(`(?s)<a\b[^>]*\bhref="([^"]*)"[^>]*>(.*?)</a>`)

// spLinks are the page's links to the test SP's redirect_uri, each with
// its text.
func spLinks(body string) map[string]string {
	out := map[string]string{}
	for _, m := range linkRE.FindAllStringSubmatch(body, -1) {
		href := html.UnescapeString(m[1])
		if strings.HasPrefix(href, teststack.SPRedirect) {
			out[href] = strings.TrimSpace(html.UnescapeString(m[2]))
		}
	}
	return out
}

// wantWayBack checks an error page with code that offers one way back to
// the SP: "Revenir sur <name>" to the redirect_uri with access_denied, the
// request's state and the broker's iss, and no code.
func wantWayBack(t *testing.T, r *rig, resp *http.Response, body string, status int, code string) {
	t.Helper()
	wantPage(t, resp, body, status, code)
	links := spLinks(body)
	if len(links) != 1 {
		t.Fatalf("page %s has %d links to the SP (%q), want one", code, len(links), links)
	}
	for href, text := range links {
		u, err := url.Parse(href)
		if err != nil {
			t.Fatalf("link %q: %v", href, err)
		}
		q := u.Query()
		if q.Get("error") != "access_denied" || q.Get("state") != "state-1" || q.Get("iss") != r.BrokerURL || q.Has("code") || q.Get("error_description") == "" {
			t.Errorf("page %s: link to %q, want error=access_denied, error_description, state=state-1, iss=%s and no code", code, href, r.BrokerURL)
		}
		if text != "Revenir sur "+recoverySPName {
			t.Errorf("page %s: the link says %q, want %q", code, text, "Revenir sur "+recoverySPName)
		}
	}
}

// wantPlainPage checks an error page with code that names no SP.
func wantPlainPage(t *testing.T, resp *http.Response, body string, status int, code string) {
	t.Helper()
	wantPage(t, resp, body, status, code)
	if strings.Contains(body, "sp.example") || strings.Contains(body, recoverySPName) || strings.Contains(body, "Revenir sur") {
		t.Errorf("page %s names the SP, though nothing in the browser does:\n%s", code, body)
	}
}

// A replayed callback, mid-login: the trip is spent, the page offers the
// way back to the SP; the real login still goes on.
func TestRecoveryReplayedCallback(t *testing.T) {
	r := recoveryRig(t)
	cb := r.IdPLogin(t, r.toIdP(t, authParams(), "impots").String(), "angela-dubois", nil)
	resp, _ := teststack.Get(t, r.Browser, cb)
	wantLocation(t, resp, "/authorize/consent")
	resp, body := teststack.Get(t, r.Browser, cb)
	wantWayBack(t, r, resp, body, http.StatusBadRequest, "S190002")
	// In English, the same link.
	req, _ := http.NewRequest(http.MethodGet, cb, nil)
	req.Header.Set("Accept-Language", "en")
	eresp, err := r.Browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ebody := readBody(t, eresp)
	if links := spLinks(ebody); len(links) != 1 || !containsValue(links, "Back to "+recoverySPName) {
		t.Errorf("English page: links to the SP %q, want one saying %q", links, "Back to "+recoverySPName)
	}
	// The replays did not spoil the login.
	if u := r.Finish(t, r.BrokerURL+"/authorize/consent"); u.Query().Get("code") == "" {
		t.Fatalf("login after the replays: %s", u)
	}
}

// The Back button after a completed login: the consent page, the chooser
// and the callback each send the browser back to the SP (an error, never
// the spent code), not to an error page.
func TestRecoveryBackAfterLogin(t *testing.T) {
	r := recoveryRig(t)
	cb := r.IdPLogin(t, r.toIdP(t, authParams(), "impots").String(), "angela-dubois", nil)
	done := r.Finish(t, cb)
	code := done.Query().Get("code")
	if code == "" {
		t.Fatalf("login: %s", done)
	}
	for _, step := range []string{"/authorize/consent", "/authorize/choose", strings.TrimPrefix(cb, r.BrokerURL)} {
		resp, body := teststack.Get(t, r.Browser, r.BrokerURL+step)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("Back to %s after the login: %d, want 303 to the SP\n%s", step, resp.StatusCode, body)
		}
		wantSPError(t, r, resp, "access_denied")
		if strings.Contains(resp.Header.Get("Location"), code) {
			t.Errorf("Back to %s sends the spent code again: %s", step, resp.Header.Get("Location"))
		}
	}
	// The code was not spoilt, and SSO still serves the SP's next request.
	if tok := r.redeem(t, teststack.SPID, done); tok.AccessToken == "" {
		t.Fatal("no access token after the Back button")
	}
	if u := r.sso(t, authParams()); u.Query().Get("code") == "" {
		t.Fatalf("SSO after the Back button: %s", u)
	}
}

// The consent form posted again: within code_ttl (a double click) the
// browser follows the one code; after it, back to the SP with an error,
// never a second code.
func TestRecoveryConsentPostedAgain(t *testing.T) {
	const codeTTL = time.Second
	r := recoveryRig(t, func(c *config.Config) { c.Broker.Platforms[0].CodeTTL = config.Duration(codeTTL) })
	cb := r.IdPLogin(t, r.toIdP(t, authParams(), "impots").String(), "angela-dubois", nil)
	resp, _ := teststack.Get(t, r.Browser, cb)
	wantLocation(t, resp, "/authorize/consent")
	_, page := teststack.Get(t, r.Browser, r.BrokerURL+"/authorize/consent")
	form := url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}}
	first, _ := teststack.Post(t, r.Browser, r.BrokerURL+"/authorize/consent", form)
	issued := time.Now()
	code := func(resp *http.Response) string {
		u, _ := url.Parse(resp.Header.Get("Location"))
		return u.Query().Get("code")
	}
	if first.StatusCode != http.StatusSeeOther || code(first) == "" {
		t.Fatalf("consent: %d to %q, want a code", first.StatusCode, first.Header.Get("Location"))
	}
	again, _ := teststack.Post(t, r.Browser, r.BrokerURL+"/authorize/consent", form)
	// The same redirect: code, state and iss.
	if time.Since(issued) < codeTTL && (again.StatusCode != http.StatusSeeOther || again.Header.Get("Location") != first.Header.Get("Location")) {
		t.Fatalf("consent posted again within code_ttl: %d to %q, want the first redirect %q", again.StatusCode, again.Header.Get("Location"), first.Header.Get("Location"))
	}
	time.Sleep(time.Until(issued.Add(codeTTL + 200*time.Millisecond)))
	late, body := teststack.Post(t, r.Browser, r.BrokerURL+"/authorize/consent", form)
	if late.StatusCode != http.StatusSeeOther {
		t.Fatalf("consent posted again after code_ttl: %d, want 303 to the SP\n%s", late.StatusCode, body)
	}
	wantSPError(t, r, late, "access_denied")
}

// A callback with another state, and one past trip_ttl: the page offers
// the way back.
func TestRecoveryBadState(t *testing.T) {
	r := recoveryRig(t, func(c *config.Config) { c.Broker.Platforms[0].TripTTL = config.Duration(time.Second) })
	cb := r.IdPLogin(t, r.toIdP(t, authParams(), "impots").String(), "angela-dubois", nil)
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("state", "forged")
	u.RawQuery = q.Encode()
	resp, body := teststack.Get(t, r.Browser, u.String())
	wantWayBack(t, r, resp, body, http.StatusBadRequest, "S190003")

	time.Sleep(1200 * time.Millisecond)
	resp, body = teststack.Get(t, r.Browser, cb)
	wantWayBack(t, r, resp, body, http.StatusBadRequest, "S190003")
}

// A consent page opened while the request waits at the chooser (the
// pending request names the SP), a forged form, and Back from the IdP to
// the chooser: the page offers the way back.
func TestRecoveryStaleStep(t *testing.T) {
	r := recoveryRig(t)
	wantLocation(t, r.authorize(t, authParams()), "/authorize/choose")
	resp, body := teststack.Get(t, r.Browser, r.BrokerURL+"/authorize/consent")
	wantWayBack(t, r, resp, body, http.StatusBadRequest, "S190002")
	// A form of another session (its CSRF token does not match).
	resp, body = teststack.Post(t, r.Browser, r.BrokerURL+"/authorize/choose", url.Values{"csrf": {"forged"}, "idp": {"impots"}})
	wantWayBack(t, r, resp, body, http.StatusForbidden, "S190004")

	r.Choose(t, "impots")
	resp, body = teststack.Get(t, r.Browser, r.BrokerURL+"/authorize/choose")
	wantWayBack(t, r, resp, body, http.StatusBadRequest, "S190002")
	// A forged form at this step: the way back too.
	resp, body = teststack.Post(t, r.Browser, r.BrokerURL+"/authorize/choose", url.Values{"csrf": {"forged"}, "idp": {"impots"}})
	wantWayBack(t, r, resp, body, http.StatusBadRequest, "S190002")
}

// An expired session, or none: a plain page, since nothing in the browser
// names the SP any more.
func TestRecoveryExpiredSession(t *testing.T) {
	// The standard platform's sessions slide: the store forgets one ttl
	// after its last save, the callback's.
	const ttl = time.Second
	r := recoveryRig(t, func(c *config.Config) { c.Broker.Platforms[0].SessionTTL = config.Duration(ttl) })
	cb := r.IdPLogin(t, r.toIdP(t, authParams(), "impots").String(), "angela-dubois", nil)
	resp, _ := teststack.Get(t, r.Browser, cb)
	wantLocation(t, resp, "/authorize/consent")
	time.Sleep(ttl + 300*time.Millisecond)
	for _, step := range []string{"/authorize/consent", "/authorize/choose", strings.TrimPrefix(cb, r.BrokerURL)} {
		resp, body := teststack.Get(t, r.Browser, r.BrokerURL+step)
		wantPlainPage(t, resp, body, http.StatusBadRequest, "S190001")
	}
	fresh := teststack.NewBrowser()
	resp, body := teststack.Get(t, fresh, r.BrokerURL+"/authorize/consent")
	wantPlainPage(t, resp, body, http.StatusBadRequest, "S190001")
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

func containsValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}
