package broker_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

// Back-channel logout: when a session ends, each SP that got a code in it
// receives a logout token (typ logout+jwt; iss, aud, iat, exp, jti, sid,
// sub, events; no nonce) signed with a key of /jwks. The citizen's logout
// never waits on the SP, and an SP that is down does not stop it.
func TestBackchannelLogout(t *testing.T) {
	got := make(chan string, 4)
	sp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.ParseForm() == nil {
			got <- r.PostForm.Get("logout_token")
		}
	}))
	defer sp.Close()
	s := teststack.New(t, func(c *config.Config) {
		c.Broker.Platforms[0].ServiceProviders[0].BackchannelLogoutURI = sp.URL + "/backchannel"
	})

	u := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois")
	status, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, out)
	}
	idt, err := jwt.ParseSigned(out["id_token"].(string), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		Sub string `json:"sub"`
		SID string `json:"sid"`
	}
	_ = idt.UnsafeClaimsWithoutVerification(&id)
	if id.SID == "" {
		t.Fatal("the id_token has no sid")
	}

	end := url.Values{"id_token_hint": {out["id_token"].(string)}, "post_logout_redirect_uri": {"https://sp.example/bye"}, "state": {"bye"}}
	resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/session/end?"+end.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	var raw string
	select {
	case raw = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no logout token reached the SP")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if typ, _ := tok.Headers[0].ExtraHeaders["typ"].(string); typ != "logout+jwt" {
		t.Errorf("typ %q, want logout+jwt", typ)
	}
	_, body := teststack.Get(t, http.DefaultClient, s.BrokerURL+"/jwks")
	var set jose.JSONWebKeySet
	_ = json.Unmarshal([]byte(body), &set)
	var claims map[string]any
	if err := tok.Claims(set, &claims); err != nil {
		t.Fatalf("logout token does not verify against /jwks: %v", err)
	}
	events, _ := claims["events"].(map[string]any)
	if _, ok := events["http://schemas.openid.net/event/backchannel-logout"]; !ok {
		t.Errorf("events: %v", claims["events"])
	}
	if claims["iss"] != s.BrokerURL || claims["aud"] != teststack.SPID || claims["sub"] != id.Sub || claims["sid"] != id.SID || claims["jti"] == nil || claims["nonce"] != nil {
		t.Errorf("logout token claims: %v", claims)
	}
	if claims["exp"].(float64) <= claims["iat"].(float64) {
		t.Errorf("exp %v not after iat %v", claims["exp"], claims["iat"])
	}

	// An SP that is down: the citizen's logout completes all the same.
	sp.Close()
	b := s.WithBrowser()
	u = b.Login(t, teststack.AuthParams(), "impots", "angela-dubois")
	_, out = b.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
	end.Set("id_token_hint", out["id_token"].(string))
	if resp, _ := teststack.Get(t, b.Browser, b.BrokerURL+"/session/end?"+end.Encode()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout with the SP down: %d", resp.StatusCode)
	}
}
