package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

// The space logs in at the real broker: authorization code with PKCE
// S256, state, nonce, prompt=login and eidas1, and reads sesame_account
// and idp_id from the verified id_token.
func TestLoginThroughTheBroker(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()

	auth := c.startLogin(t, "/login")
	q := auth.Query()
	for k, want := range map[string]string{
		"prompt": "login", "acr_values": "eidas1", "code_challenge_method": "S256", "response_type": "code",
		"client_id": teststack.SpaceID, "redirect_uri": e.URL + "/callback", "scope": "openid given_name email",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization request %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 32 {
			t.Errorf("authorization request %s = %q: missing or short", k, q.Get(k))
		}
	}

	cb := c.atBroker(t, auth.String(), "impots", angela)
	resp, body := teststack.Get(t, c.s.Browser, cb)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("callback: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var sc *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			sc = ck
		}
	}
	switch {
	case sc == nil:
		t.Fatal("no session cookie")
	case !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.MaxAge != 900:
		t.Errorf("session cookie: HttpOnly %v SameSite %v Secure %v (http base URL) MaxAge %d, want HttpOnly, Lax, not Secure, 900",
			sc.HttpOnly, sc.SameSite, sc.Secure, sc.MaxAge)
	case strings.Contains(sc.Value, "impots") || len(sc.Value) < 100:
		t.Errorf("session cookie is not sealed: %q", sc.Value)
	}

	s, ok := e.app.currentSession(&http.Request{Header: http.Header{"Cookie": {sc.String()}}})
	if !ok || len(s.Account) != 32 || s.IdP != "impots" || s.GivenName != "Angela Claire Louise" || s.Email != "angela.dubois@example.org" || s.IDToken == "" {
		t.Fatalf("session = %+v", s)
	}

	_, page := c.get(t, "/")
	for _, want := range []string{`id="given-name">Angela Claire Louise<`, `id="current-idp">` + impotsName + `<`, `id="menu"`, `action="/logout"`} {
		if !strings.Contains(page, want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
	if strings.Contains(page, `id="login"`) {
		t.Error("landing page of a logged-in citizen shows the login button")
	}
}

// A second login to the space needs the IdP again (prompt=login), even
// though the broker has a session.
func TestLoginAlwaysReauthenticates(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	c.login(t, "impots", angela)
	auth := c.startLogin(t, "/login")
	resp, _ := teststack.Get(t, c.s.Browser, auth.String())
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/authorize/choose" {
		t.Fatalf("second login: %d to %q, want the chooser (no SSO)", resp.StatusCode, loc)
	}
}

// The landing page without a session: what the space is, and the button.
func TestLandingPage(t *testing.T) {
	e := newEnv(t, envConfig{})
	resp, page := e.citizen().get(t, "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("landing: %d", resp.StatusCode)
	}
	for _, want := range []string{`<html lang="fr">`, "Mon espace Sésame", `id="login" href="/login"`, "Se connecter avec Sésame", `href="/signalement"`} {
		if !strings.Contains(page, want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
	if strings.Contains(page, `id="menu"`) {
		t.Error("landing page shows the menu without a session")
	}
}

// A page of the space without a session goes to the landing page, whose
// login comes back to it.
func TestPagesNeedASession(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	for _, path := range []string{"/historique", "/comptes"} {
		resp, _ := c.get(t, path)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/?retour="+url.QueryEscape(path) {
			t.Errorf("GET %s without a session: %d to %q", path, resp.StatusCode, loc)
		}
		_, page := c.get(t, "/?retour="+url.QueryEscape(path))
		if !strings.Contains(page, `href="/login?retour=`+url.QueryEscape(path)+`"`) {
			t.Errorf("landing with retour=%s: the login button does not come back", path)
		}
	}
	// The way back is an allow-list: nothing else is kept.
	if u := c.startLogin(t, "/login?retour=https://evil.example/"); u == nil {
		t.Fatal("no login")
	}
	cb := c.atBroker(t, c.startLogin(t, "/login?retour=/comptes").String(), "impots", angela)
	resp, _ := teststack.Get(t, c.s.Browser, cb)
	if loc := resp.Header.Get("Location"); loc != "/comptes" {
		t.Errorf("login with retour=/comptes lands on %q", loc)
	}
	if got := returnPath("//evil.example/"); got != "/" {
		t.Errorf("returnPath(//evil.example/) = %q", got)
	}
}

// The session lasts 15 minutes from the login, whatever the cookie says.
func TestSessionExpires(t *testing.T) {
	var shift time.Duration
	e := newEnv(t, envConfig{space: []Option{WithClock(func() time.Time { return time.Now().Add(shift) })}})
	c := e.citizen()
	c.login(t, "laposte", angela)
	acct := c.account(t)
	_, page := c.get(t, "/comptes")
	token := csrf(t, page)

	shift = 16 * time.Minute
	resp, _ := c.get(t, "/historique")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/?") {
		t.Errorf("history after 16 minutes: %d to %q, want the landing page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page = c.post(t, "/comptes", url.Values{"csrf": {token}, "idp-impots": {"block"}})
	if resp.StatusCode != http.StatusUnauthorized || pageCode(t, page) != "S600021" {
		t.Errorf("accounts form after 16 minutes: %d", resp.StatusCode)
	}
	if _, found, _ := e.store.Preferences(t.Context(), acct); found {
		t.Error("preferences saved after the session expired")
	}
}

// The callback refuses what does not belong to this browser's login, and
// shows the broker's errors with a way back.
func TestCallbackErrors(t *testing.T) {
	e := newEnv(t, envConfig{})

	t.Run("no transaction", func(t *testing.T) {
		resp, page := e.citizen().get(t, "/callback?code=x&state=y")
		if resp.StatusCode != http.StatusBadRequest || pageCode(t, page) != "S600001" {
			t.Errorf("%d %s", resp.StatusCode, pageCode(t, page))
		}
	})
	t.Run("wrong state", func(t *testing.T) {
		c := e.citizen()
		c.startLogin(t, "/login")
		resp, page := c.get(t, "/callback?code=x&state=not-mine")
		if resp.StatusCode != http.StatusBadRequest || pageCode(t, page) != "S600002" {
			t.Errorf("%d %s", resp.StatusCode, pageCode(t, page))
		}
	})
	t.Run("access_denied", func(t *testing.T) {
		c := e.citizen()
		state := c.startLogin(t, "/login").Query().Get("state")
		resp, page := c.get(t, "/callback?"+url.Values{"error": {"access_denied"}, "error_description": {"<script>x</script>"},
			"state": {state}, "iss": {e.stack.BrokerURL}}.Encode())
		if resp.StatusCode != http.StatusBadRequest || pageCode(t, page) != "S600012" {
			t.Fatalf("%d %s", resp.StatusCode, pageCode(t, page))
		}
		if !strings.Contains(page, `href="/login"`) || !strings.Contains(page, "annulée") || strings.Contains(page, "<script>x") {
			t.Errorf("broker error page:\n%s", page)
		}
		// The transaction is spent: replaying the answer fails cleanly.
		resp, _ = c.get(t, "/callback?code=x&state="+state)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("replayed callback: %d", resp.StatusCode)
		}
	})
	t.Run("wrong iss", func(t *testing.T) {
		c := e.citizen()
		state := c.startLogin(t, "/login").Query().Get("state")
		resp, page := c.get(t, "/callback?"+url.Values{"code": {"x"}, "state": {state}, "iss": {"https://evil.example"}}.Encode())
		if resp.StatusCode != http.StatusBadRequest || pageCode(t, page) != "S600003" {
			t.Errorf("%d %s", resp.StatusCode, pageCode(t, page))
		}
	})
	t.Run("another browser's answer", func(t *testing.T) {
		c := e.citizen()
		cb := c.atBroker(t, c.startLogin(t, "/login").String(), "impots", angela)
		// The answer, stolen and opened in a browser that started a login
		// of its own: its state is not that login's, no session is made.
		other := e.citizen()
		other.startLogin(t, "/login")
		resp, page := other.get(t, strings.TrimPrefix(cb, e.URL))
		if resp.StatusCode != http.StatusBadRequest || pageCode(t, page) != "S600002" {
			t.Errorf("callback of another browser's login: %d %s", resp.StatusCode, pageCode(t, page))
		}
		// The right browser, once: then the transaction is spent.
		if resp, _ := teststack.Get(t, c.s.Browser, cb); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("callback: %d", resp.StatusCode)
		}
		if resp, page := teststack.Get(t, c.s.Browser, cb); resp.StatusCode != http.StatusBadRequest || pageCode(t, page) != "S600001" {
			t.Errorf("replayed callback: %d", resp.StatusCode)
		}
	})
}

// An SP not registered as the citizen space gets no sesame_account: the
// space says so clearly, and makes no session.
func TestMissingSpaceClaims(t *testing.T) {
	notSpace := func(c *config.Config) {
		sps := c.Broker.Platforms[0].ServiceProviders
		for i := range sps {
			if sps[i].ClientID == teststack.SpaceID {
				sps[i].CitizenSpace = false
			}
		}
	}
	e := newEnv(t, envConfig{stack: []teststack.Option{notSpace}})
	c := e.citizen()
	cb := c.atBroker(t, c.startLogin(t, "/login").String(), "impots", angela)
	resp, page := teststack.Get(t, c.s.Browser, cb)
	if resp.StatusCode != http.StatusBadGateway || pageCode(t, page) != "S600008" {
		t.Fatalf("%d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, "identifiant de votre espace") {
		t.Errorf("the page does not say what is missing:\n%s", page)
	}
	if _, page := c.get(t, "/"); strings.Contains(page, `id="menu"`) {
		t.Error("a session was made")
	}
}

// A login whose authentication is older than its start (a broker that
// ignored prompt=login) is refused: the space's clock is an hour ahead
// here, so the broker's auth_time is an hour "old".
func TestStaleAuthentication(t *testing.T) {
	e := newEnv(t, envConfig{space: []Option{WithClock(func() time.Time { return time.Now().Add(time.Hour) })}})
	c := e.citizen()
	cb := c.atBroker(t, c.startLogin(t, "/login").String(), "impots", angela)
	resp, page := teststack.Get(t, c.s.Browser, cb)
	if resp.StatusCode != http.StatusForbidden || pageCode(t, page) != "S600009" {
		t.Fatalf("%d\n%s", resp.StatusCode, page)
	}
}

// Logout ends the session here and sends the browser to the broker's
// end_session_endpoint, which comes back to the landing page.
func TestLogout(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	c.login(t, "impots", angela)
	_, page := c.get(t, "/")

	resp, _ := c.post(t, "/logout", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout without CSRF: %d, want 403", resp.StatusCode)
	}
	resp, _ = c.post(t, "/logout", url.Values{"csrf": {csrf(t, page)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	dest, _ := url.Parse(resp.Header.Get("Location"))
	q := dest.Query()
	if !strings.HasPrefix(dest.String(), e.stack.BrokerURL+"/session/end?") || q.Get("id_token_hint") == "" || q.Get("post_logout_redirect_uri") != e.URL+"/" {
		t.Fatalf("logout goes to %s", dest)
	}
	if _, page := c.get(t, "/"); strings.Contains(page, `id="menu"`) {
		t.Error("still logged in to the space")
	}
	// Through the broker (and the IdP's logout) back to the landing page.
	next := dest.String()
	for range 6 {
		if next == e.URL+"/" {
			return
		}
		resp, body := teststack.Get(t, c.s.Browser, next)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", next, resp.StatusCode, body)
		}
		next = teststack.Abs(next, resp.Header.Get("Location"))
	}
	t.Fatalf("logout did not come back to the space: at %s", next)
}
