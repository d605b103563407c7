package broker_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker/teststack"
)

// FuzzEndpoints sends arbitrary queries, bodies and cookies to every
// endpoint that takes outside input. Whatever comes in, the broker answers
// without a 5xx, without a panic, and never redirects to a URI that is not
// registered.
func FuzzEndpoints(f *testing.F) {
	s := teststack.New(f)
	paths := []string{"/authorize", "/authorize/choose", "/authorize/consent", "/idp/callback", "/token", "/userinfo", "/session/end", "/idp/logout/callback",
		"/par", "/idp/impots/backchannel-logout", "/introspect", "/revoke", "/api/v2/checktoken"}
	f.Add(uint8(0), false, teststack.AuthParams().Encode(), "", "")
	f.Add(uint8(0), true, "", teststack.AuthParams().Encode()+"&client_id=sp", "sesame_std=x")
	f.Add(uint8(3), false, "state=x&code=y&iss=http%3A%2F%2Fevil&error=access_denied&error_description=%3Cscript%3E", "", "sesame_std=abc")
	f.Add(uint8(4), true, "", "grant_type=authorization_code&code=x&redirect_uri=https%3A%2F%2Fsp.example%2Fcb&client_id=sp&client_secret="+teststack.SPSecret, "")
	f.Add(uint8(5), false, "access_token=x", "", "")
	f.Add(uint8(6), false, "post_logout_redirect_uri=https%3A%2F%2Fevil&id_token_hint=eyJhbGciOiJub25lIn0.e30.", "", "")
	f.Add(uint8(1), true, "", "csrf=x&idp=impots", "sesame_std=")
	f.Fuzz(func(t *testing.T, which uint8, isPost bool, query, body, cookie string) {
		path := paths[int(which)%len(paths)]
		method := http.MethodGet
		if isPost {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, "http://broker"+path, strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		if path == "/userinfo" {
			req.Header.Set("Authorization", "Bearer "+body)
		}
		rec := httptest.NewRecorder()
		s.Platform.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s?%q body %q: %d", method, path, query, body, rec.Code)
		}
		if loc := rec.Header().Get("Location"); loc != "" && (!strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//")) &&
			!strings.HasPrefix(loc, teststack.SPRedirect+"?") && !strings.HasPrefix(loc, s.IdPURL+"/") {
			t.Fatalf("%s %s?%q redirected to %q", method, path, query, loc)
		}
	})
}

// FuzzLogoutToken posts arbitrary logout tokens to the back-channel
// endpoint: nothing the fuzzer makes is signed by the IdP, so every one
// is refused with a 400 JSON error, never a 5xx, never accepted.
func FuzzLogoutToken(f *testing.F) {
	s := teststack.New(f)
	b64 := func(v string) string { return base64.RawURLEncoding.EncodeToString([]byte(v)) }
	f.Add(b64(`{"alg":"ES256","typ":"logout+jwt"}`) + "." + b64(`{"iss":"x","aud":"sesame","iat":1,"jti":"j","sid":"s","events":{"http://schemas.openid.net/event/backchannel-logout":{}}}`) + ".c2ln")
	f.Add(b64(`{"alg":"none"}`) + "." + b64(`{"sub":"a"}`) + ".")
	f.Add(b64(`{"alg":"HS256","typ":"JWT"}`) + "." + b64(`{"nonce":"n"}`) + ".AAAA")
	f.Add("a.b.c.d.e")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		req := httptest.NewRequest(http.MethodPost, "http://broker/idp/impots/backchannel-logout", strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		s.Platform.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("logout token %q: %d %s", token, rec.Code, rec.Header().Get("Content-Type"))
		}
	})
}

// FuzzPAR pushes arbitrary authorization requests, authenticated with a
// fresh valid assertion each time, on a "+" platform with its FAPI
// profile: never a 5xx, and a 201 only with a request_uri of ours.
func FuzzPAR(f *testing.F) {
	c := newFAPI(f)
	f.Add(c.pushParams().Encode())
	f.Add("client_id=sp&redirect_uri=https%3A%2F%2Fevil&response_type=code")
	f.Add("request=eyJ9&client_id=sp")
	f.Add("claims=%7B%22id_token%22%3A%7B%22amr%22%3Anull%7D%7D&" + c.pushParams().Encode())
	f.Add("dpop_jkt=AAAA&" + c.pushParams().Encode())
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", c.assertion(t, teststack.SPID))
		req := httptest.NewRequest(http.MethodPost, c.BrokerURL+"/par", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		c.Platform.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("PAR %q: %d", body, rec.Code)
		case rec.Code == http.StatusCreated && !strings.Contains(rec.Body.String(), `"request_uri":"urn:ietf:params:oauth:request_uri:`):
			t.Fatalf("PAR %q: 201 without a request_uri: %s", body, rec.Body)
		}
	})
}
