package demosp

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/config"
)

func TestNewRejectsBadConfig(t *testing.T) {
	good := config.DemoSP{BaseURL: "http://localhost:8200", Issuer: "http://localhost:8000", ClientID: "demo-sp", ClientSecret: "s", Keys: testKeysFile}
	withPlus := good
	withPlus.Plus = &config.DemoSPPlatform{Issuer: "http://localhost:8001", ClientID: "demo-sp-plus"}
	if _, err := New(&withPlus); err != nil {
		t.Fatalf("good config with plus refused: %v", err)
	}
	bad := map[string]func(c *config.DemoSP){
		"relative base_url": func(c *config.DemoSP) { c.BaseURL = "/demo" },
		"no issuer":         func(c *config.DemoSP) { c.Issuer = "" },
		"no client_id":      func(c *config.DemoSP) { c.ClientID = "" },
		"unknown level":     func(c *config.DemoSP) { c.ACRValues = "eidas9" },
		"no openid scope":   func(c *config.DemoSP) { c.Scopes = []string{"email"} },
		"plus without issuer": func(c *config.DemoSP) {
			c.Plus = &config.DemoSPPlatform{ClientID: "demo-sp-plus"}
		},
		"plus without client_id": func(c *config.DemoSP) {
			c.Plus = &config.DemoSPPlatform{Issuer: "http://localhost:8001"}
		},
		"plus unknown auth_method": func(c *config.DemoSP) {
			c.Plus = &config.DemoSPPlatform{Issuer: "http://localhost:8001", ClientID: "p", AuthMethod: "client_secret_jwt"}
		},
		"plus basic without secret": func(c *config.DemoSP) {
			c.Plus = &config.DemoSPPlatform{Issuer: "http://localhost:8001", ClientID: "p", AuthMethod: "client_secret_basic"}
		},
		"plus unknown level": func(c *config.DemoSP) {
			c.Plus = &config.DemoSPPlatform{Issuer: "http://localhost:8001", ClientID: "p", ACRValues: "eidas9"}
		},
		"plus no openid scope": func(c *config.DemoSP) {
			c.Plus = &config.DemoSPPlatform{Issuer: "http://localhost:8001", ClientID: "p", Scopes: []string{"email"}}
		},
		"missing keys file": func(c *config.DemoSP) { c.Keys = "/nonexistent/keys.json" },
	}
	if _, err := New(&good); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	if _, err := New(nil); err == nil {
		t.Error("nil config accepted")
	}
	for name, mutate := range bad {
		c := good
		mutate(&c)
		if _, err := New(&c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestHomeAndHealth(t *testing.T) {
	_, sp := startSP(t, "http://127.0.0.1:1") // nothing listens there: pages must not need the broker
	b := newBrowser(t)
	home := b.get(sp.URL + "/")
	if home.status != http.StatusOK {
		t.Fatalf("home: %d", home.status)
	}
	// Sésame's own button, not the DSFR's FranceConnect one.
	for _, want := range []string{`class="sesame-button" id="sesame-connect"`, "Sésame", `action="/login"`,
		`name="platform" value="std"`, `name="acr_values" value="eidas1" checked`, "Qu’est-ce que Sésame\u00a0?",
		`href="http://127.0.0.1:1/sesame"`, `/static/sesame-button.css?v=`} {
		if !strings.Contains(home.body, want) {
			t.Errorf("home page lacks %q", want)
		}
	}
	// Without a "+" registration, nothing offers "+".
	for _, absent := range []string{`value="plus"`, "sesame-plus-connect", "Sésame+"} {
		if strings.Contains(home.body, absent) {
			t.Errorf("home page offers %q though the SP has no \"+\" registration", absent)
		}
	}
	if h := b.get(sp.URL + "/healthz"); h.status != http.StatusOK || h.body != "ok" {
		t.Errorf("healthz: %d %q", h.status, h.body)
	}
	if p := b.get(sp.URL + "/nope"); p.status != http.StatusNotFound {
		t.Errorf("unknown path: %d", p.status)
	}
}

func TestLoginRedirect(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	_, sp := startSP(t, op.issuer())
	b := newBrowser(t)
	p := b.post(sp.URL+"/login", url.Values{"acr_values": {"eidas2"}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("login: %d\n%s", p.status, p.body)
	}
	loc, err := url.Parse(p.location)
	if err != nil || !strings.HasPrefix(p.location, op.issuer()+"/authorize?") {
		t.Fatalf("login went to %q", p.location)
	}
	q := loc.Query()
	checks := map[string]string{
		"response_type":         "code",
		"client_id":             "demo-sp",
		"redirect_uri":          sp.URL + "/callback",
		"scope":                 "openid identite_pivot email",
		"acr_values":            "eidas2",
		"code_challenge_method": "S256",
	}
	for k, want := range checks {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(q.Get("nonce")) < 22 || len(q.Get("state")) < 22 || q.Get("code_challenge") == "" {
		t.Errorf("weak or missing nonce/state/challenge: %v", q)
	}
	c := b.cookie(sp.URL, txCookie)
	if c == nil {
		t.Fatal("no transaction cookie")
	}
	if strings.Contains(p.location, c.Value) {
		t.Error("the cookie value leaks into the authorization URL")
	}
	setCookie := p.header.Get("Set-Cookie")
	if !strings.Contains(setCookie, "HttpOnly") || !strings.Contains(setCookie, "SameSite=Lax") || !strings.Contains(setCookie, "Path=/") {
		t.Errorf("cookie attributes: %s", setCookie)
	}

	if p := b.post(sp.URL+"/login", url.Values{"acr_values": {"eidas9"}}); p.status != http.StatusBadRequest {
		t.Errorf("unknown level: %d", p.status)
	}
}

// TestDiscoveryRetried starts the demo SP while its issuer fails, as when
// the broker is not up yet, and checks that it recovers without a restart.
func TestDiscoveryRetried(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	var up atomic.Bool
	inner := op.srv.Config.Handler
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer gate.Close()
	op.srv.Close()
	op.srv = gate // the fake now answers on the gated URL
	_, sp := startSP(t, gate.URL)
	b := newBrowser(t)
	wantError(t, b.post(sp.URL+"/login", nil), http.StatusServiceUnavailable, errUnavailable.Code)
	up.Store(true)
	if p := b.post(sp.URL+"/login", nil); p.status != http.StatusSeeOther {
		t.Fatalf("after the issuer came up: %d", p.status)
	}
}

// login runs POST /login through the fake OP and returns the callback URL
// the OP sent the browser to, without calling it.
func login(t *testing.T, b *browser, sp string, acr string) string {
	t.Helper()
	p := b.post(sp+"/login", url.Values{"acr_values": {acr}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("login: %d\n%s", p.status, p.body)
	}
	auth := b.get(p.location)
	if auth.status != http.StatusSeeOther || !strings.HasPrefix(auth.location, sp+"/callback?") {
		t.Fatalf("authorize answered %d to %q", auth.status, auth.location)
	}
	return auth.location
}

func TestFullFlowWithFakeOP(t *testing.T) {
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		jwt  bool
	}{
		{"ES256 JSON userinfo", jose.ES256, false},
		{"RS256 signed userinfo", jose.RS256, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newFakeOP(t, tc.alg)
			op.set(func(op *fakeOP) { op.signUserinfo = tc.jwt; op.issRequired = true })
			_, sp := startSP(t, op.issuer())
			b := newBrowser(t)
			cb := login(t, b, sp.URL, "eidas1")
			p := b.get(cb)
			if p.status != http.StatusSeeOther || p.location != "/me" {
				t.Fatalf("callback: %d %q\n%s", p.status, p.location, p.body)
			}
			if b.cookie(sp.URL, sessionCookie) == nil {
				t.Fatal("no session cookie after login")
			}
			me := b.get(sp.URL + "/me")
			for _, want := range []string{
				`<span id="citizen-name">Angela Claire Louise DUBOIS</span>`,
				`<code id="sub">` + fakeSub + `</code>`,
				`<code id="acr">eidas1</code>`,
				"Date de naissance", "1962-08-24", "féminin", "99100", "angela.dubois@example.fr",
				"&#34;nonce&#34;", // the decoded id_token claims
			} {
				if !strings.Contains(me.body, want) {
					t.Errorf("/me lacks %q", want)
				}
			}

			// A reload of the callback must fail cleanly: the state is spent.
			wantError(t, b.get(cb), http.StatusBadRequest, errNoTransaction.Code)
			// The session survived the failed reload.
			if me := b.get(sp.URL + "/me"); me.status != http.StatusOK {
				t.Fatalf("/me after a callback reload: %d", me.status)
			}
		})
	}
}

// TestCallbackTakeOnce replays the callback together with the transaction
// cookie, as a second tab or an attacker holding both would: the server-side
// transaction, not the cookie's removal, is what must stop it.
func TestCallbackTakeOnce(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	_, sp := startSP(t, op.issuer())
	b := newBrowser(t)
	cb := login(t, b, sp.URL, "eidas1")
	tx := b.cookie(sp.URL, txCookie)
	if p := b.get(cb); p.status != http.StatusSeeOther {
		t.Fatalf("first callback: %d\n%s", p.status, p.body)
	}
	u, _ := url.Parse(sp.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: txCookie, Value: tx.Value, Path: "/"}})
	wantError(t, b.get(cb), http.StatusBadRequest, errNoTransaction.Code)
}

func TestCallbackChecks(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(op *fakeOP)
		asked  string
		status int
		code   string
	}{
		{"acr below the level asked", func(op *fakeOP) { op.acr = "eidas1" }, "eidas2", http.StatusForbidden, codeACRTooLow},
		{"no acr", func(op *fakeOP) { op.acr = " " }, "eidas1", http.StatusForbidden, codeACRTooLow},
		{"nonce of another login", func(op *fakeOP) { op.nonce = "another-nonce-0123456789abcdef" }, "eidas1", http.StatusBadRequest, errNonce.Code},
		{"userinfo about someone else", func(op *fakeOP) { op.userinfoSub = "someone-else" }, "eidas1", http.StatusBadGateway, errUserInfo.Code},
		{"signed userinfo for another client", func(op *fakeOP) { op.signUserinfo, op.userinfoAud = true, "other-sp" }, "eidas1", http.StatusBadGateway, errUserInfo.Code},
		{"at_hash of another access token", func(op *fakeOP) { op.badATHash = true }, "eidas1", http.StatusBadGateway, errIDToken.Code},
		{"iss of another issuer", func(op *fakeOP) { op.wrongISS = "https://evil.example" }, "eidas1", http.StatusBadRequest, errIssuer.Code},
		{"iss missing though advertised", func(op *fakeOP) { op.issRequired, op.noISS = true, true }, "eidas1", http.StatusBadRequest, errIssuer.Code},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			op := newFakeOP(t, jose.ES256)
			op.set(c.setup)
			_, sp := startSP(t, op.issuer())
			b := newBrowser(t)
			p := b.get(login(t, b, sp.URL, c.asked))
			wantError(t, p, c.status, c.code)
			if b.cookie(sp.URL, sessionCookie) != nil {
				t.Error("a refused login opened a session")
			}
		})
	}
}

func TestCallbackWithoutISSWhenNotAdvertised(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	op.set(func(op *fakeOP) { op.noISS = true })
	_, sp := startSP(t, op.issuer())
	b := newBrowser(t)
	if p := b.get(login(t, b, sp.URL, "eidas1")); p.status != http.StatusSeeOther {
		t.Fatalf("a provider without RFC 9207 support was refused: %d\n%s", p.status, p.body)
	}
}

func TestCallbackBadInput(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	_, sp := startSP(t, op.issuer())

	t.Run("no transaction", func(t *testing.T) {
		b := newBrowser(t)
		wantError(t, b.get(sp.URL+"/callback?code=x&state=y"), http.StatusBadRequest, errNoTransaction.Code)
		wantError(t, b.get(sp.URL+"/callback?%zz=%%&state"), http.StatusBadRequest, errNoTransaction.Code)
	})
	t.Run("wrong state, then the right one", func(t *testing.T) {
		b := newBrowser(t)
		cb := login(t, b, sp.URL, "eidas1")
		u, _ := url.Parse(cb)
		q := u.Query()
		right := q.Get("state")
		q.Set("state", "forged")
		u.RawQuery = q.Encode()
		wantError(t, b.get(u.String()), http.StatusBadRequest, errState.Code)
		// The forged callback spent the transaction: the real one, arriving
		// late, must not complete a login the browser was told had failed.
		q.Set("state", right)
		u.RawQuery = q.Encode()
		wantError(t, b.get(u.String()), http.StatusBadRequest, errNoTransaction.Code)
	})
	t.Run("no code", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := url.Parse(login(t, b, sp.URL, "eidas1"))
		q := cb.Query()
		q.Del("code")
		cb.RawQuery = q.Encode()
		wantError(t, b.get(cb.String()), http.StatusBadRequest, errNoCode.Code)
	})
	t.Run("garbage code", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := url.Parse(login(t, b, sp.URL, "eidas1"))
		q := cb.Query()
		q.Set("code", "garbage")
		cb.RawQuery = q.Encode()
		wantError(t, b.get(cb.String()), http.StatusBadRequest, errInvalidGrant.Code)
	})
	t.Run("provider error: its code escaped, never its description", func(t *testing.T) {
		b := newBrowser(t)
		cb, _ := url.Parse(login(t, b, sp.URL, "eidas1"))
		q := cb.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		q.Set("error_description", `<script>alert("x")</script>`)
		cb.RawQuery = q.Encode()
		p := b.get(cb.String())
		wantError(t, p, http.StatusBadRequest, codeProviderError)
		if strings.Contains(p.body, "<script>") || strings.Contains(p.body, "alert(") {
			t.Fatal("error_description reached the page")
		}
		for _, want := range []string{`<code id="oidc-error">access_denied</code>`, "Vous avez annulé la connexion", `href="/"`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("error page lacks %q", want)
			}
		}
	})
}

func TestMeNeedsSession(t *testing.T) {
	_, sp := startSP(t, "http://127.0.0.1:1")
	b := newBrowser(t)
	if p := b.get(sp.URL + "/me"); p.status != http.StatusSeeOther || p.location != "/" {
		t.Fatalf("/me without session: %d %q", p.status, p.location)
	}
}

func TestLogout(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	_, sp := startSP(t, op.issuer())
	b := newBrowser(t)
	b.get(login(t, b, sp.URL, "eidas1"))

	p := b.post(sp.URL+"/logout", nil)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, op.issuer()+"/session/end?") {
		t.Fatalf("logout: %d %q", p.status, p.location)
	}
	end, _ := url.Parse(p.location)
	q := end.Query()
	if q.Get("id_token_hint") == "" || q.Get("post_logout_redirect_uri") != sp.URL+"/logged-out" || len(q.Get("state")) < 22 {
		t.Fatalf("end_session parameters: %v", q)
	}
	if me := b.get(sp.URL + "/me"); me.status != http.StatusSeeOther {
		t.Fatal("the local session survived logout")
	}

	// The logout state must not be usable to complete a login.
	wantError(t, b.get(sp.URL+"/callback?code=x&state="+url.QueryEscape(q.Get("state"))), http.StatusBadRequest, errNoTransaction.Code)

	wantError(t, b.get(sp.URL+"/logged-out?state=forged"), http.StatusBadRequest, errLogoutState.Code)
	// Nor the login state to fake a logout return.
	auth, _ := url.Parse(b.post(sp.URL+"/login", nil).location)
	wantError(t, b.get(sp.URL+"/logged-out?state="+url.QueryEscape(auth.Query().Get("state"))), http.StatusBadRequest, errLogoutState.Code)

	// A fresh logout, this time answered correctly by the provider.
	b.get(login(t, b, sp.URL, "eidas1"))
	end, _ = url.Parse(b.post(sp.URL+"/logout", nil).location)
	back := b.get(sp.URL + "/logged-out?state=" + url.QueryEscape(end.Query().Get("state")))
	if back.status != http.StatusOK || !strings.Contains(back.body, "Déconnexion réussie") {
		t.Fatalf("logged-out: %d\n%s", back.status, back.body)
	}
}

func TestLogoutWithoutEndSession(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	op.set(func(op *fakeOP) { op.noEndSession = true })
	_, sp := startSP(t, op.issuer())
	b := newBrowser(t)
	b.get(login(t, b, sp.URL, "eidas1"))
	p := b.post(sp.URL+"/logout", nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Déconnexion réussie") || !strings.Contains(p.body, "peut-être encore ouverte") {
		t.Fatalf("logout without end_session: %d\n%s", p.status, p.body)
	}
}

// The Back button after a login: the broker answers the spent
// transaction with access_denied; someone signed in goes back to /me,
// anyone else gets the page of a spent transaction.
func TestCallbackBackAfterLogin(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	_, sp := startSP(t, op.issuer())
	b := newBrowser(t)
	cb := login(t, b, sp.URL, "eidas1")
	if p := b.get(cb); p.status != http.StatusSeeOther {
		t.Fatalf("callback: %d\n%s", p.status, p.body)
	}
	back := sp.URL + "/callback?error=access_denied&state=spent&iss=" + url.QueryEscape(op.issuer())
	if p := b.get(back); p.status != http.StatusSeeOther || p.header.Get("Location") != "/me" {
		t.Fatalf("back after login: %d to %q, want 303 to /me", p.status, p.header.Get("Location"))
	}
	wantError(t, newBrowser(t).get(back), http.StatusBadRequest, errNoTransaction.Code)
}
