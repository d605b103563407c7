package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// TestE2EDataExchange is "zéro justificatif" on real processes and a
// private Redis: a login at the demo SP with data scopes, then the demo SP
// fetches the tax and family data from both mock data providers over
// HTTP with its access token; each provider introspects the token at the
// broker (its log shows it) and answers what the scopes cover. On "+" the
// same with DPoP-bound tokens.
func TestE2EDataExchange(t *testing.T) {
	st := startStack(t, stackOptions{})
	t.Run("standard", func(t *testing.T) {
		before := st.logCount("providers", "dataprovider: call")
		res := demoSPLogin(t, st, newAgent(t), "impots", "angela-dubois")
		checkDataShown(t, res.Me)
		if n := st.logCount("providers", "dataprovider: call") - before; n < 3 {
			t.Errorf("the data providers logged %d calls, want one per endpoint (3)", n)
		}
		log := st.logText("providers")
		if !strings.Contains(log, `"dp":"dgfip"`) || !strings.Contains(log, `"dp":"cnaf"`) || !strings.Contains(log, st.Broker+": active") {
			t.Errorf("the providers' log does not show the introspection at the broker:\n%s", tail(log, 20))
		}
	})
	t.Run("plus", func(t *testing.T) {
		me := demoSPPlusLogin(t, st, newAgent(t), "eidas3", "france-identite", "angela-dubois")
		checkDataShown(t, me)
		if !strings.Contains(st.logText("providers"), `"scheme":"DPoP"`) {
			t.Error("no DPoP call reached the data providers on +")
		}
	})
}

// checkDataShown reads the demo SP's pre-filled form: figures from the
// DGFiP and from the CNAF.
func checkDataShown(t *testing.T, me *page) {
	t.Helper()
	if !strings.Contains(me.body, "Démarche pré-remplie par les administrations") {
		t.Error("demo SP /me has no pre-filled form")
	}
	// The reference tax income of the last two years, the tax shares, the
	// family quotient and the household, each field from its source.
	for _, id := range []string{"dgfip-rfr-2025", "dgfip-rfr-2024", "dgfip-nbpart-2025", "cnaf-qf", "cnaf-allocataire-1"} {
		if !me.has(id) {
			t.Errorf("demo SP /me has no field %s", id)
		}
	}
	for _, src := range []string{"Source\u00a0: DGFiP", "Source\u00a0: CNAF"} {
		if !strings.Contains(me.body, src) {
			t.Errorf("demo SP /me does not name its source %q", src)
		}
	}
	for _, bad := range []string{"ne vous connaît pas", "ne répond pas"} {
		if strings.Contains(me.body, bad) {
			t.Errorf("demo SP /me says %q: %s", bad, excerpt(me.body))
		}
	}
}

// logText is the whole log of the process name.
func (s *stack) logText(name string) string {
	for _, p := range s.procs {
		if p.name == name {
			return readFile(p.log)
		}
	}
	return ""
}

// A token of one platform is inactive on the other, both ways, though
// both platforms share one broker process and one Redis.
func TestE2EIntrospectionPlatformsApart(t *testing.T) {
	st := startStack(t, stackOptions{})
	r := newRP(t, st, demoSPID, oauth2.AuthStyleInHeader, "openid", "identite_pivot", "dgfip_rfr")
	code, _ := r.login(t, newAgent(t), "impots", "angela-dubois", loginHooks{})
	tok, err := r.exchange(t, code)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.introspectAt(t, st.Broker, tok.AccessToken); got["active"] != true || got["scope"] != "identite_pivot dgfip_rfr" {
		t.Fatalf("standard token at standard: %v", got)
	}
	if got := st.introspectAt(t, st.Plus, tok.AccessToken); len(got) != 1 || got["active"] != false {
		t.Fatalf("standard token at +: %v, want {active: false} alone", got)
	}

	p := newPlusRP(t, st, "eidas2")
	bl := newAgent(t).plusLogin(t, st, p.authURL(), "eidas2", "laposte", "angela-dubois", nil)
	ptok, err := p.exchange(t, bl.Final.Query().Get("code"), p.assertion(t, st.Plus))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.introspectAt(t, st.Plus, ptok.AccessToken); got["active"] != true || got["token_type"] != "DPoP" {
		t.Fatalf("+ token at +: %v", got)
	}
	if got := st.introspectAt(t, st.Broker, ptok.AccessToken); len(got) != 1 || got["active"] != false {
		t.Fatalf("+ token at standard: %v, want {active: false} alone", got)
	}
}

// introspectAt introspects token at a platform as the dgfip data provider
// would: its credentials, the JWT answer decrypted with its key and
// verified against the platform's /jwks.
func (s *stack) introspectAt(t *testing.T, issuer, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, issuer+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("dp-dgfip", "e2e-dp-dgfip-secret-0123456789abcdef")
	req.Header.Set("Accept", "application/token-introspection+jwt")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/token-introspection+jwt" {
		t.Fatalf("introspect at %s: %d %s %s", issuer, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	jwe, err := jose.ParseEncrypted(string(body), []jose.KeyAlgorithm{jose.ECDH_ES, jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatalf("introspection answer of %s is not a JWE: %v", issuer, err)
	}
	keys := s.DPKeys.Key(jwe.Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("JWE to kid %q, not a key of the provider", jwe.Header.KeyID)
	}
	inner, err := jwe.Decrypt(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(string(inner), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	_, jwks := getBody(t, issuer+"/jwks")
	var set jose.JSONWebKeySet
	_ = json.Unmarshal([]byte(jwks), &set)
	payload, err := jws.Verify(set)
	if err != nil {
		t.Fatalf("introspection answer does not verify against %s/jwks: %v", issuer, err)
	}
	var c struct {
		Iss    string         `json:"iss"`
		Aud    string         `json:"aud"`
		Answer map[string]any `json:"token_introspection"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Iss != issuer || c.Aud != "dp-dgfip" {
		t.Fatalf("introspection JWT of %s: %s", issuer, payload)
	}
	return c.Answer
}

func getBody(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
