package providers

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/config"
)

// rpRecorder stands in for the broker's back-channel logout endpoint: it
// records every request and, like a careful RP, answers 400 to a jti it
// has already seen, 200 otherwise, unless status says another answer.
type rpRecorder struct {
	srv *httptest.Server

	mu     sync.Mutex
	posts  []rpPost
	jtis   map[string]bool
	status int
}

type rpPost struct {
	Method, Path, ContentType string
	Form                      url.Values
}

func newRP(t *testing.T) *rpRecorder {
	t.Helper()
	rp := &rpRecorder{jtis: map[string]bool{}}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		rp.mu.Lock()
		defer rp.mu.Unlock()
		rp.posts = append(rp.posts, rpPost{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Form: r.PostForm})
		status := rp.status
		if status == 0 {
			status = http.StatusOK
			if tok, err := jwt.ParseSigned(r.PostForm.Get("logout_token"), []jose.SignatureAlgorithm{jose.ES256}); err == nil {
				var c struct {
					JTI string `json:"jti"`
				}
				if tok.UnsafeClaimsWithoutVerification(&c) == nil && c.JTI != "" {
					if rp.jtis[c.JTI] {
						status = http.StatusBadRequest
					}
					rp.jtis[c.JTI] = true
				}
			}
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rp.srv.Close)
	return rp
}

func (rp *rpRecorder) uri(idp string) string {
	return rp.srv.URL + "/idp/" + idp + "/backchannel-logout"
}

// take returns the requests received so far and forgets them.
func (rp *rpRecorder) take() []rpPost {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	out := rp.posts
	rp.posts = nil
	return out
}

func (rp *rpRecorder) answer(status int) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.status = status
}

// newBCLHarness starts a mock server whose client at every IdP has a
// backchannel_logout_uri on a recording RP.
func newBCLHarness(t *testing.T) (*harness, *rpRecorder) {
	t.Helper()
	rp := newRP(t)
	h := newHarnessWith(t, func(cfg *config.Providers) {
		for i := range cfg.IdPs {
			for j := range cfg.IdPs[i].Clients {
				cfg.IdPs[i].Clients[j].BackchannelLogoutURI = rp.uri(cfg.IdPs[i].ID)
			}
		}
	})
	return h, rp
}

// loggedInAs logs identity in at idp and returns the id_token's sub and
// sid, as the RP reads them, and the access token.
func (h *harness) loggedInAs(idp, identity string) (sub, sid, accessToken string) {
	h.t.Helper()
	u := h.login(h.authURL(idp, nil), identity)
	resp, tok := h.tokenRequest(idp, codeForm(u.Query().Get("code")), testClientID, testSecret)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("token: %d %v", resp.StatusCode, tok)
	}
	claims, _, err := h.verifyJWT(idp, tok["id_token"].(string))
	if err != nil {
		h.t.Fatalf("id_token: %v", err)
	}
	sub, _ = claims["sub"].(string)
	sid, _ = claims["sid"].(string)
	if sub == "" || sid == "" {
		h.t.Fatalf("id_token without sub or sid: %v", claims)
	}
	return sub, sid, tok["access_token"].(string)
}

// verifyJWT verifies raw against idp's published /jwks, as an RP would,
// and returns its claims and protected header. On a signature failure the
// claims and header are still returned, read without verification.
func (h *harness) verifyJWT(idp, raw string) (map[string]any, jose.Header, error) {
	h.t.Helper()
	resp, body := h.get(h.issuer(idp) + "/jwks")
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &jwks); err != nil || resp.StatusCode != http.StatusOK || len(jwks.Keys) == 0 {
		h.t.Fatalf("jwks: %d %v %s", resp.StatusCode, err, body)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		h.t.Fatalf("not a JWS: %v", err)
	}
	claims := map[string]any{}
	if err := tok.Claims(jwks, &claims); err != nil {
		if uerr := tok.UnsafeClaimsWithoutVerification(&claims); uerr != nil {
			h.t.Fatal(uerr)
		}
		return claims, tok.Headers[0], err
	}
	return claims, tok.Headers[0], nil
}

func (h *harness) publishedKids(idp string) []string {
	h.t.Helper()
	_, body := h.get(h.issuer(idp) + "/jwks")
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &jwks); err != nil {
		h.t.Fatal(err)
	}
	var kids []string
	for _, k := range jwks.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

// endLogin posts to idp's sessions/end and returns the answer.
func (h *harness) endLogin(idp string, form url.Values) (*http.Response, string) {
	h.t.Helper()
	return h.postForm(h.issuer(idp)+"/sessions/end", form)
}

func (h *harness) sessionsPage(idp string) string {
	h.t.Helper()
	resp, page := h.get(h.issuer(idp) + "/sessions")
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("sessions page: status %d:\n%s", resp.StatusCode, page)
	}
	return page
}

// logoutToken checks that post is a back-channel logout request to idp's
// URI and returns its logout_token.
func (rp *rpRecorder) logoutToken(t *testing.T, idp string, p rpPost) string {
	t.Helper()
	if p.Method != http.MethodPost || p.Path != "/idp/"+idp+"/backchannel-logout" || p.ContentType != "application/x-www-form-urlencoded" {
		t.Errorf("request %s %s (%s), want a form POST to /idp/%s/backchannel-logout", p.Method, p.Path, p.ContentType, idp)
	}
	if len(p.Form) != 1 || len(p.Form["logout_token"]) != 1 {
		t.Errorf("form %v, want logout_token alone", p.Form)
	}
	return p.Form.Get("logout_token")
}

// checkLogoutToken checks everything §2.4 requires of a logout token, bar
// the claims in skip, which a scenario spoils on purpose.
func checkLogoutToken(t *testing.T, h *harness, idp string, raw, sub, sid string, skip ...string) map[string]any {
	t.Helper()
	c, hdr, err := h.verifyJWT(idp, raw)
	if err != nil && !slices.Contains(skip, "signature") {
		t.Errorf("logout token does not verify against %s/jwks: %v", idp, err)
	}
	if typ := hdr.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Errorf("typ = %v, want logout+jwt", typ)
	}
	if hdr.Algorithm != string(jose.ES256) || !slices.Contains(h.publishedKids(idp), hdr.KeyID) {
		t.Errorf("alg %q, kid %q: want ES256 with the kid of a key in %s/jwks", hdr.Algorithm, hdr.KeyID, idp)
	}
	want := map[string]any{"iss": h.issuer(idp), "aud": testClientID, "sub": sub, "sid": sid}
	for claim, v := range want {
		if !slices.Contains(skip, claim) && c[claim] != v {
			t.Errorf("%s = %v, want %v", claim, c[claim], v)
		}
	}
	if ev, ok := c["events"].(map[string]any); !slices.Contains(skip, "events") {
		if e, isObj := ev[backchannelEvent].(map[string]any); !ok || len(ev) != 1 || !isObj || len(e) != 0 {
			t.Errorf("events = %v, want {%q: {}}", c["events"], backchannelEvent)
		}
	}
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	if !slices.Contains(skip, "exp") {
		if now := float64(time.Now().Unix()); iat < now-60 || iat > now+5 || exp-iat != 120 {
			t.Errorf("iat %v, exp %v: want iat now and exp = iat + 120", iat, exp)
		}
	}
	if jti, _ := c["jti"].(string); len(jti) < 22 {
		t.Errorf("jti = %q, want a random value", jti)
	}
	if _, has := c["nonce"]; has && !slices.Contains(skip, "nonce") {
		t.Errorf("logout token carries a nonce: %v", c["nonce"])
	}
	return c
}

// listed reports whether the sessions page offers to end the login sid.
func listed(page, sid string) bool { return strings.Contains(page, `name="sid" value="`+sid+`"`) }

func TestBackchannelLogout(t *testing.T) {
	h, rp := newBCLHarness(t)
	sub, sid, at := h.loggedInAs("impots", "francois-xavier-d-harcourt")
	_, otherSID, otherAT := h.loggedInAs("impots", "francois-xavier-d-harcourt")
	if sid == otherSID {
		t.Fatal("two logins share a sid")
	}

	page := h.sessionsPage("impots")
	for _, want := range []string{sid, otherSID, testClientID, "François-Xavier d&#39;Harcourt", "Terminer cette session", `name="sid" value="` + sid + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("sessions page lacks %q", want)
		}
	}
	if strings.Contains(page, "d'Harcourt") {
		t.Error("sessions page does not escape the identity's name")
	}
	if form := formActionRE.FindStringSubmatch(page); form == nil || html.UnescapeString(form[1]) != "/impots/sessions/end" {
		t.Errorf("form action %v, want /impots/sessions/end", form)
	}

	resp, body := h.endLogin("impots", url.Values{"sid": {sid}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/impots/sessions" {
		t.Fatalf("end: status %d, Location %q:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	posts := rp.take()
	if len(posts) != 1 {
		t.Fatalf("the RP got %d requests, want 1", len(posts))
	}
	checkLogoutToken(t, h, "impots", rp.logoutToken(t, "impots", posts[0]), sub, sid)

	page = h.sessionsPage("impots")
	if listed(page, sid) {
		t.Error("the ended login is still listed")
	}
	if !listed(page, otherSID) {
		t.Error("the other login is gone too")
	}
	if !strings.Contains(page, "<td>200</td>") {
		t.Error("the sessions page does not show the RP's 200")
	}
	if resp := h.userinfo("impots", at); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("access token of the ended login: userinfo %d, want 401", resp.StatusCode)
	}
	if resp := h.userinfo("impots", otherAT); resp.StatusCode != http.StatusOK {
		t.Errorf("access token of the other login: userinfo %d, want 200", resp.StatusCode)
	}

	// Ended is ended: a second end finds nothing and sends nothing.
	resp, body = h.endLogin("impots", url.Values{"sid": {sid}})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "S700404") {
		t.Errorf("second end: status %d, want the 404 page", resp.StatusCode)
	}
	if posts := rp.take(); len(posts) != 0 {
		t.Errorf("the RP got %d more requests", len(posts))
	}
}

func TestBackchannelLogoutBySub(t *testing.T) {
	h, rp := newBCLHarness(t)
	sub, sid1, _ := h.loggedInAs("laposte", "angela-dubois")
	_, sid2, _ := h.loggedInAs("laposte", "angela-dubois")
	_, otherPerson, _ := h.loggedInAs("laposte", "yuki-tanaka")
	_, otherIdP, _ := h.loggedInAs("impots", "angela-dubois")

	resp, body := h.endLogin("laposte", url.Values{"sub": {sub}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/laposte/sessions" {
		t.Fatalf("end by sub: status %d:\n%s", resp.StatusCode, body)
	}
	var sids []string
	for _, p := range rp.take() {
		c := checkLogoutToken(t, h, "laposte", rp.logoutToken(t, "laposte", p), sub, "", "sid")
		sids = append(sids, c["sid"].(string))
	}
	slices.Sort(sids)
	want := []string{sid1, sid2}
	slices.Sort(want)
	if !slices.Equal(sids, want) {
		t.Errorf("logout tokens for sids %v, want %v", sids, want)
	}
	page := h.sessionsPage("laposte")
	if listed(page, sid1) || listed(page, sid2) {
		t.Error("a login of that sub is still listed")
	}
	if !listed(page, otherPerson) {
		t.Error("another person's login was ended")
	}
	if !listed(h.sessionsPage("impots"), otherIdP) {
		t.Error("the same person's login at another IdP was ended")
	}

	resp, _ = h.endLogin("laposte", url.Values{"sub": {sub}})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("sub without logins: status %d, want 404", resp.StatusCode)
	}
}

// Each scenario_bcl value spoils the token the way it names, and only that
// way.
func TestBackchannelScenarios(t *testing.T) {
	shared, rp := newBCLHarness(t)
	for _, tc := range []struct {
		scenario string
		posts    int
		skip     []string // claims spoilt on purpose
		check    func(t *testing.T, c map[string]any, err error)
		shown    string // what the sessions page shows of the RP's answers
		ends     bool
	}{
		{scenario: "replay", posts: 2, shown: "200 puis 400", ends: true},
		{scenario: "wrong_key", skip: []string{"signature"}, check: func(t *testing.T, _ map[string]any, err error) {
			if err == nil {
				t.Error("the token verifies against /jwks")
			}
		}},
		{scenario: "nonce", skip: []string{"nonce"}, check: func(t *testing.T, c map[string]any, _ error) {
			if n, _ := c["nonce"].(string); n == "" {
				t.Errorf("nonce = %v, want one", c["nonce"])
			}
		}},
		{scenario: "no_events", skip: []string{"events"}, check: func(t *testing.T, c map[string]any, _ error) {
			if _, has := c["events"]; has {
				t.Errorf("events = %v, want none", c["events"])
			}
		}},
		{scenario: "wrong_aud", skip: []string{"aud"}, check: func(t *testing.T, c map[string]any, _ error) {
			if c["aud"] == testClientID || c["aud"] == nil {
				t.Errorf("aud = %v, want another audience", c["aud"])
			}
		}},
		{scenario: "expired", skip: []string{"exp"}, check: func(t *testing.T, c map[string]any, _ error) {
			now := float64(time.Now().Unix())
			iat, _ := c["iat"].(float64)
			exp, _ := c["exp"].(float64)
			if exp > now-600 || iat > now-600 || exp <= iat {
				t.Errorf("iat %v, exp %v: want both 10 min or more in the past, exp after iat (now %v)", iat, exp, now)
			}
		}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			h := &harness{t: t, s: shared.s, srv: shared.srv, browser: shared.browser}
			sub, sid, _ := h.loggedInAs("impots", "angela-dubois")
			if tc.posts == 0 {
				tc.posts = 1
			}
			if tc.shown == "" {
				tc.shown = "400"
				rp.answer(http.StatusBadRequest)
			}
			resp, body := h.endLogin("impots", url.Values{"sid": {sid}, "scenario_bcl": {tc.scenario}})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d:\n%s", resp.StatusCode, body)
			}
			posts := rp.take()
			if len(posts) != tc.posts {
				t.Fatalf("the RP got %d requests, want %d", len(posts), tc.posts)
			}
			raw := rp.logoutToken(t, "impots", posts[0])
			for _, p := range posts[1:] {
				if rp.logoutToken(t, "impots", p) != raw {
					t.Error("a replay sent different tokens")
				}
			}
			c := checkLogoutToken(t, h, "impots", raw, sub, sid, tc.skip...)
			if tc.check != nil {
				_, _, err := h.verifyJWT("impots", raw)
				tc.check(t, c, err)
			}
			page := h.sessionsPage("impots")
			if listed := listed(page, sid); listed == tc.ends {
				t.Errorf("login still listed: %v, want %v", listed, !tc.ends)
			}
			if !tc.ends && !strings.Contains(page, "dernier envoi&nbsp;: "+tc.shown) {
				t.Errorf("the login's row does not show %q", "dernier envoi : "+tc.shown)
			}
			if !strings.Contains(page, "<td>"+tc.shown+"</td>") {
				t.Errorf("the last sends do not show %q", tc.shown)
			}
			rp.answer(0)
			if !tc.ends {
				// A faulty token leaves the login live, so a correct one
				// can follow.
				if resp, _ := h.endLogin("impots", url.Values{"sid": {sid}}); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("correct end after %s: status %d", tc.scenario, resp.StatusCode)
				}
				posts := rp.take()
				if len(posts) != 1 {
					t.Fatalf("correct end: the RP got %d requests", len(posts))
				}
				checkLogoutToken(t, h, "impots", rp.logoutToken(t, "impots", posts[0]), sub, sid)
			}
		})
	}
}

func TestEndSessionSendsNoBackchannelLogout(t *testing.T) {
	h, rp := newBCLHarness(t)
	idt, _ := h.loggedIn("impots")
	c, _, err := h.verifyJWT("impots", idt)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {testPostLogin}}
	resp, body := h.get(h.issuer("impots") + "/end_session?" + q.Encode())
	redirectTarget(t, resp, body)
	if posts := rp.take(); len(posts) != 0 {
		t.Errorf("RP-initiated logout sent %d back-channel requests to the RP that asked", len(posts))
	}
	if listed(h.sessionsPage("impots"), c["sid"].(string)) {
		t.Error("end_session left the login listed")
	}
}

// A client that is down, slow or redirecting never fails the page; what
// happened is shown.
func TestBackchannelLogoutRPFailures(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case "/slow":
			// Once the body is read the server notices the client hang up.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}
	}))
	defer rp.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	uris := map[string]string{"impots": down.URL + "/down", "ameli": rp.URL + "/moved", "laposte": rp.URL + "/slow"}
	h := newHarnessWith(t, func(cfg *config.Providers) {
		for i := range cfg.IdPs {
			cfg.IdPs[i].Clients[0].BackchannelLogoutURI = uris[cfg.IdPs[i].ID]
		}
	})
	if h.s.backchannel.Timeout != 5*time.Second {
		t.Errorf("back-channel timeout %v, want 5s", h.s.backchannel.Timeout)
	}
	// Before any request, as startHarness sets the clock: the real 5 s
	// would make this test slow.
	h.s.backchannel.Timeout = 300 * time.Millisecond

	for idp, want := range map[string]string{"impots": "pas de réponse", "ameli": "<td>307</td>", "laposte": "pas de réponse"} {
		_, sid, _ := h.loggedInAs(idp, "angela-dubois")
		start := time.Now()
		if resp, body := h.endLogin(idp, url.Values{"sid": {sid}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: status %d:\n%s", uris[idp], resp.StatusCode, body)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: the page waited %v", uris[idp], d)
		}
		page := h.sessionsPage(idp)
		if listed(page, sid) || !strings.Contains(page, want) {
			t.Errorf("%s: the login is still listed, or the page does not show %q", uris[idp], want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(paths, "/elsewhere") {
		t.Error("a redirect was followed")
	}
}

func TestBackchannelLogoutWithoutURI(t *testing.T) {
	h := sharedHarness(t)
	_, sid, at := h.loggedInAs("impots", "angela-dubois")
	if !strings.Contains(h.sessionsPage("impots"), "sans backchannel_logout_uri") {
		t.Error("the page does not say the client has no backchannel_logout_uri")
	}
	if resp, body := h.endLogin("impots", url.Values{"sid": {sid}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d:\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(h.sessionsPage("impots"), "rien envoyé") {
		t.Error("the page does not say nothing was sent")
	}
	if resp := h.userinfo("impots", at); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the login was not ended: userinfo %d", resp.StatusCode)
	}
}

func TestEndLoginsRefusals(t *testing.T) {
	h, rp := newBCLHarness(t)
	_, sid, _ := h.loggedInAs("impots", "angela-dubois")
	for name, tc := range map[string]struct {
		form   url.Values
		status int
		want   string
	}{
		"unknown sid":       {url.Values{"sid": {"nope"}}, http.StatusNotFound, "S700404"},
		"unknown sub":       {url.Values{"sub": {"nope"}}, http.StatusNotFound, "S700404"},
		"neither":           {url.Values{}, http.StatusBadRequest, "Envoyez sid"},
		"both":              {url.Values{"sid": {sid}, "sub": {"x"}}, http.StatusBadRequest, "Envoyez sid"},
		"repeated sid":      {url.Values{"sid": {sid, sid}}, http.StatusBadRequest, "une fois au plus"},
		"unknown scenario":  {url.Values{"sid": {sid}, "scenario_bcl": {"<b>bogus</b>"}}, http.StatusBadRequest, "&lt;b&gt;bogus&lt;/b&gt;"},
		"repeated scenario": {url.Values{"sid": {sid}, "scenario_bcl": {"nonce", "nonce"}}, http.StatusBadRequest, "scenario_bcl"},
		"login-page field":  {url.Values{"sid": {sid}, "scenario_acr": {"eidas1"}}, http.StatusBadRequest, "scenario_acr"},
		"sid in the query":  {nil, http.StatusBadRequest, "Envoyez sid"},
	} {
		u := h.issuer("impots") + "/sessions/end"
		if tc.form == nil {
			u += "?sid=" + url.QueryEscape(sid)
		}
		resp, page := h.postForm(u, tc.form)
		if resp.StatusCode != tc.status || !strings.Contains(page, tc.want) || resp.Header.Get("Location") != "" {
			t.Errorf("%s: status %d, want %d with %q", name, resp.StatusCode, tc.status, tc.want)
		}
		if strings.Contains(page, "<b>bogus") {
			t.Errorf("%s: the page does not escape the value sent", name)
		}
	}
	if posts := rp.take(); len(posts) != 0 {
		t.Errorf("refused requests sent %d logout tokens", len(posts))
	}
	if !listed(h.sessionsPage("impots"), sid) {
		t.Error("a refused request ended the login")
	}
}

func TestDiscoveryAdvertisesBackchannelLogout(t *testing.T) {
	h := sharedHarness(t)
	resp, err := http.Get(h.issuer("ameli") + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	d := decodeJSON(t, resp)
	if d["backchannel_logout_supported"] != true || d["backchannel_logout_session_supported"] != true {
		t.Errorf("backchannel_logout_supported %v, backchannel_logout_session_supported %v", d["backchannel_logout_supported"], d["backchannel_logout_session_supported"])
	}
	if _, page := h.get(h.srv.URL + "/"); !strings.Contains(page, `href="/ameli/sessions"`) {
		t.Error("the index does not link to the sessions pages")
	}
}
