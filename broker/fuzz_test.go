package broker_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/internal/teststack"
)

// FuzzEndpoints sends arbitrary queries, bodies and cookies to every
// endpoint that takes outside input. Whatever comes in, the broker answers
// without a 5xx, without a panic, and never redirects to a URI that is not
// registered.
func FuzzEndpoints(f *testing.F) {
	s := teststack.New(f)
	paths := []string{"/authorize", "/authorize/choose", "/authorize/consent", "/idp/callback", "/token", "/userinfo", "/session/end", "/idp/logout/callback"}
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
