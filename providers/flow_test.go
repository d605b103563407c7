package providers

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestCodeFlow runs a full authorization code flow with PKCE against a mock
// IdP, driven by go-oidc and x/oauth2 as a real relying party would.
func TestCodeFlow(t *testing.T) {
	for _, tc := range []struct {
		name, idp, identity, acrValues, wantACR string
		style                                   oauth2.AuthStyle
	}{
		{"basic auth, highest supported level", "laposte", "helene-lefevre", "eidas1 eidas3", "eidas3", oauth2.AuthStyleInHeader},
		{"post auth, born abroad", "impots", "klaus-mueller", "eidas1", "eidas1", oauth2.AuthStyleInParams},
		{"level above the IdP gives its lowest", "ameli", "jean-de-la-fontaine", "eidas2", "eidas1", oauth2.AuthStyleInHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			provider, conf := h.oidcClient(tc.idp)
			conf.Endpoint.AuthStyle = tc.style

			verifier := oauth2.GenerateVerifier()
			state, nonce := newSecret(), newSecret()
			authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce),
				oauth2.SetAuthURLParam("acr_values", tc.acrValues), oauth2.SetAuthURLParam("prompt", "login"))

			back := h.login(authURL, tc.identity)
			if got := back.Scheme + "://" + back.Host + back.Path; got != testRedirect {
				t.Fatalf("redirected to %s, want %s", got, testRedirect)
			}
			q := back.Query()
			if q.Get("iss") != h.issuer(tc.idp) {
				t.Errorf("iss = %q, want %q", q.Get("iss"), h.issuer(tc.idp))
			}
			if q.Get("state") != state {
				t.Errorf("state = %q, want %q", q.Get("state"), state)
			}

			tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			rawID, _ := tok.Extra("id_token").(string)
			idt, err := provider.Verifier(&oidc.Config{ClientID: testClientID, SupportedSigningAlgs: []string{oidc.ES256}}).Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("verify id_token: %v", err)
			}
			if idt.Nonce != nonce {
				t.Errorf("nonce = %q, want %q", idt.Nonce, nonce)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			var c struct {
				ACR      string   `json:"acr"`
				AMR      []string `json:"amr"`
				AuthTime int64    `json:"auth_time"`
			}
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			if c.ACR != tc.wantACR {
				t.Errorf("acr = %q, want %q", c.ACR, tc.wantACR)
			}
			if !slices.Equal(c.AMR, []string{"pwd"}) || c.AuthTime == 0 {
				t.Errorf("amr = %v, auth_time = %d", c.AMR, c.AuthTime)
			}
			if idt.Subject != h.s.idpByID(tc.idp).subject(tc.identity) {
				t.Errorf("sub = %q is not the identity's sub at %s", idt.Subject, tc.idp)
			}

			ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			var got map[string]any
			if err := ui.Claims(&got); err != nil {
				t.Fatal(err)
			}
			want := h.s.byID[tc.identity]
			for claim, v := range map[string]string{
				"sub": idt.Subject, "given_name": want.GivenName, "family_name": want.FamilyName,
				"birthdate": want.Birthdate, "gender": want.Gender, "birthplace": want.Birthplace,
				"birthcountry": want.Birthcountry, "email": want.Email,
			} {
				if got[claim] != v {
					t.Errorf("userinfo %s = %v, want %q", claim, got[claim], v)
				}
			}
		})
	}
}

// idpByID is a test helper: the mock IdP with that id.
func (s *Server) idpByID(id string) *mockIdP {
	for _, idp := range s.idps {
		if idp.cfg.ID == id {
			return idp
		}
	}
	return nil
}

func TestSubDiffersPerIdP(t *testing.T) {
	h := newHarness(t)
	a, b := h.s.idpByID("impots").subject("angela-dubois"), h.s.idpByID("laposte").subject("angela-dubois")
	if a == b || len(a) != 64 {
		t.Fatalf("subs %q and %q: want distinct 64-hex values", a, b)
	}
	if a != h.s.idpByID("impots").subject("angela-dubois") {
		t.Fatal("sub is not stable")
	}
}

func TestUserinfoScopes(t *testing.T) {
	h := newHarness(t)
	code := h.code("impots", url.Values{"scope": {"openid birth"}})
	_, tok := h.tokenRequest("impots", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}}, testClientID, testSecret)
	at, _ := tok["access_token"].(string)
	if tok["scope"] != "openid birth" {
		t.Errorf("scope = %v", tok["scope"])
	}
	req, _ := http.NewRequest(http.MethodGet, h.issuer("impots")+"/userinfo", nil)
	req.Header.Set("Authorization", "bEaReR "+at) // the scheme is case-insensitive
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeJSON(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %v", resp.StatusCode, got)
	}
	if got["birthplace"] != "75107" || got["birthcountry"] != "99100" || got["sub"] == nil {
		t.Errorf("birth claims missing: %v", got)
	}
	if _, leaked := got["given_name"]; leaked {
		t.Errorf("profile claim released without the profile scope: %v", got)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", resp.Header.Get("Cache-Control"))
	}
}

func TestCancelGivesAccessDenied(t *testing.T) {
	h := newHarness(t)
	_, page := h.get(h.authURL("impots", nil))
	f := parseLoginForm(t, h.srv.URL, page)
	resp, body := h.postForm(f.action, url.Values{"tx": {f.tx}, "action": {"cancel"}})
	q := redirectTarget(t, resp, body).Query()
	if q.Get("error") != "access_denied" || q.Get("state") != "state-123" || q.Get("iss") != h.issuer("impots") {
		t.Fatalf("cancel redirect query = %v", q)
	}
	// The transaction is spent: the same form cannot log in afterwards.
	resp, _ = h.postForm(f.action, url.Values{"tx": {f.tx}, "identity": {"angela-dubois"}})
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("reused transaction: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestLoginPage(t *testing.T) {
	h := newHarness(t)
	resp, page := h.get(h.authURL("laposte", url.Values{"acr_values": {"eidas2"}}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	f := parseLoginForm(t, h.srv.URL, page)
	if len(f.identities) != len(h.s.identities) {
		t.Errorf("page lists %d identities, want %d", len(f.identities), len(h.s.identities))
	}
	for _, want := range []string{
		`<label class="fr-label" for="identity-angela-dubois">`, "Cas nominal",
		// The long list says where and when each person was born.
		`<label class="fr-label" for="identity-helene-lefevre">`, "31/12/1990", "Marseille (13055)",
		"<legend", "<code>eidas2</code>", "Annuler",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	// The transaction id is the only request state in the page.
	for _, secret := range []string{"state-123", "nonce-0123456789abcdefghijkl", testRedirect} {
		if strings.Contains(page, secret) {
			t.Errorf("the page carries %q", secret)
		}
	}

	// A form sent without a choice is shown again, still usable.
	resp, page = h.postForm(f.action, url.Values{"tx": {f.tx}, "action": {"login"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `role="alert"`) {
		t.Fatalf("no-choice submit: status %d", resp.StatusCode)
	}
	resp, page = h.postForm(f.action, url.Values{"tx": {f.tx}, "identity": {"yuki-tanaka"}})
	if q := redirectTarget(t, resp, page).Query(); q.Get("code") == "" {
		t.Fatalf("no code after retry: %v", q)
	}
}

func TestDiscovery(t *testing.T) {
	h := newHarness(t)
	for idp, wantEnd := range map[string]bool{"impots": true, "ameli": false} {
		resp, err := http.Get(h.issuer(idp) + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		d := decodeJSON(t, resp)
		if d["issuer"] != h.issuer(idp) || d["authorization_response_iss_parameter_supported"] != true {
			t.Errorf("%s: %v", idp, d)
		}
		if _, has := d["end_session_endpoint"]; has != wantEnd {
			t.Errorf("%s: end_session_endpoint present = %v, want %v", idp, has, wantEnd)
		}
		if got := d["code_challenge_methods_supported"].([]any); len(got) != 1 || got[0] != "S256" {
			t.Errorf("%s: code_challenge_methods_supported = %v", idp, got)
		}
	}
	resp, _ := h.get(h.issuer("ameli") + "/end_session")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("ameli end_session: status %d, want 404", resp.StatusCode)
	}
	resp, jwks := h.get(h.issuer("laposte") + "/jwks")
	if resp.StatusCode != http.StatusOK || !strings.Contains(jwks, `"kid"`) || strings.Contains(jwks, `"d"`) {
		t.Errorf("jwks: status %d, %s", resp.StatusCode, jwks)
	}
}

func TestIndex(t *testing.T) {
	h := newHarness(t)
	resp, page := h.get(h.srv.URL + "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{h.issuer("impots"), h.issuer("ameli"), h.issuer("laposte"), "<code>eidas3</code>"} {
		if !strings.Contains(page, want) {
			t.Errorf("index lacks %q", want)
		}
	}
}

func TestChooseACR(t *testing.T) {
	all := []string{"eidas1", "eidas2", "eidas3"}
	for _, tc := range []struct {
		supported []string
		requested string
		want      string
	}{
		{all, "eidas1 eidas2", "eidas2"},
		{all, "eidas3 eidas1", "eidas3"},
		{all, "", "eidas1"},
		{all, "unknown", "eidas1"},
		{[]string{"eidas1"}, "eidas2 eidas3", "eidas1"},
		{[]string{"eidas2", "eidas3"}, "eidas1", "eidas2"},
		{[]string{"eidas3", "eidas2"}, "", "eidas2"},
	} {
		if got := chooseACR(tc.supported, tc.requested); got != tc.want {
			t.Errorf("chooseACR(%v, %q) = %q, want %q", tc.supported, tc.requested, got, tc.want)
		}
	}
}
