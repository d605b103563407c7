package providers

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/config"
)

// TestDataProvidersMounted: the providers listener serves the data
// providers of its config under /dp/<id>/ beside the IdPs, and its index
// links to them.
func TestDataProvidersMounted(t *testing.T) {
	h := newHarnessWith(t, func(c *config.Providers) {
		c.DataProviders = []config.MockDataProvider{{
			ID: "cnaf", Name: "CNAF (mock)", Issuers: []string{"http://localhost:8000"},
			ClientID: "dp-cnaf", ClientSecret: "dp-cnaf-secret-0123456789abcdef0123456789",
		}}
	})
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(h.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := get("/dp/cnaf/jwks"); status != http.StatusOK || !strings.Contains(body, `"use":"enc"`) {
		t.Errorf("/dp/cnaf/jwks: %d %s", status, body)
	}
	if status, body := get("/dp/cnaf/"); status != http.StatusOK || !strings.Contains(body, "cnaf_quotient_familial") {
		t.Errorf("/dp/cnaf/: %d", status)
	}
	if status, body := get("/dp/cnaf/api/prestations/quotient-familial"); status != http.StatusUnauthorized || !strings.Contains(body, "invalid_token") {
		t.Errorf("API without a token: %d %s", status, body)
	}
	if status, _ := get("/dp/dgfip/"); status != http.StatusNotFound {
		t.Errorf("/dp/dgfip/ (not configured): %d", status)
	}
	if status, body := get("/"); status != http.StatusOK || !strings.Contains(body, `href="/dp/cnaf/"`) || !strings.Contains(body, "CNAF (mock)") {
		t.Errorf("the index does not link to the data provider: %d", status)
	}
	if status, _ := get("/impots/.well-known/openid-configuration"); status != http.StatusOK {
		t.Errorf("the IdPs are no longer served: %d", status)
	}
}
