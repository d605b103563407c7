package providers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// loggedIn runs a login at idp and returns the id_token and access token.
func (h *harness) loggedIn(idp string) (idToken, accessToken string) {
	h.t.Helper()
	resp, tok := h.tokenRequest(idp, codeForm(h.code(idp, nil)), testClientID, testSecret)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("token: %d %v", resp.StatusCode, tok)
	}
	return tok["id_token"].(string), tok["access_token"].(string)
}

func TestEndSession(t *testing.T) {
	h := newHarness(t)
	idt, at := h.loggedIn("impots")
	_, at2 := h.loggedIn("impots") // another login, which must survive
	q := url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {testPostLogin}, "state": {"bye"}}
	resp, body := h.get(h.issuer("impots") + "/end_session?" + q.Encode())
	back := redirectTarget(t, resp, body)
	if got := back.Scheme + "://" + back.Host + back.Path; got != testPostLogin || back.Query().Get("state") != "bye" {
		t.Fatalf("redirected to %s", back)
	}
	if resp := h.userinfo("impots", at); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token of an ended login still works: %d", resp.StatusCode)
	}
	if resp := h.userinfo("impots", at2); resp.StatusCode != http.StatusOK {
		t.Errorf("another login was ended too: %d", resp.StatusCode)
	}
}

// Logging out long after the id_token expired is normal.
func TestEndSessionAcceptsExpiredHint(t *testing.T) {
	h := newHarness(t)
	idt, _ := h.loggedIn("laposte")
	h.advance(24 * time.Hour)
	q := url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {testPostLogin}}
	resp, body := h.get(h.issuer("laposte") + "/end_session?" + q.Encode())
	redirectTarget(t, resp, body)
}

func TestEndSessionRefusals(t *testing.T) {
	h := newHarness(t)
	idt, _ := h.loggedIn("impots")
	otherIdt, _ := h.loggedIn("laposte")
	for name, q := range map[string]url.Values{
		"unregistered post_logout_redirect_uri": {"id_token_hint": {idt}, "post_logout_redirect_uri": {"http://evil.test/"}, "state": {"s"}},
		"redirect uri as post_logout":           {"id_token_hint": {idt}, "post_logout_redirect_uri": {testRedirect}},
		"no client to match against":            {"post_logout_redirect_uri": {testPostLogin}},
		"hint of another IdP":                   {"id_token_hint": {otherIdt}, "post_logout_redirect_uri": {testPostLogin}},
		"tampered hint":                         {"id_token_hint": {idt[:len(idt)-4] + "AAAA"}, "post_logout_redirect_uri": {testPostLogin}},
		"client_id contradicts hint":            {"id_token_hint": {idt}, "client_id": {"other"}, "post_logout_redirect_uri": {testPostLogin}},
	} {
		resp, page := h.get(h.issuer("impots") + "/end_session?" + q.Encode())
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(page, "S7004") {
			t.Errorf("%s: status %d, Location %q; want an error page", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// With client_id instead of a hint, a registered URI is accepted.
	q := url.Values{"client_id": {testClientID}, "post_logout_redirect_uri": {testPostLogin}}
	resp, body := h.get(h.issuer("impots") + "/end_session?" + q.Encode())
	if back := redirectTarget(t, resp, body); back.Query().Has("state") {
		t.Errorf("state added though none was sent: %s", back)
	}
}

func TestEndSessionWithoutRedirectShowsPage(t *testing.T) {
	h := newHarness(t)
	idt, _ := h.loggedIn("laposte")
	resp, page := h.get(h.issuer("laposte") + "/end_session?id_token_hint=" + url.QueryEscape(idt))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "déconnecté") {
		t.Fatalf("status %d:\n%s", resp.StatusCode, page)
	}
}

// A hint signed with the IdP's own key but naming another issuer (as a
// future "wrong iss" scenario would produce) is still refused.
func TestVerifyHintChecksIssuerAndAudience(t *testing.T) {
	h := newHarness(t)
	idp := h.s.idpByID("impots")
	for name, c := range map[string]idTokenClaims{
		"other issuer":   {Issuer: h.issuer("laposte"), Audience: testClientID, Subject: "x"},
		"unknown client": {Issuer: idp.issuer, Audience: "nobody", Subject: "x"},
	} {
		raw, err := idp.keys.SignJWT(jose.ES256, "", c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := idp.verifyHint(raw); err == nil {
			t.Errorf("%s: hint accepted", name)
		}
	}
	raw, _ := idp.keys.SignJWT(jose.RS256, "", idTokenClaims{Issuer: idp.issuer, Audience: testClientID})
	if _, err := idp.verifyHint(raw); err != nil {
		t.Errorf("RS256 hint of this IdP refused: %v", err)
	}
}
