package providers

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkLoginPage renders a mock IdP's login page as its authorization
// endpoint does: the page a load test fetches at every login.
func BenchmarkLoginPage(b *testing.B) {
	shared.once.Do(func() { shared.h, shared.err = startHarness() })
	if shared.err != nil {
		b.Fatal(shared.err)
	}
	s := shared.h.s
	p := pendingLogin{ClientID: testClientID, RequestedACR: "eidas1", ACR: "eidas1", Scopes: []string{"openid", "profile"}, Lang: "fr"}
	r := httptest.NewRequest("GET", "/", nil)
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.renderLoginPage(rec, r, s.idps[0], 200, "tx", p, "", "", nil, "")
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
