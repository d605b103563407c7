package demosp

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzCallback feeds /callback any query string, with or without a live
// transaction: whatever arrives, the answer is a page, never a 5xx or a
// panic, and never a session. The issuer is unreachable, which is fine: no
// input may get as far as needing it without a valid state.
func FuzzCallback(f *testing.F) {
	for _, seed := range []string{
		"", "code=x&state=y", "state=&code=", "error=access_denied&error_description=%3Cscript%3E",
		"iss=https%3A%2F%2Fevil&state=a", "%zz", "state=a&state=b", strings.Repeat("a=b&", 200),
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	app, err := New(testConfig("http://127.0.0.1:1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query string, withTx bool) {
		req := httptest.NewRequest(http.MethodGet, "/callback", nil)
		req.URL.RawQuery = query
		if withTx {
			handle := randomString(32)
			app.txs.put(handle, pending{State: randomString(32), Nonce: randomString(32), ACR: "eidas1"}, txTTL)
			req.AddCookie(&http.Cookie{Name: txCookie, Value: handle})
		}
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, query)
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == sessionCookie && c.MaxAge >= 0 {
				t.Fatalf("a session was opened for %q", query)
			}
		}
	})
}

// FuzzLogin feeds POST /login any form body: only a known level may start a
// flow, and nothing may crash.
func FuzzLogin(f *testing.F) {
	for _, seed := range []string{"", "acr_values=eidas1", "acr_values=eidas9", "acr_values=%zz", "acr_values=eidas1&acr_values=eidas3"} {
		f.Add(seed)
	}
	app, err := New(testConfig("http://127.0.0.1:1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)
		// The issuer is unreachable, so a valid level ends on 503; anything
		// else must be refused as bad input.
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}
