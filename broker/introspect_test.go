package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
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

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/testredis"
)

const (
	dpID     = "dp-dgfip"
	dpSecret = "dp-dgfip-secret-0123456789abcdef0123456"
)

// dpEncKey is the data provider's encryption key (its private half).
var dpEncKey = func() jose.JSONWebKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return jose.JSONWebKey{Key: k, KeyID: "dp-enc", Algorithm: "ECDH-ES", Use: "enc"}
}()

// withData registers the dgfip data provider (scopes dgfip_rfr and
// identite_pivot) and its catalogue, and grants the test SP dgfip_rfr and
// cnaf_qf (served by nobody here but in the catalogue).
func withData(mod func(*config.DataProvider)) teststack.Option {
	return func(c *config.Config) {
		c.Broker.DataScopes = []config.DataScope{
			{Scope: "dgfip_rfr", Provider: "dgfip", Claims: []string{"revenu_fiscal_de_reference"}, LabelFR: "Revenu fiscal de référence (DGFiP)", LabelEN: "Reference tax income (DGFiP)"},
			{Scope: "dgfip_nbpart", Provider: "dgfip", Claims: []string{"nombre_de_parts"}, LabelFR: "Nombre de parts (DGFiP)"},
		}
		pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{dpEncKey.Public()}})
		dp := config.DataProvider{ID: "dgfip", Name: "DGFiP", ClientID: dpID, ClientSecret: dpSecret, JWKS: string(pub),
			Scopes: []string{"dgfip_rfr", "dgfip_nbpart", "identite_pivot"}}
		if mod != nil {
			mod(&dp)
		}
		pl := &c.Broker.Platforms[0]
		pl.DataProviders = append(pl.DataProviders, dp)
		pl.ServiceProviders[0].Scopes = append(pl.ServiceProviders[0].Scopes, "dgfip_rfr")
	}
}

// dataLogin logs in with the data scope and returns the token response.
func dataLogin(t *testing.T, s *teststack.Stack, idp string) map[string]any {
	t.Helper()
	p := teststack.AuthParams()
	p.Set("scope", "openid identite_pivot email dgfip_rfr")
	u := s.WithBrowser().Login(t, p, idp, "angela-dubois")
	st, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, out)
	}
	return out
}

// introspect calls /introspect as the data provider (Basic) with extra
// headers, and returns the status, the Content-Type and the body.
func introspect(t *testing.T, s *teststack.Stack, token string, hdr http.Header) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(dpID, dpSecret)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func introspectJSON(t *testing.T, s *teststack.Stack, token string) map[string]any {
	t.Helper()
	st, ct, body := introspect(t, s, token, nil)
	var out map[string]any
	if st != http.StatusOK || !strings.HasPrefix(ct, "application/json") || json.Unmarshal([]byte(body), &out) != nil {
		t.Fatalf("introspect: %d %s %s", st, ct, body)
	}
	return out
}

func idTokenSub(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	_ = tok.UnsafeClaimsWithoutVerification(&c)
	return c.Subject
}

// Introspection (RFC 7662) for a data provider: active, its scopes only, a
// sub pairwise for it (not the SP's, the same through another IdP), the
// pivot identity its scopes allow, and the token's own iat, exp, jti.
func TestIntrospection(t *testing.T) {
	bothStores(t, func(t *testing.T, opts ...teststack.Option) {
		s := teststack.New(t, append(opts, withData(nil))...)
		out := dataLogin(t, s, "impots")
		res := introspectJSON(t, s, out["access_token"].(string))
		spSub := idTokenSub(t, out["id_token"].(string))
		if res["active"] != true || res["scope"] != "identite_pivot dgfip_rfr" || res["client_id"] != teststack.SPID || res["aud"] != teststack.SPID ||
			res["family_name"] != "Dubois" || res["birthdate"] != "1962-08-24" || res["iss"] != s.BrokerURL || res["token_type"] != "Bearer" {
			t.Fatalf("introspection: %v", res)
		}
		// email was granted to the SP, not served by this provider.
		if _, ok := res["email"]; ok {
			t.Errorf("the provider got a claim of a scope it does not serve: %v", res)
		}
		if sub, _ := res["sub"].(string); sub == "" || sub == spSub {
			t.Fatalf("data provider sub %q, want one of its own, not the SP's %q", res["sub"], spSub)
		}
		iat, _ := res["iat"].(float64)
		exp, _ := res["exp"].(float64)
		if exp-iat != 60 || res["jti"] == "" || time.Since(time.Unix(int64(iat), 0)) > time.Minute {
			t.Errorf("iat %v exp %v jti %v", res["iat"], res["exp"], res["jti"])
		}
		// The same person through another IdP: the same subs.
		other := dataLogin(t, s, "laposte")
		res2 := introspectJSON(t, s, other["access_token"].(string))
		if res2["sub"] != res["sub"] || idTokenSub(t, other["id_token"].(string)) != spSub {
			t.Errorf("subs across IdPs: dp %v vs %v", res2["sub"], res["sub"])
		}
	})
}

// What is inactive: unknown, an id_token, a huge token, an expired one, a
// revoked one, one after logout, another platform's. Always 200 and
// {"active":false} alone.
func TestIntrospectionInactive(t *testing.T) {
	s := teststack.New(t, withData(nil), func(c *config.Config) {
		c.Broker.Platforms[0].AccessTokenTTL = config.Duration(1500 * time.Millisecond)
	})
	other := teststack.New(t, withData(nil))
	inactive := func(name, token string) {
		t.Helper()
		st, ct, body := introspect(t, s, token, nil)
		if st != http.StatusOK || !strings.HasPrefix(ct, "application/json") || strings.TrimSpace(body) != `{"active":false}` {
			t.Errorf("%s: %d %s %q, want 200 {\"active\":false}", name, st, ct, body)
		}
	}
	out := dataLogin(t, s, "impots")
	inactive("unknown", "x")
	inactive("id_token", out["id_token"].(string))
	inactive("huge", strings.Repeat("a", 5000))
	inactive("another platform's", dataLogin(t, other, "impots")["access_token"].(string))
	time.Sleep(1600 * time.Millisecond)
	inactive("expired", out["access_token"].(string))
}

// The data provider's JWT answer (RFC 9701): signed with the platform's
// key (verified against /jwks), typed, for the provider; encrypted to its
// key when it registered encryption.
func TestIntrospectionJWT(t *testing.T) {
	check := func(t *testing.T, s *teststack.Stack, raw string) map[string]any {
		t.Helper()
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("not a JWS: %v", err)
		}
		if typ, _ := tok.Headers[0].ExtraHeaders["typ"].(string); typ != "token-introspection+jwt" {
			t.Errorf("typ %q", typ)
		}
		_, jwks := teststack.Get(t, http.DefaultClient, s.BrokerURL+"/jwks")
		var set jose.JSONWebKeySet
		_ = json.Unmarshal([]byte(jwks), &set)
		var c struct {
			Iss    string         `json:"iss"`
			Aud    string         `json:"aud"`
			Iat    int64          `json:"iat"`
			Answer map[string]any `json:"token_introspection"`
		}
		if err := tok.Claims(set, &c); err != nil {
			t.Fatalf("does not verify against /jwks: %v", err)
		}
		if c.Iss != s.BrokerURL || c.Aud != dpID || c.Iat == 0 || c.Answer["active"] != true {
			t.Fatalf("JWT answer %+v", c)
		}
		return c.Answer
	}
	t.Run("signed, on Accept", func(t *testing.T) {
		s := teststack.New(t, withData(nil))
		at := dataLogin(t, s, "impots")["access_token"].(string)
		st, ct, body := introspect(t, s, at, http.Header{"Accept": {"application/token-introspection+jwt"}})
		if st != http.StatusOK || ct != "application/token-introspection+jwt" {
			t.Fatalf("%d %s", st, ct)
		}
		check(t, s, body)
	})
	t.Run("encryption registered: JSON unless asked", func(t *testing.T) {
		s := teststack.New(t, withData(func(dp *config.DataProvider) { dp.IntrospectionEncryptedResponseAlg = "ECDH-ES" }))
		at := dataLogin(t, s, "impots")["access_token"].(string)
		if st, ct, _ := introspect(t, s, at, nil); st != http.StatusOK || !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("a plain RFC 7662 call: %d %s, want JSON", st, ct)
		}
		st, ct, body := introspect(t, s, at, http.Header{"Accept": {"application/token-introspection+jwt"}})
		if st != http.StatusOK || ct != "application/token-introspection+jwt" {
			t.Fatalf("%d %s", st, ct)
		}
		jwe, err := jose.ParseEncrypted(body, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
		if err != nil {
			t.Fatalf("asked JWT, registered for encryption, not a JWE: %v", err)
		}
		inner, err := jwe.Decrypt(dpEncKey.Key)
		if err != nil {
			t.Fatal(err)
		}
		check(t, s, string(inner))
	})
	t.Run("signed then encrypted, registered", func(t *testing.T) {
		s := teststack.New(t, withData(func(dp *config.DataProvider) {
			dp.IntrospectionSignedResponseAlg, dp.IntrospectionEncryptedResponseAlg = "ES256", "ECDH-ES"
		}))
		at := dataLogin(t, s, "impots")["access_token"].(string)
		st, ct, body := introspect(t, s, at, nil)
		if st != http.StatusOK || ct != "application/token-introspection+jwt" {
			t.Fatalf("%d %s", st, ct)
		}
		jwe, err := jose.ParseEncrypted(body, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
		if err != nil {
			t.Fatalf("not a JWE: %v", err)
		}
		inner, err := jwe.Decrypt(dpEncKey.Key)
		if err != nil {
			t.Fatalf("does not decrypt with the provider's key: %v", err)
		}
		if res := check(t, s, string(inner)); res["scope"] != "identite_pivot dgfip_rfr" {
			t.Errorf("scope %v", res["scope"])
		}
	})
}

// Bad callers get clear errors and no data: no credentials, a wrong
// secret, an SP's credentials, the token in the query, no token, a JSON
// body.
func TestIntrospectionBadCallers(t *testing.T) {
	s := teststack.New(t, withData(nil))
	at := dataLogin(t, s, "impots")["access_token"].(string)
	call := func(target, body, user, pass, ct string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	form := url.Values{"token": {at}}.Encode()
	for name, c := range map[string]struct {
		target, body, user, pass, ct string
		status                       int
		code                         string
	}{
		"no credentials":      {"/introspect", form, "", "", "application/x-www-form-urlencoded", 401, "invalid_client"},
		"wrong secret":        {"/introspect", form, dpID, "wrong", "application/x-www-form-urlencoded", 401, "invalid_client"},
		"an SP's credentials": {"/introspect", form, teststack.SPID, teststack.SPSecret, "application/x-www-form-urlencoded", 401, "invalid_client"},
		"token in the query":  {"/introspect?" + form, "", dpID, dpSecret, "application/x-www-form-urlencoded", 400, "invalid_request"},
		"no token":            {"/introspect", "", dpID, dpSecret, "application/x-www-form-urlencoded", 400, "invalid_request"},
		"JSON body":           {"/introspect", `{"token":"` + at + `"}`, dpID, dpSecret, "application/json", 400, "invalid_request"},
	} {
		st, body := call(s.BrokerURL+c.target, c.body, c.user, c.pass, c.ct)
		if st != c.status || !strings.Contains(body, `"error":"`+c.code+`"`) || strings.Contains(body, "Dubois") {
			t.Errorf("%s: %d %s, want %d %s", name, st, body, c.status, c.code)
		}
	}
}

// Revocation (RFC 7009) and logout make a token inactive at introspection
// and refused at userinfo; another SP cannot revoke it.
func TestRevocation(t *testing.T) {
	bothStores(t, func(t *testing.T, opts ...teststack.Option) {
		s := teststack.New(t, append(opts, withData(nil), withSP("other", func(*config.SP) {}))...)
		revoke := func(token, client, secret string) int {
			req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/revoke", strings.NewReader(url.Values{"token": {token}, "token_type_hint": {"access_token"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(client, secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		at := dataLogin(t, s, "impots")["access_token"].(string)
		if st := revoke(at, "other", teststack.SPSecret); st != http.StatusOK {
			t.Fatalf("revocation by another SP: %d, want 200 (that tells nothing)", st)
		}
		if introspectJSON(t, s, at)["active"] != true {
			t.Fatal("another SP revoked the token")
		}
		if st := revoke(at, teststack.SPID, "wrong-secret"); st != http.StatusUnauthorized {
			t.Fatalf("revocation with a wrong secret: %d", st)
		}
		if st := revoke(at, teststack.SPID, teststack.SPSecret); st != http.StatusOK {
			t.Fatalf("revocation: %d", st)
		}
		if introspectJSON(t, s, at)["active"] != false || s.UserinfoStatus(t, "Bearer "+at) != http.StatusUnauthorized {
			t.Fatal("a revoked token still works")
		}
		if st := revoke(at, teststack.SPID, teststack.SPSecret); st != http.StatusOK {
			t.Fatalf("revoking again: %d, want 200", st)
		}

		b := s.WithBrowser()
		p := teststack.AuthParams()
		p.Set("scope", "openid identite_pivot dgfip_rfr")
		u := b.Login(t, p, "impots", "angela-dubois")
		_, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
		at = out["access_token"].(string)
		teststack.Get(t, b.Browser, s.BrokerURL+"/session/end?"+url.Values{"id_token_hint": {out["id_token"].(string)}}.Encode())
		if introspectJSON(t, s, at)["active"] != false {
			t.Fatal("a token survived its session's logout at introspection")
		}
	})
}

// Data scopes: one of the catalogue that the SP was not granted is
// invalid_scope; an unknown scope is dropped.
func TestDataScopeGrants(t *testing.T) {
	s := teststack.New(t, withData(nil))
	p := teststack.AuthParams()
	p.Set("scope", "openid dgfip_nbpart")
	resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+p.Encode())
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "invalid_scope" || loc.Query().Get("state") != "state-1" {
		t.Fatalf("a data scope not granted: %s", loc)
	}
	p.Set("scope", "openid dgfip_rfr unknown_scope")
	resp, _ = teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+p.Encode())
	if resp.Header.Get("Location") != "/authorize/choose" {
		t.Fatalf("an unknown scope was not dropped: %s", resp.Header.Get("Location"))
	}
}

// The FranceConnect-compatible checktoken: token, client_id and
// client_secret in the form, a JWT answer; anything else is refused as FC
// does.
func TestChecktoken(t *testing.T) {
	s := teststack.New(t, withData(nil))
	at := dataLogin(t, s, "impots")["access_token"].(string)
	post := func(f url.Values) (int, string, string) {
		resp, err := http.PostForm(s.BrokerURL+"/api/v2/checktoken", f)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	st, ct, body := post(url.Values{"token": {at}, "client_id": {dpID}, "client_secret": {dpSecret}})
	if st != http.StatusOK || ct != "application/token-introspection+jwt" || strings.Count(body, ".") != 2 {
		t.Fatalf("checktoken: %d %s %s", st, ct, body)
	}
	if st, _, body := post(url.Values{"token": {at}, "client_id": {dpID}, "client_secret": {dpSecret}, "extra": {"x"}}); st != http.StatusBadRequest || !strings.Contains(body, "Required parameter missing or invalid.") {
		t.Errorf("checktoken with an extra field: %d %s", st, body)
	}
	if st, _, _ := post(url.Values{"token": {at}, "client_id": {dpID}, "client_secret": {"wrong-secret-0123456789abcdef0123456789"}}); st != http.StatusUnauthorized {
		t.Errorf("checktoken with a wrong secret: %d", st)
	}
}

type auditRecorder struct {
	mu     sync.Mutex
	events []audit.Event
}

func (a *auditRecorder) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

// Every introspection leaves one audit event (provider, SP, scopes,
// outcome; the person as an account id only), refused ones too.
func TestIntrospectionAudit(t *testing.T) {
	r := testredis.Start(t)
	s := teststack.New(t, withData(nil), teststack.RedisURL(r.URL()))
	rec := &auditRecorder{}
	b, err := broker.New(s.Config.Broker, slog.New(slog.NewTextHandler(io.Discard, nil)), broker.WithAudit(rec))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := httptest.NewServer(b.Platforms[0])
	defer srv.Close()
	replica := *s
	replica.BrokerURL = srv.URL
	at := dataLogin(t, s, "impots")["access_token"].(string)
	introspectJSON(t, &replica, at)
	introspectJSON(t, &replica, "unknown")
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/introspect", strings.NewReader("token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(dpID, "wrong")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if len(rec.events) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(rec.events), rec.events)
	}
	ok, inactive, refused := rec.events[0], rec.events[1], rec.events[2]
	if ok.Name != audit.Introspection || ok.Outcome != "ok" || ok.SP != teststack.SPID || ok.DataProvider != dpID ||
		strings.Join(ok.Scopes, " ") != "identite_pivot dgfip_rfr" || len(ok.Account) != 32 || ok.CorrelationID == "" {
		t.Errorf("event of a good introspection: %+v", ok)
	}
	if inactive.Outcome != "inactive" || refused.Outcome != "invalid_client" || refused.DataProvider != dpID {
		t.Errorf("events: %+v %+v", inactive, refused)
	}
	for _, e := range rec.events {
		if raw, _ := json.Marshal(e); strings.Contains(string(raw), "Dubois") || strings.Contains(string(raw), "1962") {
			t.Errorf("an identity attribute in an audit event: %s", raw)
		}
	}
}

// config's list of identity scopes (for check-config) is the broker's.
func TestIdentityScopesAgree(t *testing.T) {
	got := broker.Scopes()
	want := slices.Clone(config.IdentityScopes)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("broker scopes %v, config.IdentityScopes %v", got, want)
	}
}

// The information page tells the citizen which data the service may
// fetch, with the catalogue's labels, in French or English.
func TestDataScopeLabels(t *testing.T) {
	s := teststack.New(t, withData(nil))
	p := teststack.AuthParams()
	p.Set("scope", "openid identite_pivot dgfip_rfr")
	teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+p.Encode())
	cb := s.IdPLogin(t, s.Choose(t, "impots"), "angela-dubois", nil)
	teststack.Get(t, s.Browser, teststack.Abs(s.BrokerURL, cb))
	_, fr := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/consent")
	if !strings.Contains(fr, `id="data-scopes"`) || !strings.Contains(fr, "Revenu fiscal de référence (DGFiP)") {
		t.Fatalf("information page without the data scope's label:\n%s", fr)
	}
	req, _ := http.NewRequest(http.MethodGet, s.BrokerURL+"/authorize/consent", nil)
	req.Header.Set("Accept-Language", "en")
	resp, err := s.Browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	en, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(en), "Reference tax income (DGFiP)") {
		t.Fatal("no English label")
	}
}

// The provider gets the pivot identity its own scopes allow as soon as the
// token carries one of its data scopes, even when the SP did not ask for
// the identity; without one of its data scopes, no identity at all.
func TestIntrospectionIdentityForTheProvider(t *testing.T) {
	s := teststack.New(t, withData(nil))
	login := func(scope string) string {
		p := teststack.AuthParams()
		p.Set("scope", scope)
		u := s.WithBrowser().Login(t, p, "impots", "angela-dubois")
		_, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
		return out["access_token"].(string)
	}
	res := introspectJSON(t, s, login("openid dgfip_rfr"))
	if res["scope"] != "dgfip_rfr" || res["family_name"] != "Dubois" || res["birthplace"] != "75107" {
		t.Errorf("data scope only: %v, want the identity for the provider", res)
	}
	res = introspectJSON(t, s, login("openid identite_pivot"))
	if res["active"] != true || res["scope"] != "identite_pivot" {
		t.Fatalf("identity only: %v", res)
	}
	if _, ok := res["family_name"]; ok {
		t.Errorf("no data scope of the provider, yet it got the identity: %v", res)
	}
}
