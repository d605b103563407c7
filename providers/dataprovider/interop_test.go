package dataprovider_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/providers/dataprovider"
)

// TestWithTheBroker: the real broker and the real mock, in process: a
// citizen logs in with data scopes, the SP calls the DGFiP mock with its
// access token, the mock introspects it at the broker (JWT, signed and
// encrypted to the mock's published key) and answers.
func TestWithTheBroker(t *testing.T) {
	const secret = "dp-dgfip-secret-0123456789abcdef0123456789"
	s := teststack.New(t, func(c *config.Config) {
		c.Broker.DataScopes = []config.DataScope{
			{Scope: "dgfip_rfr", Provider: "dgfip", Claims: []string{"revenu_fiscal_de_reference"}, LabelFR: "Revenu fiscal de référence (DGFiP)"},
			{Scope: "dgfip_nbpart", Provider: "dgfip", Claims: []string{"nombre_de_parts"}, LabelFR: "Nombre de parts (DGFiP)"},
		}
		pl := &c.Broker.Platforms[0]
		pl.DataProviders = append(pl.DataProviders, config.DataProvider{
			ID: "dgfip", Name: "DGFiP", ClientID: "dp-dgfip", ClientSecret: secret,
			JWKSURI: c.Providers.BaseURL + "/dp/dgfip/jwks", Scopes: []string{"dgfip_rfr", "dgfip_nbpart", "identite_pivot"},
			IntrospectionEncryptedResponseEnc: "A256GCM",
		})
		pl.ServiceProviders[0].Scopes = append(pl.ServiceProviders[0].Scopes, "dgfip_rfr")
		c.Providers.DataProviders = []config.MockDataProvider{{
			ID: "dgfip", Issuers: []string{pl.Issuer}, ClientID: "dp-dgfip", ClientSecret: secret,
		}}
	})
	p := teststack.AuthParams()
	p.Set("scope", "openid identite_pivot dgfip_rfr")
	u := s.Login(t, p, "impots", "angela-dubois")
	st, tok := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, tok)
	}
	var seen string
	call := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, s.IdPURL+rfrPath, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		seen = resp.Header.Get(dataprovider.IntrospectionHeader)
		return resp.StatusCode, string(body)
	}
	at, _ := tok["access_token"].(string)
	status, body := call(at)
	if status != http.StatusOK {
		t.Fatalf("data provider: %d %s", status, body)
	}
	// What the broker told the provider, shown to integrators.
	raw, _ := base64.RawURLEncoding.DecodeString(seen)
	var ti map[string]any
	if json.Unmarshal(raw, &ti) != nil || ti["active"] != true || ti["scope"] != "identite_pivot dgfip_rfr" {
		t.Errorf("%s header: %q", dataprovider.IntrospectionHeader, raw)
	}
	var got struct {
		Annees []map[string]any `json:"annees"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Annees) != 2 ||
		got.Annees[0]["revenu_fiscal_de_reference"] != 41230.0 || got.Annees[0]["nombre_de_parts"] != nil {
		t.Fatalf("answer %s: want the RFR of two years and no tax shares (dgfip_nbpart not granted)", body)
	}
	// Revoked by the SP: inactive at once.
	req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/revoke", strings.NewReader(url.Values{"token": {at}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(teststack.SPID, teststack.SPSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if status, body := call(at); status != http.StatusUnauthorized {
		t.Fatalf("after revocation (%d): %d %s", resp.StatusCode, status, body)
	}
}
