package demosp

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/providers"
)

// stack is the demo SP pointed straight at a mock IdP: the demo SP is an
// ordinary relying party, so any real OIDC provider must do.
type stack struct {
	sp, idp *httptest.Server
}

func startStack(t *testing.T, idpID string, acrs []string) stack {
	t.Helper()
	var idpHandler http.Handler = http.NotFoundHandler()
	idpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idpHandler.ServeHTTP(w, r) }))
	t.Cleanup(idpSrv.Close)
	_, sp := startSP(t, idpSrv.URL+"/"+idpID)
	idp, err := providers.New(&config.Providers{
		BaseURL: idpSrv.URL,
		IdPs: []config.MockIdP{{
			ID: idpID, Name: idpID + " (mock)", ACRValues: acrs,
			Clients: []config.MockClient{{
				ClientID: "demo-sp", ClientSecret: "secret",
				RedirectURIs:           []string{sp.URL + "/callback"},
				PostLogoutRedirectURIs: []string{sp.URL + "/logged-out"},
			}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	idpHandler = idp
	return stack{sp: sp, idp: idpSrv}
}

var (
	formRE     = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	txFieldRE  = regexp.MustCompile(`name="tx" value="([^"]+)"`)
	identityRE = regexp.MustCompile(`name="identity" value="([^"]+)"`)
)

// idpLogin does what a tester does on the mock IdP's login page: pick the
// first identity (or cancel) and submit. It returns the redirect back.
func idpLogin(t *testing.T, b *browser, loginURL string, action string) page {
	t.Helper()
	p := b.get(loginURL)
	if p.status != http.StatusOK {
		t.Fatalf("IdP login page: %d\n%s", p.status, p.body)
	}
	form, tx, ids := formRE.FindStringSubmatch(p.body), txFieldRE.FindStringSubmatch(p.body), identityRE.FindStringSubmatch(p.body)
	if form == nil || tx == nil || ids == nil {
		t.Fatalf("no login form on the IdP page:\n%s", p.body)
	}
	base, _ := url.Parse(loginURL)
	target, err := base.Parse(html.UnescapeString(form[1]))
	if err != nil {
		t.Fatal(err)
	}
	return b.post(target.String(), url.Values{
		"tx": {html.UnescapeString(tx[1])}, "identity": {html.UnescapeString(ids[1])}, "action": {action},
	})
}

// loginAt runs the demo SP's login up to the IdP's answer to the callback.
func (s stack) loginAt(t *testing.T, b *browser, acr, action string) page {
	t.Helper()
	p := b.post(s.sp.URL+"/login", url.Values{"acr_values": {acr}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, s.idp.URL+"/") {
		t.Fatalf("POST /login: %d to %q\n%s", p.status, p.location, p.body)
	}
	back := idpLogin(t, b, p.location, action)
	if back.status != http.StatusSeeOther || !strings.HasPrefix(back.location, s.sp.URL+"/callback?") {
		t.Fatalf("IdP answered %d to %q\n%s", back.status, back.location, back.body)
	}
	return b.get(back.location)
}

func TestFlowWithMockIdP(t *testing.T) {
	for _, acr := range []string{"eidas1", "eidas2"} {
		t.Run(acr, func(t *testing.T) {
			s := startStack(t, "laposte", []string{"eidas1", "eidas2", "eidas3"})
			b := newBrowser(t)
			cb := s.loginAt(t, b, acr, "login")
			if cb.status != http.StatusSeeOther || cb.location != "/me" {
				t.Fatalf("callback: %d %q\n%s", cb.status, cb.location, cb.body)
			}
			me := b.get(s.sp.URL + "/me")
			if me.status != http.StatusOK {
				t.Fatalf("/me: %d", me.status)
			}
			for _, want := range []string{
				`<span id="citizen-name">Angela Claire Louise Dubois</span>`,
				`<code id="acr">` + acr + `</code>`,
				`<code id="sub">`,
				"1962-08-24", "75107", "angela.dubois@example.org",
			} {
				if !strings.Contains(me.body, want) {
					t.Errorf("/me lacks %q", want)
				}
			}
			if strings.Contains(me.body, `<code id="sub"></code>`) {
				t.Error("/me shows an empty sub")
			}

			// RP-initiated logout through the IdP's end_session and back.
			out := b.post(s.sp.URL+"/logout", nil)
			if out.status != http.StatusSeeOther || !strings.HasPrefix(out.location, s.idp.URL+"/laposte/end_session?") {
				t.Fatalf("logout: %d %q\n%s", out.status, out.location, out.body)
			}
			done, _ := b.follow(out, s.sp.URL)
			if done.status != http.StatusOK || !strings.Contains(done.body, "Déconnexion réussie") || strings.Contains(done.body, "peut-être encore ouverte") {
				t.Fatalf("after logout: %d\n%s", done.status, done.body)
			}
			if p := b.get(s.sp.URL + "/me"); p.status != http.StatusSeeOther {
				t.Fatalf("/me after logout: %d", p.status)
			}
		})
	}
}

// TestMockIdPBelowLevel asks eidas2 of an IdP that only does eidas1: a
// real IdP answers with what it can, and the demo SP must refuse it.
func TestMockIdPBelowLevel(t *testing.T) {
	s := startStack(t, "impots", []string{"eidas1"})
	b := newBrowser(t)
	p := s.loginAt(t, b, "eidas2", "login")
	wantError(t, p, http.StatusForbidden, codeACRTooLow)
	if !strings.Contains(p.body, `<code id="acr-got">eidas1</code>`) {
		t.Errorf("the refusal does not say which level was obtained:\n%s", p.body)
	}
	if b.cookie(s.sp.URL, sessionCookie) != nil {
		t.Error("a login below the level asked opened a session")
	}
}

func TestMockIdPCancel(t *testing.T) {
	s := startStack(t, "impots", []string{"eidas1"})
	b := newBrowser(t)
	p := s.loginAt(t, b, "eidas1", "cancel")
	wantError(t, p, http.StatusBadRequest, codeProviderError)
	if !strings.Contains(p.body, `<code id="oidc-error">access_denied</code>`) {
		t.Errorf("the page does not show the error code:\n%s", p.body)
	}
}

func TestMockIdPForgedCallbacks(t *testing.T) {
	s := startStack(t, "impots", []string{"eidas1"})
	b := newBrowser(t)
	start := b.post(s.sp.URL+"/login", nil)
	auth, _ := url.Parse(start.location)
	state := auth.Query().Get("state")

	// Wrong state: a clear page, not a 5xx.
	wantError(t, b.get(s.sp.URL+"/callback?code=abc&state=wrong"), http.StatusBadRequest, errState.Code)

	// An error with markup in its description, on a fresh transaction:
	// the description (developers' text) is never shown.
	start = b.post(s.sp.URL+"/login", nil)
	auth, _ = url.Parse(start.location)
	state = auth.Query().Get("state")
	q := url.Values{
		"error": {"access_denied"}, "error_description": {"<script>alert(1)</script>"},
		"state": {state}, "iss": {s.idp.URL + "/impots"},
	}
	p := b.get(s.sp.URL + "/callback?" + q.Encode())
	wantError(t, p, http.StatusBadRequest, codeProviderError)
	if strings.Contains(p.body, "alert(1)") || !strings.Contains(p.body, `<code id="oidc-error">access_denied</code>`) {
		t.Errorf("error_description shown, or the error code not:\n%s", p.body)
	}
}
