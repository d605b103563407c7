package broker_test

// Checks that mutation testing found uncovered: each test fails when the
// check named in its comment is removed or weakened.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

const gapOtherSecret = "other-secret-0123456789abcdef0123456789"

// outcome sums up a token response: its error, or that tokens came.
func outcome(status int, out map[string]any) string {
	if e, ok := out["error"]; ok {
		return fmt.Sprintf("%d %v", status, e)
	}
	if out["id_token"] != nil {
		return fmt.Sprintf("%d with tokens", status)
	}
	return fmt.Sprintf("%d %v", status, out)
}

// secretForm is a code redemption by client_secret_post.
func secretForm(code, clientID, secret string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect},
		"client_id": {clientID}, "client_secret": {secret}}
}

// checkGrant: a code is bound to the client it was issued to, even when
// another registered client shares its redirect_uri.
func TestGapCodeRedeemedByAnotherClient(t *testing.T) {
	r := newRig(t, nil, false, withSP("other", func(sp *config.SP) { sp.ClientSecret = gapOtherSecret }))
	// The other SP's credentials are good: it redeems its own code.
	u, _, _ := r.login(t, authParams("client_id", "other"), "impots", "angela-dubois", nil)
	if status, out := r.Token(t, secretForm(u.Query().Get("code"), "other", gapOtherSecret), false); status != http.StatusOK {
		t.Fatalf("other SP redeeming its own code: %s", outcome(status, out))
	}
	u, _, _ = r.browser().login(t, authParams(), "impots", "angela-dubois", nil)
	status, out := r.Token(t, secretForm(u.Query().Get("code"), "other", gapOtherSecret), false)
	if status != http.StatusBadRequest || out["error"] != "invalid_grant" || out["id_token"] != nil {
		t.Fatalf("code of %s redeemed by other: %s, want 400 invalid_grant", teststack.SPID, outcome(status, out))
	}
}

// callback: a trip older than trip_ttl is refused.
func TestGapStaleTrip(t *testing.T) {
	r := newRig(t, nil, false, func(c *config.Config) { c.Broker.Platforms[0].TripTTL = config.Duration(2 * time.Second) })
	idpAuth := r.toIdP(t, authParams(), "impots")
	started := time.Now() // the trip was created before this
	cb := r.IdPLogin(t, idpAuth.String(), "angela-dubois", nil)
	// Within the limit a login goes through.
	if u, _, _ := r.browser().login(t, authParams(), "impots", "angela-dubois", nil); u.Query().Get("code") == "" {
		t.Fatalf("login within trip_ttl: %s", u)
	}
	time.Sleep(time.Until(started.Add(2500 * time.Millisecond)))
	resp, body := teststack.Get(t, r.Browser, cb)
	wantPage(t, resp, body, http.StatusBadRequest, "S190003")
}

// authenticateClient: an SP authenticates only with the methods it
// registered, even with the right secret.
func TestGapTokenAuthMethodNotRegistered(t *testing.T) {
	for _, c := range []struct {
		registered string
		useBasic   bool
	}{
		{"client_secret_post", true},
		{"client_secret_basic", false},
	} {
		t.Run(c.registered+" only", func(t *testing.T) {
			r := newRig(t, nil, false, onSP(func(sp *config.SP) { sp.TokenEndpointAuthMethods = []string{c.registered} }))
			form := func(basic bool) url.Values {
				f := url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {teststack.SPRedirect},
					"code": {r.Login(t, authParams(), "impots", "angela-dubois").Query().Get("code")}}
				if !basic {
					f.Set("client_id", teststack.SPID)
					f.Set("client_secret", teststack.SPSecret)
				}
				return f
			}
			if status, out := r.Token(t, form(!c.useBasic), !c.useBasic); status != http.StatusOK {
				t.Fatalf("registered method: %s", outcome(status, out))
			}
			status, out := r.Token(t, form(c.useBasic), c.useBasic)
			if status != http.StatusUnauthorized || out["error"] != "invalid_client" {
				t.Fatalf("unregistered method with the right secret: %s, want 401 invalid_client", outcome(status, out))
			}
		})
	}
}

// verifyAssertion: an assertion authenticates its own client only, not the
// client_id the form names.
func TestGapAssertionForAnotherClientID(t *testing.T) {
	r := newRig(t, nil, true, withSP("other", nil))
	p := authParams("acr_values", "eidas2")
	form := func(clientID, assertionOf string) url.Values {
		return url.Values{
			"grant_type": {"authorization_code"}, "redirect_uri": {teststack.SPRedirect},
			"code":      {r.Login(t, p, "laposte", "angela-dubois").Query().Get("code")},
			"client_id": {clientID}, "client_assertion": {r.assertion(t, assertionOf)},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		}
	}
	if status, out := r.Token(t, form(teststack.SPID, teststack.SPID), false); status != http.StatusOK {
		t.Fatalf("own assertion: %s", outcome(status, out))
	}
	for _, c := range []struct{ clientID, assertionOf string }{{"other", teststack.SPID}, {teststack.SPID, "other"}} {
		status, out := r.Token(t, form(c.clientID, c.assertionOf), false)
		if status != http.StatusUnauthorized || out["error"] != "invalid_client" {
			t.Errorf("client_id %s with an assertion of %s: %s, want 401 invalid_client", c.clientID, c.assertionOf, outcome(status, out))
		}
	}
}

// consent and endSession: a form without the session's CSRF token does
// nothing. Each case runs in its own browser, so one cannot hide another.
func TestGapCSRF(t *testing.T) {
	r := newRig(t, nil, false)
	// atConsent brings a new browser to the information page and returns
	// it with the page's CSRF token.
	atConsent := func(t *testing.T) (*rig, string) {
		b := r.browser()
		resp, _ := b.callback(t, authParams(), "impots", "angela-dubois", nil)
		wantLocation(t, resp, "/authorize/consent")
		_, page := teststack.Get(t, b.Browser, b.BrokerURL+"/authorize/consent")
		return b, teststack.Field(t, teststack.CSRFRE, page)
	}
	// loggedIn is a new browser with a session, and the logout page's
	// CSRF token.
	loggedIn := func(t *testing.T) (*rig, string) {
		b, csrf := atConsent(t)
		teststack.Post(t, b.Browser, b.BrokerURL+"/authorize/consent", url.Values{"csrf": {csrf}})
		_, page := teststack.Get(t, b.Browser, b.BrokerURL+"/session/end")
		return b, teststack.Field(t, teststack.CSRFRE, page)
	}
	cases := []struct {
		name string
		csrf func(real string) []string
	}{
		{"missing", func(string) []string { return nil }},
		{"empty", func(string) []string { return []string{""} }},
		{"wrong", func(real string) []string { return []string{"forged-" + real[:8]} }},
	}
	for _, c := range cases {
		t.Run("consent "+c.name, func(t *testing.T) {
			b, csrf := atConsent(t)
			resp, body := teststack.Post(t, b.Browser, b.BrokerURL+"/authorize/consent", url.Values{"csrf": c.csrf(csrf)})
			wantPage(t, resp, body, http.StatusForbidden, "S190004")
			// The step is still there for the real form.
			resp, _ = teststack.Post(t, b.Browser, b.BrokerURL+"/authorize/consent", url.Values{"csrf": {csrf}})
			if u, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || u.Query().Get("code") == "" {
				t.Fatalf("consent with its csrf: %d %.80q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	for _, c := range cases {
		t.Run("logout "+c.name, func(t *testing.T) {
			b, csrf := loggedIn(t)
			resp, body := teststack.Post(t, b.Browser, b.BrokerURL+"/session/end", url.Values{"confirm": {"1"}, "csrf": c.csrf(csrf)})
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="confirm-logout"`) {
				t.Errorf("logout confirmation without its csrf: %d %.80q, want the confirmation page again", resp.StatusCode, resp.Header.Get("Location"))
			}
			// The session survives: SSO still finds it.
			b.sso(t, authParams())
		})
	}
	// The real confirmation logs out.
	b, csrf := loggedIn(t)
	if resp, _ := teststack.Post(t, b.Browser, b.BrokerURL+"/session/end", url.Values{"confirm": {"1"}, "csrf": {csrf}}); resp.StatusCode >= 400 {
		t.Fatalf("confirmed logout: %d", resp.StatusCode)
	}
	wantLocation(t, b.authorize(t, authParams()), "/authorize/choose")
}

// validateSPCrypto: a "+" platform signs with ES256 only.
func TestGapPlusRefusesRS256IDTokens(t *testing.T) {
	k, err := plusKeysOnce()
	if err != nil {
		t.Fatal(err)
	}
	file := func(level, alg string) []byte {
		return fmt.Appendf(nil, `
broker:
  sub_secret: "0123456789abcdef0123456789abcdef"
  session_keys: ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"]
  identity_providers:
    - {id: idp, issuer: "https://idp.example", client_id: sesame, client_secret: "idp-secret-0123456789abcdef0123456789", acr_values: [eidas1, eidas2, eidas3]}
  platforms:
    - id: %[1]s
      level: %[1]s
      listen: "127.0.0.1:0"
      issuer: https://sesame.example
      identity_providers: [idp]
      service_providers:
        - client_id: rs-sp
          sector: a
          redirect_uris: ["https://sp.example/cb"]
          token_endpoint_auth_methods: [private_key_jwt]
          jwks: '%[3]s'
          id_token_signed_response_alg: "%[2]s"
`, level, alg, k.jwks)
	}
	for _, ok := range [][2]string{{"standard", "RS256"}, {"plus", "ES256"}, {"plus", ""}} {
		if _, err := config.Parse("rs.yaml", file(ok[0], ok[1])); err != nil {
			t.Fatalf("%s with %q refused: %v", ok[0], ok[1], err)
		}
	}
	_, err = config.Parse("rs.yaml", file("plus", "RS256"))
	want := `rs.yaml: 1 problem(s):
  - rs.yaml:19:11: broker.platforms[0] (plus).service_providers[0] (rs-sp): id_token_signed_response_alg: "RS256": a plus platform signs with ES256 only`
	if !errors.Is(err, config.ErrInvalid) || err.Error() != want {
		t.Fatalf("RS256 id_tokens on plus: %v\nwant:\n%s", err, want)
	}
}

// session (fixed TTL on "+"): the session dies session_ttl after it began,
// however recently it was used.
func TestGapPlusSessionFixedLifetime(t *testing.T) {
	r := newRig(t, nil, true, func(c *config.Config) { c.Broker.Platforms[0].SessionTTL = config.Duration(2 * time.Second) })
	p := authParams("acr_values", "eidas2")
	start := time.Now() // the session begins after this
	r.login(t, p, "laposte", "angela-dubois", nil)
	time.Sleep(time.Until(start.Add(time.Second)))
	r.sso(t, p) // used at 1 s: SSO serves it
	time.Sleep(time.Until(start.Add(2300 * time.Millisecond)))
	wantSPError(t, r, r.authorize(t, authParams("acr_values", "eidas2", "prompt", "none")), "login_required")
	wantLocation(t, r.authorize(t, p), "/authorize/choose")
}

// rawIDToken redeems an authorization response's code by
// client_secret_post and returns the id_token as sent.
func rawIDToken(t *testing.T, s *teststack.Stack, clientID string, u *url.URL) string {
	t.Helper()
	status, out := s.Token(t, secretForm(u.Query().Get("code"), clientID, teststack.SPSecret), false)
	raw, _ := out["id_token"].(string)
	if status != http.StatusOK || raw == "" {
		t.Fatalf("token for %s: %s", clientID, outcome(status, out))
	}
	return raw
}

// verifyHint and its callers: an id_token_hint counts only when we issued
// it, on this platform, to the client that sends it.
func TestGapForeignIDTokenHint(t *testing.T) {
	r := newRig(t, nil, false, withSP("other", nil)) // same sector: same sub
	own := rawIDToken(t, r.Stack, teststack.SPID, r.Login(t, authParams(), "impots", "angela-dubois"))
	toOther := rawIDToken(t, r.Stack, "other", r.Login(t, authParams("client_id", "other"), "impots", "angela-dubois"))

	jws, err := jose.ParseSigned(own, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		t.Fatal(err)
	}
	// Our claims, under our kid, signed by a key we do not have.
	foreignKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: foreignKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", jws.Signatures[0].Header.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	// Our key, another issuer.
	elsewhere := map[string]any{}
	for k, v := range claims {
		elsewhere[k] = v
	}
	elsewhere["iss"] = "https://elsewhere.example"
	otherIss, err := r.Platform.Signer().SignJWT(jose.ES256, "JWT", elsewhere)
	if err != nil {
		t.Fatal(err)
	}
	// A real id_token of another platform for the same user and client_id
	// (same sub_secret and sector: same sub).
	s2 := teststack.New(t)
	otherPlatform := rawIDToken(t, s2, teststack.SPID, s2.Login(t, authParams(), "impots", "angela-dubois"))

	hints := []struct{ name, hint string }{
		{"issued to another SP", toOther},
		{"signed by a foreign key", forged},
		{"foreign iss", otherIss},
		{"from another platform", otherPlatform},
	}
	for _, h := range hints {
		t.Run("authorize "+h.name, func(t *testing.T) {
			wantSPError(t, r, r.authorize(t, authParams("id_token_hint", h.hint)), "invalid_request")
		})
	}
	// Each logout case in a browser of its own, so that a session one case
	// wrongly ends cannot hide the next case.
	loggedIn := func(t *testing.T) *rig {
		b := r.browser()
		b.Login(t, authParams(), "impots", "angela-dubois")
		return b
	}
	for _, h := range hints {
		t.Run("logout "+h.name, func(t *testing.T) {
			b := loggedIn(t)
			q := url.Values{"id_token_hint": {h.hint}}
			if h.hint == toOther {
				q.Set("client_id", teststack.SPID)
			}
			resp, body := teststack.Get(t, b.Browser, b.BrokerURL+"/session/end?"+q.Encode())
			wantPage(t, resp, body, http.StatusBadRequest, "S030010")
			// The session survives: SSO still finds it.
			b.sso(t, authParams())
		})
	}
	// The SP's own hint is honoured: SSO, then logout without a question.
	b := loggedIn(t)
	wantLocation(t, b.authorize(t, authParams("id_token_hint", own)), "/authorize/consent")
	resp, body := teststack.Get(t, b.Browser, b.BrokerURL+"/session/end?"+url.Values{"id_token_hint": {own}}.Encode())
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), b.IdPURL+"/impots/") {
		t.Fatalf("logout with the SP's own hint: %d %.80q, want the IdP's end_session\n%.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	wantLocation(t, b.authorize(t, authParams()), "/authorize/choose")
}
