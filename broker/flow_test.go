package broker_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker/teststack"
)

func TestTokenEndpoint(t *testing.T) {
	s := teststack.New(t)
	verifier := "verifier-0123456789012345678901234567890123456789"
	sum := sha256.Sum256([]byte(verifier))
	params := teststack.AuthParams()
	params.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
	params.Set("code_challenge_method", "S256")

	codeFor := func(t *testing.T) string {
		u := s.Login(t, params, "impots", "angela-dubois")
		q := u.Query()
		if q.Get("state") != "state-1" || q.Get("iss") != s.BrokerURL || q.Get("code") == "" {
			t.Fatalf("authorization response %s lacks code, state or iss", u)
		}
		return q.Get("code")
	}
	form := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect}, "code_verifier": {verifier}}
	}

	t.Run("refusals", func(t *testing.T) {
		code := codeFor(t)
		bad := []struct {
			name  string
			form  url.Values
			basic bool
			want  string
		}{
			{"no auth", form(code), false, "invalid_client"},
			{"wrong secret", withSet(form(code), "client_id", teststack.SPID, "client_secret", "wrong"), false, "invalid_client"},
			{"both methods", withSet(form(code), "client_secret", teststack.SPSecret), true, "invalid_request"},
			{"password grant", withSet(form(code), "grant_type", "password"), true, "unsupported_grant_type"},
			{"redirect mismatch", withSet(form(code), "redirect_uri", teststack.SPRedirect+"/"), true, "invalid_grant"},
		}
		for _, b := range bad {
			status, out := s.Token(t, b.form, b.basic)
			if out["error"] != b.want || status < 400 || status >= 500 {
				t.Errorf("%s: %d %v, want %s", b.name, status, out, b.want)
			}
		}
		// The redirect mismatch consumed the code: it is single use
		// even when the first try fails.
		if _, out := s.Token(t, form(code), true); out["error"] != "invalid_grant" {
			t.Errorf("code usable after a failed redemption: %v", out)
		}
	})

	t.Run("pkce", func(t *testing.T) {
		for name, v := range map[string]string{"missing": "", "wrong": "wrong-verifier-0123456789012345678901234567890"} {
			f := form(codeFor(t))
			f.Set("code_verifier", v)
			if _, out := s.Token(t, f, true); out["error"] != "invalid_grant" {
				t.Errorf("%s verifier: %v", name, out)
			}
		}
		plain := teststack.AuthParams()
		u := s.Login(t, plain, "impots", "angela-dubois")
		f := form(u.Query().Get("code"))
		if _, out := s.Token(t, f, true); out["error"] != "invalid_grant" {
			t.Errorf("verifier without challenge accepted: %v", out)
		}
	})

	t.Run("reuse revokes", func(t *testing.T) {
		code := codeFor(t)
		status, out := s.Token(t, withSet(form(code), "client_id", teststack.SPID, "client_secret", teststack.SPSecret), false)
		if status != 200 || out["token_type"] != "Bearer" || out["id_token"] == nil {
			t.Fatalf("client_secret_post redemption: %d %v", status, out)
		}
		at := out["access_token"].(string)
		if got := s.UserinfoStatus(t, "bEaReR "+at); got != 200 {
			t.Fatalf("userinfo with fresh token: %d", got)
		}
		if _, out := s.Token(t, form(code), true); out["error"] != "invalid_grant" {
			t.Fatalf("second use: %v", out)
		}
		if got := s.UserinfoStatus(t, "Bearer "+at); got != http.StatusUnauthorized {
			t.Fatalf("token of a replayed code still works: %d", got)
		}
	})

	t.Run("userinfo refusals", func(t *testing.T) {
		for _, h := range []string{"", "Bearer garbage", "Basic abc", "Bearer "} {
			if got := s.UserinfoStatus(t, h); got != http.StatusUnauthorized && got != http.StatusBadRequest {
				t.Errorf("userinfo %q: %d", h, got)
			}
		}
	})

	t.Run("json body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/token", strings.NewReader(`{"grant_type":"authorization_code"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("JSON body: %d", resp.StatusCode)
		}
	})
}

func withSet(f url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = append([]string(nil), v...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

func TestPromptAndSSO(t *testing.T) {
	s := teststack.New(t)
	none := teststack.AuthParams()
	none.Set("prompt", "none")
	resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+none.Encode())
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != "state-1" || loc.Query().Get("iss") != s.BrokerURL {
		t.Fatalf("prompt=none without session: %s", loc)
	}

	first := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois")
	if first.Query().Get("code") == "" {
		t.Fatal("no code")
	}
	// A second request in the same browser skips the chooser (SSO)...
	resp, _ = teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	if loc := resp.Header.Get("Location"); loc != "/authorize/consent" {
		t.Fatalf("SSO: went to %q, want the information page", loc)
	}
	// ...prompt=none succeeds silently...
	resp, _ = teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+none.Encode())
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), teststack.SPRedirect) || loc.Query().Get("code") == "" {
		t.Fatalf("prompt=none with session: %s", loc)
	}
	// ...and prompt=login or max_age=0 go back to the chooser.
	for _, k := range []string{"prompt", "max_age"} {
		p := teststack.AuthParams()
		p.Set(k, map[string]string{"prompt": "login", "max_age": "0"}[k])
		resp, _ = teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+p.Encode())
		if loc := resp.Header.Get("Location"); loc != "/authorize/choose" {
			t.Fatalf("%s: went to %q, want the chooser", k, loc)
		}
	}
}

func TestPagesAndErrors(t *testing.T) {
	s := teststack.New(t)
	// Unknown client: a page, no redirect, with code and correlation id.
	p := teststack.AuthParams()
	p.Set("client_id", "evil")
	resp, body := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+p.Encode())
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "S030001") {
		t.Fatalf("unknown client: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if id := resp.Header.Get("X-Correlation-Id"); id == "" || !strings.Contains(body, id) {
		t.Fatal("error page lacks the correlation id")
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatal("no frame-ancestors")
	}
	// Steps out of order.
	fresh := teststack.NewBrowser()
	for _, path := range []string{"/authorize/choose", "/authorize/consent", "/idp/callback?state=x&code=y"} {
		resp, body := teststack.Get(t, fresh, s.BrokerURL+path)
		if resp.StatusCode >= 500 || !strings.Contains(body, "S19000") {
			t.Errorf("%s without session: %d", path, resp.StatusCode)
		}
	}
	// A callback with a foreign state in a live session.
	resp, _ = teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	_, page := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
	resp, _ = teststack.Post(t, s.Browser, s.BrokerURL+"/authorize/choose", url.Values{"csrf": {"forged"}, "idp": {"impots"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged CSRF: %d", resp.StatusCode)
	}
	resp, _ = teststack.Post(t, s.Browser, s.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"impots"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("choose: %d", resp.StatusCode)
	}
	resp, body = teststack.Get(t, s.Browser, s.BrokerURL+"/idp/callback?state=forged&code=x&iss="+url.QueryEscape(s.IdPURL+"/impots"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "S190003") {
		t.Fatalf("foreign state: %d", resp.StatusCode)
	}
}
