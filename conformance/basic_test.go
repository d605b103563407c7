package conformance

// oidcc-basic-certification-test-plan ("Basic OP"): response_type=code,
// client_secret_basic, default response_mode, static client, discovery.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/broker/teststack"
)

const pivot = "openid identite_pivot"

// 29. oidcc-codereuse-30seconds. Declared first: parallel tests start in
// source order, at most -parallel (GOMAXPROCS) at once, so its 30 s wait
// begins at once and overlaps every other test.
func TestOidccCodereuse30seconds(t *testing.T) {
	t.Parallel()
	codeReuse(t, 30*time.Second)
}

// 1. oidcc-server: the happy path.
func TestOidccServer(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	p := params(pivot)
	u := r.login(t, p, person)
	code := r.codeFrom(t, u, p.Get("state"))
	tk := r.exchange(t, r.basic, code, p.Get("nonce"))
	// The SP registered no alg, so the id_token uses the registered default.
	r.checkSignature(t, tk.raw, r.spConfig().IDTokenSignedResponseAlg)
	if tk.tok.RefreshToken != "" {
		t.Errorf("refresh_token issued though grant_types_supported lacks it")
	}
	if _, ok := tk.claims["auth_time"]; !ok {
		t.Errorf("no auth_time")
	}
	wantClaims(t, r.userinfo(t, tk), tk.sub(), angelaPivot)
}

// 2. oidcc-response-type-missing: an error page, or invalid_request /
// unsupported_response_type back at the SP.
func TestOidccResponseTypeMissing(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	p := params(pivot)
	p.Del("response_type")
	resp := r.authorize(t, p)
	if resp.Header.Get("Location") == "" {
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("error page with status %d, want 400", resp.StatusCode)
		}
		return
	}
	r.errorFrom(t, toSP(t, resp), []string{"invalid_request", "unsupported_response_type"}, p.Get("state"))
}

// 3. oidcc-idtoken-signature: a kid, and a signature that verifies with
// that key of the JWKS. The suite runs it for dynamic clients registered
// without an alg (default RS256); our clients are static, so both an SP
// registered for RS256 and one with the platform default are covered.
func TestOidccIdtokenSignature(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]teststack.Option{
		"RS256":   {withIDTokenAlg("RS256")},
		"default": nil,
	} {
		t.Run(name, func(t *testing.T) {
			r := newRP(t, opts...)
			if !slices.Contains(r.strs(t, "id_token_signing_alg_values_supported"), "RS256") {
				t.Errorf("RS256 not advertised: OPs MUST support it (OIDC Core §15.1)")
			}
			p := params(pivot)
			tk := r.flow(t, p, person)
			want := r.spConfig().IDTokenSignedResponseAlg
			if name == "RS256" && want != "RS256" {
				t.Fatalf("config alg %s", want)
			}
			h := r.checkSignature(t, tk.raw, want)
			if name == "default" && h.Algorithm != "RS256" {
				t.Logf("note: an SP registered without id_token_signed_response_alg gets %s; dynamic registration would default to RS256", h.Algorithm)
			}
		})
	}
}

// 4. oidcc-idtoken-unsigned: skipped by the suite unless `none` is
// advertised; it must not be, and no id_token may use it.
func TestOidccIdtokenUnsigned(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	for _, key := range []string{"id_token_signing_alg_values_supported", "userinfo_signing_alg_values_supported"} {
		if v, ok := r.meta[key]; ok {
			for _, alg := range strList(t, r.meta, key) {
				if strings.EqualFold(alg, "none") {
					t.Errorf("%s = %v advertises none", key, v)
				}
			}
		}
	}
	tk := r.flow(t, params(pivot), person)
	if h := r.checkSignature(t, tk.raw, ""); strings.EqualFold(h.Algorithm, "none") {
		t.Errorf("id_token alg none")
	}
}

// 5. oidcc-userinfo-get.
func TestOidccUserinfoGet(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	tk := r.flow(t, params(pivot), person)
	req, _ := http.NewRequest(http.MethodGet, r.provider.UserInfoEndpoint(), nil)
	req.Header.Set("Authorization", "Bearer "+tk.tok.AccessToken)
	wantClaims(t, userinfoDo(t, req), tk.sub(), angelaPivot)
	wantClaims(t, r.userinfo(t, tk), tk.sub(), angelaPivot)
}

// 6. oidcc-userinfo-post-header.
func TestOidccUserinfoPostHeader(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	tk := r.flow(t, params(pivot), person)
	req, _ := http.NewRequest(http.MethodPost, r.provider.UserInfoEndpoint(), nil)
	req.Header.Set("Authorization", "Bearer "+tk.tok.AccessToken)
	wantClaims(t, userinfoDo(t, req), tk.sub(), angelaPivot)
}

// 7. oidcc-userinfo-post-body: access_token in a form body (RFC 6750 §2.2).
func TestOidccUserinfoPostBody(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	tk := r.flow(t, params(pivot), person)
	req, _ := http.NewRequest(http.MethodPost, r.provider.UserInfoEndpoint(), strings.NewReader(url.Values{"access_token": {tk.tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wantClaims(t, userinfoDo(t, req), tk.sub(), angelaPivot)
}

// 8. oidcc-ensure-request-without-nonce-succeeds-for-code-flow. nonce is
// OPTIONAL in the code flow (OIDC Core §3.1.2.1); FranceConnect requires
// it, so the policy decides and both settings are tested.
func TestOidccEnsureRequestWithoutNonceSucceedsForCodeFlow(t *testing.T) {
	t.Parallel()
	t.Run("policy optional", func(t *testing.T) {
		r := newRP(t, withNonce("optional"))
		p := params(pivot)
		p.Del("nonce")
		tk := r.flow(t, p, person) // checks the id_token carries no nonce
		wantClaims(t, r.userinfo(t, tk), tk.sub(), angelaPivot)
	})
	t.Run("policy required (FranceConnect)", func(t *testing.T) {
		r := newRP(t)
		if r.s.Config.Broker.Platforms[0].Nonce != "required" {
			t.Fatalf("default nonce policy = %q, want required", r.s.Config.Broker.Platforms[0].Nonce)
		}
		p := params(pivot)
		p.Del("nonce")
		r.errorFrom(t, toSP(t, r.authorize(t, p)), []string{"invalid_request"}, p.Get("state"))
	})
}

// scopeFlow runs the suite's scope modules: the scopes are requested, the
// flow must succeed, and userinfo is checked by the caller. It returns the
// userinfo claims and the granted scopes of the token response.
func scopeFlow(t *testing.T, r *rp, scope, identity string) (tokens, map[string]any, []string) {
	t.Helper()
	p := params(scope)
	tk := r.flow(t, p, identity)
	// RFC 6749 §5.1: an absent scope means the one requested.
	granted := strings.Fields(scope)
	if sc, ok := tk.tok.Extra("scope").(string); ok {
		granted = strings.Fields(sc)
	}
	return tk, r.userinfo(t, tk), granted
}

var birthdateRE = regexp.MustCompile(`^[0-9]{4}(-[0-9]{2}-[0-9]{2})?$`)

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// checkStandardClaims is the suite's ValidateUserInfoStandardClaims and
// EnsureUserInfoBirthDateValid for the claims the broker can release.
func checkStandardClaims(t *testing.T, c map[string]any) {
	t.Helper()
	for _, k := range []string{"sub", "given_name", "family_name", "gender", "birthdate", "preferred_username", "email"} {
		if v, ok := c[k]; ok {
			if _, isStr := v.(string); !isStr {
				t.Errorf("%s = %#v, want a string", k, v)
			}
		}
	}
	if b, ok := c["birthdate"].(string); ok && !birthdateRE.MatchString(b) {
		t.Errorf("birthdate %q is not YYYY-MM-DD, YYYY or 0000-MM-DD (OIDC Core §5.1)", b)
	}
	if v, ok := c["email_verified"]; ok {
		if _, isBool := v.(bool); !isBool {
			t.Errorf("email_verified = %#v, want a boolean", v)
		}
	}
}

// 9. oidcc-scope-profile.
func TestOidccScopeProfile(t *testing.T) {
	t.Parallel()
	r := newRP(t, withScopes("profile"))
	if !slices.Contains(r.strs(t, "scopes_supported"), "profile") {
		t.Fatal("profile not in scopes_supported: the suite would skip the module")
	}
	t.Run("with a usage name", func(t *testing.T) {
		tk, c, granted := scopeFlow(t, r, "openid profile", "marie-durand")
		checkStandardClaims(t, c)
		wantClaims(t, c, tk.sub(), map[string]string{
			"given_name": "Marie", "family_name": "Durand", "birthdate": "1958-04-03", "gender": "female", "preferred_username": "Bernard",
		})
		if !sameSet(granted, []string{"openid", "profile"}) {
			t.Errorf("granted scope %v", granted)
		}
	})
	t.Run("without a usage name", func(t *testing.T) {
		tk, c, _ := scopeFlow(t, r.withBrowser(), "openid profile", person)
		checkStandardClaims(t, c)
		noEmptyClaims(t, c)
		delete(c, "preferred_username") // reported by noEmptyClaims
		wantClaims(t, c, tk.sub(), map[string]string{
			"given_name": "Angela Claire Louise", "family_name": "Dubois", "birthdate": "1962-08-24", "gender": "female",
		})
	})
}

// 10. oidcc-scope-email: in userinfo for the code flow.
func TestOidccScopeEmail(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	if !slices.Contains(r.strs(t, "scopes_supported"), "email") {
		t.Fatal("email not in scopes_supported")
	}
	tk, c, granted := scopeFlow(t, r, "openid email", person)
	checkStandardClaims(t, c)
	if _, ok := c["email_verified"]; !ok {
		t.Log("warning (as in the suite): email_verified not returned for the email scope")
	}
	delete(c, "email_verified")
	wantClaims(t, c, tk.sub(), map[string]string{"email": "angela.dubois@example.org"})
	if !sameSet(granted, []string{"openid", "email"}) {
		t.Errorf("granted scope %v", granted)
	}
}

// unsupportedScope is oidcc-scope-address and -phone: the scope is not in
// scopes_supported (the suite skips the module), and asking for it anyway
// must not fail: the scope is dropped, the token response says so
// (RFC 6749 §5.1: scope REQUIRED when it differs from the request), and
// none of its claims appear.
func unsupportedScope(t *testing.T, scope string, claims ...string) {
	r := newRP(t)
	if slices.Contains(r.strs(t, "scopes_supported"), scope) {
		t.Fatalf("%s advertised in scopes_supported", scope)
	}
	tk, c, granted := scopeFlow(t, r, "openid "+scope, person)
	if !sameSet(granted, []string{"openid"}) {
		t.Errorf("granted scope %v, want [openid]", granted)
	}
	for _, k := range claims {
		if _, ok := c[k]; ok {
			t.Errorf("userinfo releases %s", k)
		}
		if _, ok := tk.claims[k]; ok {
			t.Errorf("id_token carries %s", k)
		}
	}
	wantClaims(t, c, tk.sub(), nil)
}

// 11. oidcc-scope-address (unsupported by a FranceConnect-style identity).
func TestOidccScopeAddress(t *testing.T) {
	t.Parallel()
	unsupportedScope(t, "address", "address")
}

// 12. oidcc-scope-phone (unsupported).
func TestOidccScopePhone(t *testing.T) {
	t.Parallel()
	unsupportedScope(t, "phone", "phone_number", "phone_number_verified")
}

// 13. oidcc-scope-all: profile email address phone together.
func TestOidccScopeAll(t *testing.T) {
	t.Parallel()
	r := newRP(t, withScopes("profile"))
	tk, c, granted := scopeFlow(t, r, "openid profile email address phone", "marie-durand")
	checkStandardClaims(t, c)
	delete(c, "email_verified")
	wantClaims(t, c, tk.sub(), map[string]string{
		"given_name": "Marie", "family_name": "Durand", "birthdate": "1958-04-03", "gender": "female",
		"preferred_username": "Bernard", "email": "marie.bernard@example.org",
	})
	if !sameSet(granted, []string{"openid", "profile", "email"}) {
		t.Errorf("granted scope %v, want openid profile email", granted)
	}
}

// 14. oidcc-alternate-happy-flow: oidcc-scope-email with the scope reversed
// and the query parameters in another order.
func TestOidccAlternateHappyFlow(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	state, nonce := random(), random()
	e := url.QueryEscape
	raw := "nonce=" + e(nonce) + "&state=" + e(state) + "&scope=" + e("email openid") +
		"&redirect_uri=" + e(teststack.SPRedirect) + "&response_type=code&client_id=" + e(teststack.SPID)
	first, _ := teststack.Get(t, r.s.Browser, r.s.BrokerURL+"/authorize?"+raw)
	u, _ := r.continueLogin(t, first, person)
	tk := r.exchange(t, r.basic, r.codeFrom(t, u, state), nonce)
	c := r.userinfo(t, tk)
	delete(c, "email_verified")
	wantClaims(t, c, tk.sub(), map[string]string{"email": "angela.dubois@example.org"})
}

// extraParam is the modules that add one parameter which must not cause
// an error: the whole flow succeeds.
func extraParam(t *testing.T, name, value string) {
	r := newRP(t)
	p := params(pivot)
	p.Set(name, value)
	tk := r.flow(t, p, person)
	wantClaims(t, r.userinfo(t, tk), tk.sub(), angelaPivot)
}

// 15. oidcc-display-page.
func TestOidccDisplayPage(t *testing.T) {
	t.Parallel()
	extraParam(t, "display", "page")
}

// 16. oidcc-display-popup.
func TestOidccDisplayPopup(t *testing.T) {
	t.Parallel()
	extraParam(t, "display", "popup")
}

// 17. oidcc-prompt-login: the second authorization re-authenticates. The
// broker authenticates nobody itself, so it must send the citizen to an
// IdP again, with prompt=login so the IdP's own session does not stand in.
func TestOidccPromptLogin(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	first := r.flow(t, params(pivot), person)
	time.Sleep(time.Second)
	p := params(pivot)
	p.Set("prompt", "login")
	resp := r.authorize(t, p)
	if loc := resp.Header.Get("Location"); loc != "/authorize/choose" {
		t.Fatalf("prompt=login went to %q, want a new login (the chooser)", loc)
	}
	u, idpAuth := r.continueLogin(t, resp, person)
	if idpAuth == "" {
		t.Fatal("no trip to the IdP")
	}
	if iu, _ := url.Parse(idpAuth); !slices.Contains(strings.Fields(iu.Query().Get("prompt")), "login") {
		t.Errorf("IdP request %s lacks prompt=login", idpAuth)
	}
	second := r.exchange(t, r.basic, r.codeFrom(t, u, p.Get("state")), p.Get("nonce"))
	if a1, a2 := authTime(t, first), authTime(t, second); a2 <= a1 {
		t.Errorf("auth_time %d after prompt=login, want later than %d", a2, a1)
	}
	if first.sub() != second.sub() {
		t.Errorf("sub changed: %s then %s", first.sub(), second.sub())
	}
}

// 18. oidcc-prompt-none-not-logged-in.
func TestOidccPromptNoneNotLoggedIn(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	p := params(pivot)
	p.Set("prompt", "none")
	r.errorFrom(t, toSP(t, r.authorize(t, p)), []string{"login_required"}, p.Get("state"))
}

// silentSecond is AbstractOIDCCSameAuthTwiceServerTest: a first login, then
// a second request (changed by mod) that must come straight back with a
// code, the same sub and the same auth_time.
func silentSecond(t *testing.T, r *rp, mod func(first tokens, p url.Values)) {
	t.Helper()
	first := r.flow(t, params(pivot), person)
	p := params(pivot)
	mod(first, p)
	u := toSP(t, r.authorize(t, p))
	second := r.exchange(t, r.basic, r.codeFrom(t, u, p.Get("state")), p.Get("nonce"))
	if first.sub() != second.sub() {
		t.Errorf("sub %s, then %s", first.sub(), second.sub())
	}
	if a1, a2 := authTime(t, first), authTime(t, second); a1 != a2 {
		t.Errorf("auth_time %d, then %d without a new login", a1, a2)
	}
}

// 19. oidcc-prompt-none-logged-in.
func TestOidccPromptNoneLoggedIn(t *testing.T) {
	t.Parallel()
	silentSecond(t, newRP(t), func(_ tokens, p url.Values) { p.Set("prompt", "none") })
}

// 20. oidcc-max-age-1: after more than a second, max_age=1 forces a login,
// and the id_token must carry a later auth_time.
func TestOidccMaxAge1(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	first := r.flow(t, params(pivot), person)
	time.Sleep(1100 * time.Millisecond)
	p := params(pivot)
	p.Set("max_age", "1")
	resp := r.authorize(t, p)
	if loc := resp.Header.Get("Location"); loc != "/authorize/choose" {
		t.Fatalf("max_age=1 went to %q, want a new login (the chooser)", loc)
	}
	u, _ := r.continueLogin(t, resp, person)
	second := r.exchange(t, r.basic, r.codeFrom(t, u, p.Get("state")), p.Get("nonce"))
	a2 := authTime(t, second) // REQUIRED when max_age was sent (OIDC Core §2)
	if a1 := authTime(t, first); a2 <= a1 {
		t.Errorf("auth_time %d, want later than the first login's %d", a2, a1)
	}
	if now := time.Now().Unix(); a2 < now-5 {
		t.Errorf("auth_time %d is not recent (now %d)", a2, now)
	}
}

// 21. oidcc-max-age-10000: no new login; same sub and auth_time.
func TestOidccMaxAge10000(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	first := r.flow(t, params(pivot), person)
	p := params(pivot)
	p.Set("max_age", "10000")
	resp := r.authorize(t, p)
	if loc := resp.Header.Get("Location"); loc == "/authorize/choose" || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("max_age=10000 asked for a new login: %d %q", resp.StatusCode, loc)
	}
	u, idpAuth := r.continueLogin(t, resp, person)
	if idpAuth != "" {
		t.Fatalf("max_age=10000 sent the citizen to the IdP again")
	}
	second := r.exchange(t, r.basic, r.codeFrom(t, u, p.Get("state")), p.Get("nonce"))
	if first.sub() != second.sub() {
		t.Errorf("sub %s, then %s", first.sub(), second.sub())
	}
	if a1, a2 := authTime(t, first), authTime(t, second); a1 != a2 {
		t.Errorf("auth_time %d, then %d", a1, a2)
	}
}

// 22. oidcc-ensure-request-with-unknown-parameter-succeeds.
func TestOidccEnsureRequestWithUnknownParameterSucceeds(t *testing.T) {
	t.Parallel()
	extraParam(t, "extra", "foobar")
}

// 23. oidcc-id-token-hint: prompt=none with the first id_token as hint is
// a silent success for the same person. A hint naming someone else than
// the browser's session must never yield a code silently.
func TestOidccIdTokenHint(t *testing.T) {
	t.Parallel()
	t.Run("same person", func(t *testing.T) {
		silentSecond(t, newRP(t), func(first tokens, p url.Values) {
			p.Set("prompt", "none")
			p.Set("id_token_hint", first.raw)
		})
	})
	t.Run("another person", func(t *testing.T) {
		r := newRP(t)
		a := r.flow(t, params(pivot), person) // browser 1
		b := r.withBrowser()
		bt := b.flow(t, params(pivot), otherPerson) // browser 2
		if a.sub() == bt.sub() {
			t.Fatal("two people, one sub")
		}
		p := params(pivot)
		p.Set("prompt", "none")
		p.Set("id_token_hint", a.raw)
		u := toSP(t, b.authorize(t, p))
		b.errorFrom(t, u, []string{"login_required", "interaction_required", "account_selection_required"}, p.Get("state"))

		p = params(pivot)
		p.Set("id_token_hint", a.raw)
		resp := b.authorize(t, p)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/authorize/choose" {
			t.Fatalf("hint for A in B's browser went to %d %q, want a login page (the chooser)", resp.StatusCode, loc)
		}
	})
}

// 24. oidcc-login-hint.
func TestOidccLoginHint(t *testing.T) {
	t.Parallel()
	extraParam(t, "login_hint", "angela.dubois@example.org")
}

// 25. oidcc-ui-locales.
func TestOidccUiLocales(t *testing.T) {
	t.Parallel()
	extraParam(t, "ui_locales", "se")
}

// 26. oidcc-claims-locales.
func TestOidccClaimsLocales(t *testing.T) {
	t.Parallel()
	extraParam(t, "claims_locales", "se")
}

// 27. oidcc-ensure-request-with-acr-values-succeeds: acr_values holding
// acr_values_supported must succeed, and acr SHOULD be a requested value.
func TestOidccEnsureRequestWithAcrValuesSucceeds(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]teststack.Option{
		"default platform": nil,
		"eidas1-3":         {withPlatformACR("eidas1", "eidas2", "eidas3")},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRP(t, opts...)
			supported := r.strs(t, "acr_values_supported")
			if want := r.s.Config.Broker.Platforms[0].ACRValues; !slices.Equal(supported, want) {
				t.Fatalf("acr_values_supported = %v, want the platform's %v", supported, want)
			}
			p := params(pivot)
			p.Set("acr_values", strings.Join(supported, " "))
			tk := r.flow(t, p, person)
			if acr, _ := tk.claims["acr"].(string); !slices.Contains(supported, acr) {
				t.Errorf("acr = %q, want one of %v", tk.claims["acr"], supported)
			}
		})
	}
	t.Run("each level", func(t *testing.T) {
		r := newRP(t, withPlatformACR("eidas1", "eidas2", "eidas3"))
		for _, level := range []string{"eidas2", "eidas3"} {
			b := r.withBrowser()
			p := params(pivot)
			p.Set("acr_values", level)
			u := b.s.Login(t, p, "laposte", person)
			tk := b.exchange(t, b.basic, b.codeFrom(t, u, p.Get("state")), p.Get("nonce"))
			if tk.claims["acr"] != level {
				t.Errorf("acr_values=%s gave acr %v", level, tk.claims["acr"])
			}
		}
	})
}

// codeReuse is AbstractOIDCCAuthCodeReuse: a second redemption gets
// invalid_grant, and the token of the first SHOULD be revoked
// (RFC 6749 §4.1.2).
func codeReuse(t *testing.T, wait time.Duration) {
	r := newRP(t)
	p := params(pivot)
	code := r.codeFrom(t, r.login(t, p, person), p.Get("state"))
	tk := r.exchange(t, r.basic, code, p.Get("nonce"))
	if got := r.s.UserinfoStatus(t, "Bearer "+tk.tok.AccessToken); got != http.StatusOK {
		t.Fatalf("fresh access token: userinfo %d", got)
	}
	time.Sleep(wait)
	_, err := r.basic.Exchange(r.ctx(t), code)
	if ec, status := oauthErr(err); ec != "invalid_grant" || status != http.StatusBadRequest {
		t.Fatalf("second use of the code: %v (error %q, status %d), want invalid_grant 400", err, ec, status)
	}
	if got := r.s.UserinfoStatus(t, "Bearer "+tk.tok.AccessToken); got != http.StatusUnauthorized {
		t.Errorf("access token of a replayed code: userinfo %d, want 401 (revoked)", got)
	}
}

// 28. oidcc-codereuse.
func TestOidccCodereuse(t *testing.T) {
	t.Parallel()
	codeReuse(t, 0)
}

// 30. oidcc-ensure-registered-redirect-uri: an error page, never a
// redirect (OIDC Core §3.1.2.1: exact match; §3.1.2.6).
func TestOidccEnsureRegisteredRedirectUri(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	for _, bad := range []string{
		"https://sp.example/cb/" + strings.ToLower(random()), // the suite's random path
		"https://sp.example/cb/", "https://sp.example/cb?x=1", "http://sp.example/cb",
		"https://SP.example/cb", "https://sp.example.evil/cb", "https://evil.example/cb",
	} {
		p := params(pivot)
		p.Set("redirect_uri", bad)
		resp, body := teststack.Get(t, r.s.Browser, r.authorizeURL(p))
		if loc := resp.Header.Get("Location"); loc != "" || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("redirect_uri %s: %d Location %q, want a 400 error page", bad, resp.StatusCode, loc)
		}
		if !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || strings.Contains(body, bad) {
			t.Errorf("redirect_uri %s: the error page is not HTML or links to the unregistered URI", bad)
		}
	}
}

// 31. oidcc-ensure-post-request-succeeds: the authorization request as a
// form POST (OIDC Core §3.1.2.1: GET and POST MUST be supported).
func TestOidccEnsurePostRequestSucceeds(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	p := params(pivot)
	first, _ := teststack.Post(t, r.s.Browser, r.s.BrokerURL+"/authorize", p)
	u, _ := r.continueLogin(t, first, person)
	tk := r.exchange(t, r.basic, r.codeFrom(t, u, p.Get("state")), p.Get("nonce"))
	wantClaims(t, r.userinfo(t, tk), tk.sub(), angelaPivot)
}

// 32. oidcc-server-client-secret-post.
func TestOidccServerClientSecretPost(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	if !slices.Contains(r.strs(t, "token_endpoint_auth_methods_supported"), "client_secret_post") {
		t.Fatal("client_secret_post not advertised")
	}
	p := params(pivot)
	code := r.codeFrom(t, r.login(t, p, person), p.Get("state"))
	tk := r.exchange(t, r.post, code, p.Get("nonce"))
	wantClaims(t, r.userinfo(t, tk), tk.sub(), angelaPivot)
}

// unsignedRequestObject is the suite's SerializeRequestObjectWithNullAlgorithm.
func unsignedRequestObject(t *testing.T, claims map[string]any) string {
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(b) + "."
}

// requestObjectClaims converts an authorization request to request object
// claims, with the aud and iss the suite adds.
func (r *rp) requestObjectClaims(p url.Values) map[string]any {
	c := map[string]any{"aud": r.s.BrokerURL, "iss": teststack.SPID}
	for k := range p {
		c[k] = p.Get(k)
	}
	return c
}

// byReference is the request the suite sends with a request object: only
// response_type, client_id, scope and redirect_uri stay in the query
// (BuildRequestObject*RedirectToAuthorizationEndpoint); state and nonce
// live in the object alone unless exposeState.
func byReference(p url.Values, name, value string, exposeState bool) url.Values {
	q := url.Values{name: {value}}
	for _, k := range []string{"response_type", "client_id", "scope", "redirect_uri"} {
		q.Set(k, p.Get(k))
	}
	if exposeState {
		q.Set("state", p.Get("state"))
	}
	return q
}

// unsupportedRequest checks a request carrying name (request or
// request_uri) is answered with wantErr at the SP, with iss, and state
// when the query carried one (the suite does not expect the state of an
// object the OP did not read).
func unsupportedRequest(t *testing.T, name, wantErr, discoveryFlag string) {
	r := newRP(t)
	if v, ok := r.meta[discoveryFlag]; !ok || v != false {
		t.Errorf("discovery %s = %v, want false (it defaults to true when omitted)", discoveryFlag, v)
	}
	for _, expose := range []bool{false, true} {
		t.Run(map[bool]string{false: "state only in the object", true: "state in the query too"}[expose], func(t *testing.T) {
			p := params(pivot)
			value := unsignedRequestObject(t, r.requestObjectClaims(p))
			if name == "request_uri" {
				value = "https://sp.example/request/" + random() + ".jwt"
			}
			q := byReference(p, name, value, expose)
			resp := r.authorize(t, q)
			state := ""
			if expose {
				state = p.Get("state")
			}
			r.errorFrom(t, toSP(t, resp), []string{wantErr}, state)
		})
	}
}

// 33. oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported.
func TestOidccRequestUriUnsignedSupportedCorrectlyOrRejectedAsUnsupported(t *testing.T) {
	t.Parallel()
	unsupportedRequest(t, "request_uri", "request_uri_not_supported", "request_uri_parameter_supported")
}

// 34. oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported.
func TestOidccUnsignedRequestObjectSupportedCorrectlyOrRejectedAsUnsupported(t *testing.T) {
	t.Parallel()
	unsupportedRequest(t, "request", "request_not_supported", "request_parameter_supported")
}

// 35. oidcc-claims-essential: name requested as essential for userinfo
// must not fail (the broker has no name claim; the suite only warns).
func TestOidccClaimsEssential(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	p := params(pivot)
	p.Set("claims", `{"userinfo":{"name":{"essential":true}}}`)
	tk := r.flow(t, p, person)
	c := r.userinfo(t, tk)
	if n, ok := c["name"]; ok {
		if s, isStr := n.(string); !isStr || s == "" {
			t.Errorf("name = %#v", n)
		}
		delete(c, "name")
	} else {
		t.Log("warning (as in the suite): userinfo has no name")
	}
	if _, ok := tk.claims["name"]; ok {
		t.Errorf("name asked for userinfo landed in the id_token")
	}
	wantClaims(t, c, tk.sub(), angelaPivot)
}

// 36. oidcc-ensure-request-object-with-redirect-uri: the query's
// redirect_uri is not registered, the object's is. Unsupported request
// objects: the OP must not trust the query's URI, so an error page (or
// request_not_supported at the registered URI); never a redirect to the
// unregistered one.
func TestOidccEnsureRequestObjectWithRedirectUri(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	if r.meta["request_parameter_supported"] != false {
		t.Fatalf("request objects advertised: the module would run for real")
	}
	p := params(pivot)
	object := unsignedRequestObject(t, r.requestObjectClaims(p))
	q := byReference(p, "request", object, false)
	bad := "https://sp.example/cb/invalid-" + strings.ToLower(random())
	q.Set("redirect_uri", bad)
	resp := r.authorize(t, q)
	loc := resp.Header.Get("Location")
	switch {
	case strings.HasPrefix(loc, bad):
		t.Fatalf("redirected to the unregistered redirect_uri: %s", loc)
	case loc == "":
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("error page with status %d, want 400", resp.StatusCode)
		}
	default:
		r.errorFrom(t, toSP(t, resp), []string{"request_not_supported"}, "")
	}
}

// 37. oidcc-refresh-token: skipped by the suite when no refresh token is
// issued; discovery must then not advertise the grant.
func TestOidccRefreshToken(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	grants := r.strs(t, "grant_types_supported")
	if slices.Contains(grants, "refresh_token") {
		t.Errorf("grant_types_supported %v advertises refresh_token", grants)
	}
	p := params(pivot + " offline_access")
	p.Set("prompt", "consent") // AddPromptConsentToAuthorizationEndpointRequestIfScopeContainsOfflineAccess
	tk := r.flow(t, p, person)
	if tk.tok.RefreshToken != "" || tk.tok.Extra("refresh_token") != nil {
		t.Errorf("refresh_token issued: %v", tk.tok.Extra("refresh_token"))
	}
	status, out := r.s.Token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.tok.AccessToken}}, true)
	if status != http.StatusBadRequest || out["error"] != "unsupported_grant_type" {
		t.Errorf("refresh_token grant: %d %v, want 400 unsupported_grant_type", status, out)
	}
}

// 38. oidcc-ensure-request-with-valid-pkce-succeeds.
func TestOidccEnsureRequestWithValidPkceSucceeds(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	if m := r.strs(t, "code_challenge_methods_supported"); !slices.Contains(m, "S256") {
		t.Fatalf("code_challenge_methods_supported = %v", m)
	}
	verifier := oauth2.GenerateVerifier()
	p := params(pivot)
	p.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
	p.Set("code_challenge_method", "S256")
	code := r.codeFrom(t, r.login(t, p, person), p.Get("state"))
	tk := r.exchange(t, r.basic, code, p.Get("nonce"), oauth2.VerifierOption(verifier))
	wantClaims(t, r.userinfo(t, tk), tk.sub(), angelaPivot)
}
