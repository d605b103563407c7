package broker_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

var sidRE = regexp.MustCompile(`name="sid" value="([^"]+)"`)

// idpLogoutStack is a stack whose mock IdPs post back-channel logout
// tokens to the broker, and whose SP receives the broker's in turn.
func idpLogoutStack(t *testing.T, spGot chan<- string, opts ...teststack.Option) *teststack.Stack {
	sp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() == nil {
			spGot <- r.PostForm.Get("logout_token")
		}
	}))
	t.Cleanup(sp.Close)
	var s *teststack.Stack
	opts = append(opts, func(c *config.Config) {
		c.Broker.Platforms[0].ServiceProviders[0].BackchannelLogoutURI = sp.URL
		for i := range c.Providers.IdPs {
			idp := &c.Providers.IdPs[i]
			idp.Clients[0].BackchannelLogoutURI = strings.TrimSuffix(idp.Clients[0].RedirectURIs[0], "/idp/callback") + "/idp/" + idp.ID + "/backchannel-logout"
		}
	})
	s = teststack.New(t, opts...)
	return s
}

// loggedIn logs a citizen in at impots and returns the access token and
// the IdP's sid of that login.
func loggedIn(t *testing.T, s *teststack.Stack) (string, string) {
	t.Helper()
	u := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois")
	st, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, out)
	}
	_, page := teststack.Get(t, http.DefaultClient, s.IdPURL+"/impots/sessions")
	m := sidRE.FindAllStringSubmatch(page, -1)
	if len(m) == 0 {
		t.Fatal("no live login on the mock IdP's sessions page")
	}
	return out["access_token"].(string), m[len(m)-1][1]
}

// endAtIdP ends the IdP's login sid, which sends a logout token to the
// broker (with a scenario's flaw, if any), and returns the IdP's page.
func endAtIdP(t *testing.T, s *teststack.Stack, sid, scenario string) string {
	t.Helper()
	form := url.Values{"sid": {sid}}
	if scenario != "" {
		form.Set("scenario_bcl", scenario)
	}
	c := &http.Client{}
	resp, err := c.PostForm(s.IdPURL+"/impots/sessions/end", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, page := teststack.Get(t, http.DefaultClient, s.IdPURL+"/impots/sessions")
	return page
}

// ssoAlive reports whether the browser's broker session still serves an
// authorization request without the chooser.
func ssoAlive(t *testing.T, s *teststack.Stack) bool {
	t.Helper()
	resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	return resp.Header.Get("Location") == "/authorize/consent"
}

// Back-channel logout from an IdP (OIDC Back-Channel Logout 1.0): the
// IdP's logout token ends the citizen's broker session, revokes its
// access tokens and reaches the SPs; forged, replayed, expired, mis-aimed
// and nonce-carrying tokens are refused and end nothing.
func TestIdPBackchannelLogout(t *testing.T) {
	bothStores(t, func(t *testing.T, opts ...teststack.Option) {
		spGot := make(chan string, 8)
		s := idpLogoutStack(t, spGot, opts...)
		at, sid := loggedIn(t, s)

		for _, flaw := range []string{"wrong_key", "nonce", "no_events", "wrong_aud", "expired"} {
			page := endAtIdP(t, s, sid, flaw)
			if !strings.Contains(page, "dernier envoi&nbsp;: 400") {
				t.Errorf("%s: the broker did not answer 400", flaw)
			}
			if !ssoAlive(t, s) || s.UserinfoStatus(t, "Bearer "+at) != http.StatusOK {
				t.Fatalf("%s: a refused logout token ended the session", flaw)
			}
		}
		select {
		case <-spGot:
			t.Fatal("the SP was told of a logout that did not happen")
		default:
		}

		// A genuine token, sent twice: the first ends the session, the
		// replay is refused.
		page := endAtIdP(t, s, sid, "replay")
		if !strings.Contains(page, "200 puis 400") {
			t.Errorf("replayed logout token: the IdP's page does not show 200 then 400")
		}
		if s.UserinfoStatus(t, "Bearer "+at) != http.StatusUnauthorized {
			t.Error("the session's access token survived the IdP's logout")
		}
		select {
		case tok := <-spGot:
			if tok == "" {
				t.Error("empty logout token to the SP")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the SP got no logout token")
		}
		if ssoAlive(t, s) {
			t.Fatal("the broker session survived the IdP's logout")
		}
	})
}

// The back-channel endpoint answers bad requests with JSON errors.
func TestIdPBackchannelBadRequests(t *testing.T) {
	s := teststack.New(t)
	for name, c := range map[string]struct {
		path, body string
		status     int
	}{
		"no token":        {"/idp/impots/backchannel-logout", "", 400},
		"garbage":         {"/idp/impots/backchannel-logout", "logout_token=abc", 400},
		"two tokens":      {"/idp/impots/backchannel-logout", "logout_token=a&logout_token=b", 400},
		"unknown IdP":     {"/idp/nobody/backchannel-logout", "logout_token=a.b.c", 400},
		"id_token-shaped": {"/idp/impots/backchannel-logout", "logout_token=eyJhbGciOiJFUzI1NiJ9.eyJub25jZSI6IngifQ.c2ln", 400},
		"huge":            {"/idp/impots/backchannel-logout", "logout_token=" + strings.Repeat("a", 70<<10), 400},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := http.Post(s.BrokerURL+c.path, "application/x-www-form-urlencoded", strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%d %s, want %d JSON", resp.StatusCode, resp.Header.Get("Content-Type"), c.status)
			}
		})
	}
}
