package providers

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestAuthorizeErrorsNotRedirected(t *testing.T) {
	h := newHarness(t)
	for name, override := range map[string]url.Values{
		"unknown redirect_uri":     {"redirect_uri": {"http://evil.test/callback"}},
		"redirect_uri prefix only": {"redirect_uri": {testRedirect + "/extra"}},
		"redirect_uri missing":     {"redirect_uri": {"-"}},
		"unknown client":           {"client_id": {"nobody"}},
		"client_id missing":        {"client_id": {"-"}},
	} {
		resp, page := h.get(h.authURL("impots", override))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: status %d, Location %q; want 400 page without redirect", name, resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.Contains(page, "S7004") || strings.Contains(page, "evil.test") {
			t.Errorf("%s: error page lacks its code or echoes the bad URI:\n%s", name, page)
		}
	}
}

func TestAuthorizeErrorsRedirected(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name     string
		override url.Values
		want     string
	}{
		{"plain PKCE", url.Values{"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}}, "invalid_request"},
		{"PKCE without method", url.Values{"code_challenge": {strings.Repeat("a", 43)}}, "invalid_request"},
		{"method without challenge", url.Values{"code_challenge_method": {"S256"}}, "invalid_request"},
		{"no openid scope", url.Values{"scope": {"profile"}}, "invalid_scope"},
		{"token response type", url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		{"no nonce", url.Values{"nonce": {"-"}}, "invalid_request"},
		{"prompt none", url.Values{"prompt": {"none"}}, "login_required"},
		{"request object", url.Values{"request": {"x.y.z"}}, "request_not_supported"},
	} {
		resp, page := h.get(h.authURL("impots", tc.override))
		q := redirectTarget(t, resp, page).Query()
		if q.Get("error") != tc.want || q.Get("state") != "state-123" || q.Get("iss") != h.issuer("impots") {
			t.Errorf("%s: redirect query %v, want error=%s with state and iss", tc.name, q, tc.want)
		}
	}
	resp, page := h.get(h.authURL("impots", url.Values{"state": {"-"}}))
	if q := redirectTarget(t, resp, page).Query(); q.Get("error") != "invalid_request" || q.Has("state") {
		t.Errorf("missing state: %v", q)
	}
}

func codeForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}}
}

func TestCodeIsSingleUse(t *testing.T) {
	h := newHarness(t)
	code := h.code("impots", nil)
	resp, tok := h.tokenRequest("impots", codeForm(code), testClientID, testSecret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first use: %d %v", resp.StatusCode, tok)
	}
	at := tok["access_token"].(string)
	if code == "" || len(code) < 22 {
		t.Fatalf("code %q is shorter than 128 bits", code)
	}
	resp, body := h.tokenRequest("impots", codeForm(code), testClientID, testSecret)
	if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v, want 400 invalid_grant", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", resp.Header.Get("Cache-Control"))
	}
	// Reuse means the code leaked: what the first use gave is revoked.
	if resp := h.userinfo("impots", at); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token of a replayed code still works: %d", resp.StatusCode)
	}
}

func (h *harness) userinfo(idp, at string) *http.Response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.issuer(idp)+"/userinfo", nil)
	if at != "" {
		req.Header.Set("Authorization", "Bearer "+at)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestCodeExpires(t *testing.T) {
	h := newHarness(t)
	code := h.code("impots", nil)
	h.advance(codeTTL + time.Second)
	if resp, body := h.tokenRequest("impots", codeForm(code), testClientID, testSecret); body["error"] != "invalid_grant" {
		t.Fatalf("expired code: %d %v", resp.StatusCode, body)
	}
}

func TestCodeBoundToIdPAndRedirect(t *testing.T) {
	h := newHarness(t)
	code := h.code("impots", nil)
	if _, body := h.tokenRequest("laposte", codeForm(code), testClientID, testSecret); body["error"] != "invalid_grant" {
		t.Errorf("code of impots redeemed at laposte: %v", body)
	}
	code = h.code("impots", nil)
	f := codeForm(code)
	f.Set("redirect_uri", "http://rp.test/other")
	if _, body := h.tokenRequest("impots", f, testClientID, testSecret); body["error"] != "invalid_grant" {
		t.Errorf("other redirect_uri: %v", body)
	}
}

func TestPKCE(t *testing.T) {
	h := newHarness(t)
	verifier := oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	withPKCE := url.Values{"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}

	for name, v := range map[string]string{"wrong verifier": oauth2.GenerateVerifier(), "no verifier": ""} {
		f := codeForm(h.code("impots", withPKCE))
		if v != "" {
			f.Set("code_verifier", v)
		}
		if resp, body := h.tokenRequest("impots", f, testClientID, testSecret); resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v, want invalid_grant", name, resp.StatusCode, body)
		}
	}
	f := codeForm(h.code("impots", nil))
	f.Set("code_verifier", verifier)
	if _, body := h.tokenRequest("impots", f, testClientID, testSecret); body["error"] != "invalid_grant" {
		t.Errorf("verifier without challenge: %v, want invalid_grant", body)
	}
	f = codeForm(h.code("impots", withPKCE))
	f.Set("code_verifier", verifier)
	if resp, body := h.tokenRequest("impots", f, testClientID, testSecret); resp.StatusCode != http.StatusOK {
		t.Errorf("right verifier: %d %v", resp.StatusCode, body)
	}
}

func TestClientAuthentication(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name        string
		id, secret  string
		extra       url.Values
		status      int
		wantErr     string
		wantWWWAuth bool
	}{
		{name: "wrong secret", id: testClientID, secret: "wrong", status: 401, wantErr: "invalid_client", wantWWWAuth: true},
		{name: "unknown client", id: "nobody", secret: testSecret, status: 401, wantErr: "invalid_client", wantWWWAuth: true},
		{name: "no authentication", status: 401, wantErr: "invalid_client", wantWWWAuth: true},
		{name: "wrong post secret", extra: url.Values{"client_id": {testClientID}, "client_secret": {"x"}}, status: 401, wantErr: "invalid_client", wantWWWAuth: true},
		{name: "basic and post", id: testClientID, secret: testSecret, extra: url.Values{"client_secret": {testSecret}}, status: 400, wantErr: "invalid_request"},
		{name: "unknown grant", id: testClientID, secret: testSecret, extra: url.Values{"grant_type": {"password"}}, status: 400, wantErr: "unsupported_grant_type"},
		{name: "refresh grant", id: testClientID, secret: testSecret, extra: url.Values{"grant_type": {"refresh_token"}}, status: 400, wantErr: "unsupported_grant_type"},
		{name: "unknown code", id: testClientID, secret: testSecret, extra: url.Values{"code": {"nope"}}, status: 400, wantErr: "invalid_grant"},
	} {
		f := codeForm(h.code("impots", nil))
		for k, v := range tc.extra {
			f[k] = v
		}
		resp, body := h.tokenRequest("impots", f, tc.id, tc.secret)
		if resp.StatusCode != tc.status || body["error"] != tc.wantErr {
			t.Errorf("%s: %d %v, want %d %s", tc.name, resp.StatusCode, body, tc.status, tc.wantErr)
		}
		if got := resp.Header.Get("WWW-Authenticate") != ""; got != tc.wantWWWAuth {
			t.Errorf("%s: WWW-Authenticate present = %v", tc.name, got)
		}
	}
	// The right secret by client_secret_post works.
	f := codeForm(h.code("impots", nil))
	f.Set("client_id", testClientID)
	f.Set("client_secret", testSecret)
	if resp, body := h.tokenRequest("impots", f, "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("client_secret_post: %d %v", resp.StatusCode, body)
	}
	// A GET is refused without a server error.
	resp, _ := h.get(h.issuer("impots") + "/token")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /token: %d", resp.StatusCode)
	}
}

func TestUserinfoErrors(t *testing.T) {
	h := newHarness(t)
	resp := h.userinfo("impots", "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp = h.userinfo("impots", "forged")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("bad token: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	_, tok := h.tokenRequest("impots", codeForm(h.code("impots", nil)), testClientID, testSecret)
	at := tok["access_token"].(string)
	if resp := h.userinfo("laposte", at); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("impots token accepted by laposte: %d", resp.StatusCode)
	}
	if resp := h.userinfo("impots", at); resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh token: %d", resp.StatusCode)
	}
	h.advance(accessTokenTTL + time.Second)
	if resp := h.userinfo("impots", at); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired token: %d", resp.StatusCode)
	}
}

func TestBadInputNeverServerError(t *testing.T) {
	h := newHarness(t)
	big := strings.Repeat("a", maxBody+1)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/impots/token", big},
		{"POST", "/impots/token", "%zz"},
		{"POST", "/impots/authorize", big},
		{"POST", "/impots/authorize", "tx=%zz"},
		{"POST", "/impots/authorize", ""},
		{"GET", "/impots/authorize?%zz", ""},
		{"GET", "/impots/authorize?client_id=" + testClientID + "&redirect_uri=" + url.QueryEscape(testRedirect) + "&scope=openid%00", ""},
		{"POST", "/impots/userinfo", big},
		{"GET", "/impots/end_session?id_token_hint=a.b.c", ""},
		{"GET", "/impots/end_session?id_token_hint=" + big, ""},
		{"POST", "/impots/end_session", big},
		{"GET", "/nope", ""},
	} {
		req, _ := http.NewRequest(tc.method, h.srv.URL+tc.path, strings.NewReader(tc.body))
		if tc.method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := h.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %.60s: status %d", tc.method, tc.path, resp.StatusCode)
		}
	}
}

// Of concurrent redemptions of one code, exactly one gets tokens.
func TestCodeRaceHasOneWinner(t *testing.T) {
	h := newHarness(t)
	code := h.code("impots", nil)
	const n = 8
	ok := make(chan bool, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, h.issuer("impots")+"/token", strings.NewReader(codeForm(code).Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(testClientID, testSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				ok <- false
				return
			}
			resp.Body.Close()
			ok <- resp.StatusCode == http.StatusOK
		}()
	}
	wins := 0
	for range n {
		if <-ok {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d redemptions succeeded, want 1", wins)
	}
}
