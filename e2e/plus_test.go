package e2e

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestE2EPlus logs in on the "+" platform end to end, on Redis and on the
// in-memory store: through the demo SP (private_key_jwt with the keys it
// publishes, JWEs it decrypts), with the test itself as an independent "+"
// SP (go-jose and go-oidc), and through every acceptance row of the issue:
// levels, SSO and step-up, platform separation, mock-IdP scenarios.
func TestE2EPlus(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts stackOptions
	}{{"redis", stackOptions{}}, {"memory", stackOptions{Memory: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			st := startStack(t, tc.opts)
			t.Run("discovery", func(t *testing.T) { checkPlusDiscovery(t, st) })
			t.Run("demo-sp eidas3, SSO eidas2, step-up eidas3", func(t *testing.T) { runPlusDemoSSO(t, st) })
			t.Run("e2e-plus-sp private_key_jwt and JWE at eidas2", func(t *testing.T) { runPlusRP(t, st) })
			t.Run("eidas1 asked on plus", func(t *testing.T) { runPlusEidas1(t, st) })
			t.Run("std and plus never share a session", func(t *testing.T) { runPlatformsApart(t, st) })
			t.Run("scenarios", func(t *testing.T) { runPlusScenarios(t, st) })
		})
	}
}

// TestE2EPlusConfigRefusesSPWithoutKeys: the e2e config with the test's
// "+" SP stripped of its keys is refused by sesame check-config, naming the
// SP and jwks_uri; the same config with the keys is accepted.
func TestE2EPlusConfigRefusesSPWithoutKeys(t *testing.T) {
	if sesameBin == "" {
		t.Fatal("e2e: the sesame binary was not built (TestMain did not run)")
	}
	c := newPlusClient(t)
	c.RedirectURI, c.PostLogoutURI = "http://localhost:1/plus/callback", "http://localhost:1/plus/logged-out"
	var b strings.Builder
	if err := configTemplate.Execute(&b, configData{
		BrokerPort: 1, ProvidersPort: 2, DemoSPPort: 3, PlusPort: 4,
		Broker: "http://localhost:1", Providers: "http://localhost:2", DemoSP: "http://localhost:3", Plus: "http://localhost:4",
		Demo:   spClient{Secret: demoSPSecret, Sector: "demo.sesame.localhost", RedirectURI: "http://localhost:5/cb", PostLogoutURI: "http://localhost:5/out"},
		Other:  spClient{Secret: otherSecret, Sector: "other.sesame.localhost", RedirectURI: "http://localhost:5/ocb", PostLogoutURI: "http://localhost:5/oout", Alg: "RS256", SignedUserinfo: "ES256"},
		PlusSP: c, SessionKey: randomKey(t), IdPSecrets: idpSecrets, SubSecret: subSecret,
	}); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	keysLine := "          jwks: '" + c.PublicJWKS + "'\n"
	if !strings.Contains(good, keysLine) {
		t.Fatalf("the config template has no inline jwks line for %s", plusSPID)
	}
	check := func(name, cfg string) (string, error) {
		path := t.TempDir() + "/" + name
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sesameBin, "check-config", path).CombinedOutput()
		return string(out), err
	}
	if out, err := check("with-keys.yaml", good); err != nil {
		t.Fatalf("check-config refuses the config with the SP's keys: %v\n%s", err, out)
	}
	out, err := check("without-keys.yaml", strings.Replace(good, keysLine, "", 1))
	if err == nil {
		t.Fatalf("check-config accepts a \"+\" SP registered without keys:\n%s", out)
	}
	if !strings.Contains(out, plusSPID) || !strings.Contains(out, "jwks_uri") {
		t.Errorf("check-config refusal does not name the SP %s and jwks_uri:\n%s", plusSPID, out)
	}
}

// checkPlusDiscovery reads the "+" discovery document as a "+" SP would:
// ES256 only, the levels of "+", private_key_jwt, and the JWE algorithms.
func checkPlusDiscovery(t *testing.T, st *stack) {
	resp, err := http.Get(st.Plus + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	for k, want := range map[string]string{
		"issuer": st.Plus, "authorization_endpoint": st.Plus + "/authorize", "token_endpoint": st.Plus + "/token",
		"userinfo_endpoint": st.Plus + "/userinfo", "jwks_uri": st.Plus + "/jwks",
	} {
		if d[k] != want {
			t.Errorf("plus discovery %s = %#v, want %q", k, d[k], want)
		}
	}
	list := func(k string) []string {
		var out []string
		l, _ := d[k].([]any)
		for _, v := range l {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	exactly := func(k string, want ...string) {
		t.Helper()
		if got := list(k); !slices.Equal(got, want) {
			t.Errorf("plus discovery %s = %q, want exactly %q", k, got, want)
		}
	}
	holds := func(k string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !slices.Contains(list(k), w) {
				t.Errorf("plus discovery %s = %q, want it to hold %q", k, list(k), w)
			}
		}
	}
	exactly("id_token_signing_alg_values_supported", "ES256")
	exactly("userinfo_signing_alg_values_supported", "ES256")
	exactly("acr_values_supported", "eidas2", "eidas3")
	holds("token_endpoint_auth_methods_supported", "private_key_jwt")
	// OIDC Discovery §3: how a "+" SP learns what it must decrypt.
	holds("id_token_encryption_alg_values_supported", "ECDH-ES", "RSA-OAEP", "RSA-OAEP-256")
	exactly("id_token_encryption_enc_values_supported", "A256GCM")
	holds("userinfo_encryption_alg_values_supported", "ECDH-ES", "RSA-OAEP", "RSA-OAEP-256")
	exactly("userinfo_encryption_enc_values_supported", "A256GCM")
}

// runPlusDemoSSO: the demo SP logs in at eidas3 (france-identite); in the
// same browser the test's "+" SP asking eidas2 gets SSO (no chooser, acr
// eidas2, the original auth_time); asking eidas3 re-authenticates (chooser,
// acr eidas3, a later auth_time), which updates the session; the plus
// login gives no SSO on the standard platform.
func runPlusDemoSSO(t *testing.T, st *stack) {
	const person = "angela-dubois"
	who := loadIdentity(t, person)
	a := newAgent(t)
	start := time.Now()
	me := demoSPPlusLogin(t, st, a, "eidas3", "france-identite", person)
	for _, v := range []string{who["birthdate"], who["birthplace"], who["email"]} {
		if !strings.Contains(me.text(), v) {
			t.Errorf("demo SP /me does not show %q", v)
		}
	}
	firstEnd := time.Now()
	if a.cookie(st.Plus, "sesame_plus") == "" {
		t.Fatal("no sesame_plus cookie after the plus login")
	}
	if a.cookie(st.Broker, "sesame_std") != "" {
		t.Error("a plus login set the standard platform's cookie sesame_std")
	}
	// The next logins must be told apart by auth_time, which counts
	// whole seconds.
	for time.Now().Unix() <= firstEnd.Unix() {
		time.Sleep(20 * time.Millisecond)
	}

	// SSO: an eidas3 session serves another SP asking eidas2, as eidas2.
	sso := newPlusRP(t, st, "eidas2")
	a.get(sso.authURL()).redirect(t, st.Plus+"/authorize/consent")
	final := a.consentAt(t, st.Plus, who)
	checkPlusResponse(t, st, final, sso.c.RedirectURI, sso.State)
	tok, err := sso.exchange(t, final.Query().Get("code"), sso.assertion(t, sso.provider.Endpoint().TokenURL))
	if err != nil {
		t.Fatalf("token request after SSO: %v", err)
	}
	idt := sso.idToken(t, tok, "eidas2")
	t1 := *idt.Claims.AuthTime
	if t1 < start.Unix() || t1 > firstEnd.Unix() {
		t.Errorf("SSO id_token auth_time = %v, want the demo SP login's (%v … %v), not a new one",
			time.Unix(t1, 0), start.Truncate(time.Second), firstEnd)
	}
	wantIdentityClaims(t, sso.userinfo(t, tok.AccessToken, idt.Subject), who, idt.Subject,
		append([]string{"email", "iss", "aud", "iat"}, pivotClaims...)...)

	// Step-up: eidas3 is never served by SSO on "+"; the chooser comes
	// back and the IdP is asked eidas3 again.
	up := newPlusRP(t, st, "eidas3")
	stepStart := time.Now()
	bl := a.plusLogin(t, st, up.authURL(), "eidas3", "france-identite", person, nil)
	checkPlusResponse(t, st, bl.Final, up.c.RedirectURI, up.State)
	tok, err = up.exchange(t, bl.Final.Query().Get("code"), up.assertion(t, st.Plus))
	if err != nil {
		t.Fatalf("token request after step-up: %v", err)
	}
	idt2 := up.idToken(t, tok, "eidas3")
	t2 := *idt2.Claims.AuthTime
	if t2 < t1 || t2 < stepStart.Unix() {
		t.Errorf("step-up id_token auth_time = %v, want the re-authentication's (from %v), later than the first login's %v",
			time.Unix(t2, 0), stepStart.Truncate(time.Second), time.Unix(t1, 0))
	}
	if idt2.Subject != idt.Subject {
		t.Errorf("same person, same SP: sub %q after step-up, %q before", idt2.Subject, idt.Subject)
	}

	// The session now holds the eidas3 login of the step-up.
	again := newPlusRP(t, st, "eidas2")
	a.get(again.authURL()).redirect(t, st.Plus+"/authorize/consent")
	final = a.consentAt(t, st.Plus, who)
	checkPlusResponse(t, st, final, again.c.RedirectURI, again.State)
	tok, err = again.exchange(t, final.Query().Get("code"), again.assertion(t, again.provider.Endpoint().TokenURL))
	if err != nil {
		t.Fatalf("token request after the second SSO: %v", err)
	}
	if got := *again.idToken(t, tok, "eidas2").Claims.AuthTime; got != t2 {
		t.Errorf("SSO after the step-up: auth_time = %v, want the step-up's %v (the session's login was not updated)", time.Unix(got, 0), time.Unix(t2, 0))
	}

	// A plus session gives no SSO on the standard platform.
	a.toChooser(t, st, newRP(t, st, demoSPID, oauth2.AuthStyleInHeader, "openid", "identite_pivot").authURL())
}

// runPlusRP is a whole "+" login with the test as the SP e2e-plus-sp
// (inline keys, private_key_jwt) at eidas2 through laposte: JWE id_token
// and userinfo, code replay, assertion replay; then a second SP (the demo
// SP) asking eidas3 after this eidas2 login re-authenticates.
func runPlusRP(t *testing.T, st *stack) {
	const person = "jean-de-la-fontaine"
	who := loadIdentity(t, person)
	a := newAgent(t)
	r := newPlusRP(t, st, "eidas2")
	start := time.Now()
	bl := a.plusLogin(t, st, r.authURL(), "eidas2", "laposte", person, nil)
	checkPlusResponse(t, st, bl.Final, r.c.RedirectURI, r.State)
	code := bl.Final.Query().Get("code")

	// aud = the token endpoint.
	first := r.assertion(t, r.provider.Endpoint().TokenURL)
	tok, err := r.exchange(t, code, first)
	if err != nil {
		t.Fatalf("token request with private_key_jwt: %v", err)
	}
	if got, _ := tok.Extra("scope").(string); got != "openid identite_pivot email" {
		t.Errorf("token response scope = %q, want %q", got, "openid identite_pivot email")
	}
	idt := r.idToken(t, tok, "eidas2")
	if at := time.Unix(*idt.Claims.AuthTime, 0); at.Before(start.Add(-time.Second)) || at.After(time.Now().Add(time.Second)) {
		t.Errorf("id_token auth_time = %v, want during this login (from %v)", at, start)
	}
	if c := idt.Claims; c.Expiry-c.IssuedAt != 60 {
		t.Errorf("id_token lives exp-iat = %d s, want 60", c.Expiry-c.IssuedAt)
	}
	claims := r.userinfo(t, tok.AccessToken, idt.Subject)
	wantIdentityClaims(t, claims, who, idt.Subject, append([]string{"email", "iss", "aud", "iat"}, pivotClaims...)...)

	// A replayed code is refused, even with a fresh assertion.
	if _, err := r.exchange(t, code, r.assertion(t, st.Plus)); retrieveError(err) != "invalid_grant" {
		t.Errorf("second use of the code: %v, want invalid_grant", err)
	}

	// A second code through SSO, for the same SP.
	sso := newPlusRP(t, st, "eidas2")
	a.get(sso.authURL()).redirect(t, st.Plus+"/authorize/consent")
	final := a.consentAt(t, st.Plus, who)
	checkPlusResponse(t, st, final, sso.c.RedirectURI, sso.State)
	code2 := final.Query().Get("code")
	// The first assertion, replayed with a valid code: its jti is spent.
	if _, err := sso.exchange(t, code2, first); retrieveError(err) != "invalid_client" {
		t.Errorf("token request with a replayed client assertion (same jti): %v, want invalid_client", err)
	}
	// An assertion for another audience (the standard platform's token
	// endpoint) is refused too.
	if _, err := sso.exchange(t, code2, sso.assertion(t, st.Broker+"/token")); retrieveError(err) != "invalid_client" {
		t.Errorf("token request with a client assertion for the standard platform's aud: %v, want invalid_client", err)
	}
	// The refusals were the assertions': the same code with a fresh one
	// (aud = the issuer this time) is accepted.
	tok2, err := sso.exchange(t, code2, sso.assertion(t, st.Plus))
	if err != nil {
		t.Fatalf("token request with a fresh assertion after the refused replay: %v", err)
	}
	if idt2 := sso.idToken(t, tok2, "eidas2"); idt2.Subject != idt.Subject {
		t.Errorf("SSO for the same SP: sub %q, want %q", idt2.Subject, idt.Subject)
	}

	// A second SP asking eidas3 after this eidas2 login re-authenticates.
	me := demoSPPlusLogin(t, st, a, "eidas3", "france-identite", person)
	if got := me.byID(t, "acr"); got != "eidas3" {
		t.Errorf("demo SP after the step-up shows acr %q, want eidas3", got)
	}
}

// runPlusEidas1: eidas1 is outside "+": back to the SP with
// error=invalid_request, state and iss, and no code; the demo SP shows it.
func runPlusEidas1(t *testing.T, st *stack) {
	// The request is pushed first on "+" (PAR): the level is refused
	// there, to the SP's back end, with no browser involved.
	r := newPlusRP(t, st, "eidas1")
	if status, code := r.push(t); status != http.StatusBadRequest || code != "invalid_request" {
		t.Errorf("eidas1 pushed on plus: %d %q, want 400 invalid_request", status, code)
	}

	a := newAgent(t)
	p := a.post(st.DemoSP+"/login", url.Values{"platform": {"plus"}, "acr_values": {"eidas1"}})
	if p.status != http.StatusBadRequest || !p.has("oidc-error") {
		t.Fatalf("%s: status %d, want the demo SP's 400 error page\nbody: %s", p, p.status, excerpt(p.body))
	}
	if got := p.byID(t, "oidc-error"); got != "invalid_request" {
		t.Errorf("demo SP shows error %q, want invalid_request", got)
	}
}

// runPlatformsApart: a standard login gives no SSO on "+", and each
// platform keeps its own cookie and (on Redis) its own key namespace.
func runPlatformsApart(t *testing.T, st *stack) {
	a := newAgent(t)
	demoSPLogin(t, st, a, "impots", "angela-dubois")
	stdCookie := a.cookie(st.Broker, "sesame_std")
	if stdCookie == "" {
		t.Fatal("no sesame_std cookie after the standard login")
	}
	r := newPlusRP(t, st, "eidas2")
	ch := a.plusChooser(t, st, r.authURL(), "eidas2")
	if a.cookie(st.Plus, "sesame_plus_req") == "" {
		t.Error("no sesame_plus_req cookie holds the + request at the chooser")
	}
	// The + session exists from the choice on.
	a.choosePlus(t, st, ch, "laposte", "eidas2")
	if plus := a.cookie(st.Plus, "sesame_plus"); plus == "" || plus == stdCookie {
		t.Errorf("plus session cookie %q, want its own, not the standard one %q", plus, stdCookie)
	}
	if st.Redis == nil {
		return
	}
	var std, plus int
	for k := range st.scanKeys(t) {
		switch {
		case strings.HasPrefix(k, "sesame:std:"):
			std++
		case strings.HasPrefix(k, "sesame:plus:"):
			plus++
		default:
			t.Errorf("key %q is in neither platform's namespace", k)
		}
	}
	if std == 0 || plus == 0 {
		t.Errorf("Redis holds %d sesame:std: and %d sesame:plus: keys, want both platforms' sessions", std, plus)
	}
}

// Chooser banners: the sentence shown for each code.
var bannerSentences = map[string]string{
	"S020030": "La connexion auprès du fournisseur d'identité a été annulée ou refusée. Vous pouvez réessayer ou choisir un autre fournisseur d'identité.",
	"S020027": "La réponse du fournisseur d'identité n'a pas pu être vérifiée. Choisissez un autre fournisseur d'identité.",
}

// runPlusScenarios drives the mock IdPs' scenarios through the real stack
// on "+", each login asked at eidas2 by e2e-plus-sp: an error page or a
// chooser banner, no code to the SP, and then the citizen goes on with a
// correct login whose code the SP redeems.
func runPlusScenarios(t *testing.T, st *stack) {
	const person = "angela-dubois" // born in France: a birthplace to spoil
	for _, tc := range []struct {
		name, idp string
		scenario  url.Values
		// status and code of the error page, or banner for a chooser banner.
		status       int
		code, banner string
	}{
		{"msa asserts eidas3 outside its allowed list", "msa", url.Values{"scenario_acr": {"eidas3"}}, http.StatusForbidden, "S100018", ""},
		{"laposte asserts eidas1 for eidas2", "laposte", url.Values{"scenario_acr": {"eidas1"}}, http.StatusForbidden, "S100001", ""},
		{"access_denied", "france-identite", url.Values{"scenario_error": {"access_denied"}}, 0, "", "S020030"},
		{"bad COG birthplace", "france-identite", url.Values{"scenario_bad_cog": {"birthplace"}}, http.StatusBadGateway, "S010001", ""},
		{"forged signature", "france-identite", url.Values{"scenario_wrong_key": {"forged"}}, 0, "", "S020027"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(t)
			r := newPlusRP(t, st, "eidas2")
			ch := a.plusChooser(t, st, r.authURL(), "eidas2")
			login, idpAuth := a.choosePlus(t, st, ch, tc.idp, "eidas2")
			cb := a.idpLoginPlus(t, st, tc.idp, login, idpAuth, person, tc.scenario)
			if tc.scenario.Has("scenario_error") {
				wantQuery(t, "IdP → broker", cb, map[string]string{"error": tc.scenario.Get("scenario_error")})
			}
			res := a.get(cb.String())
			if tc.banner == "" {
				res.errorPage(t, tc.status, tc.code)
				// "Retour": the session is back at the chooser.
				ch = a.get(st.Plus + "/authorize/choose").ok(t)
			} else {
				res.redirect(t, st.Plus+"/authorize/choose")
				ch = a.get(st.Plus + "/authorize/choose").ok(t)
				if got := ch.innerText(t, "banner"); got != bannerSentences[tc.banner] {
					t.Errorf("chooser banner = %q, want the sentence of %s: %q", got, tc.banner, bannerSentences[tc.banner])
				}
			}
			checkPlusChooser(t, ch, "eidas2")

			// The citizen goes on; the only code the SP ever gets is
			// this correct login's.
			login, idpAuth = a.choosePlus(t, st, ch, "france-identite", "eidas2")
			cb = a.idpLoginPlus(t, st, "france-identite", login, idpAuth, person, nil)
			a.plusCallback(t, st, cb)
			final := a.consentAt(t, st.Plus, loadIdentity(t, person))
			checkPlusResponse(t, st, final, r.c.RedirectURI, r.State)
			tok, err := r.exchange(t, final.Query().Get("code"), r.assertion(t, st.Plus))
			if err != nil {
				t.Fatalf("token request after the recovered login: %v", err)
			}
			r.idToken(t, tok, "eidas2")
		})
	}
}

// --- "+" flow helpers

// plusIdPs are the IdPs the "+" chooser offers, in order.
var plusIdPs = []string{"france-identite", "laposte", "msa"}

var buttonRE = regexp.MustCompile(`<button\b[^>]*>`)

// idpButton reports whether the chooser has a button for idp, and whether
// it is disabled (greyed out).
func (p *page) idpButton(idp string) (present, disabled bool) {
	for _, b := range buttonRE.FindAllString(p.body, -1) {
		if strings.Contains(b, ` id="idp-`+idp+`"`) {
			return true, regexp.MustCompile(`\sdisabled[\s>=]`).MatchString(b)
		}
	}
	return false, false
}

// checkPlusChooser checks the "+" chooser at acr: france-identite and
// laposte offered; msa offered but greyed out at eidas3 (its allowed list
// stops at eidas2); the standard platform's IdPs absent.
func checkPlusChooser(t *testing.T, ch *page, acr string) {
	t.Helper()
	// The badge says the level in words; the level asked is its data-acr.
	if m := regexp.MustCompile(`id="acr" data-acr="([^"]*)">([^<]*)<`).FindStringSubmatch(ch.body); m == nil || m[1] != acr || strings.Contains(m[2], "eidas") {
		t.Errorf("chooser level badge %q, want data-acr %s and no acr value shown", m, acr)
	}
	for _, idp := range plusIdPs {
		present, disabled := ch.idpButton(idp)
		wantDisabled := idp == "msa" && acr == "eidas3"
		switch {
		case !present:
			t.Errorf("plus chooser at %s has no button #idp-%s\nbody: %s", acr, idp, excerpt(ch.body))
		case disabled != wantDisabled:
			t.Errorf("plus chooser at %s: #idp-%s disabled = %v, want %v", acr, idp, disabled, wantDisabled)
		case disabled && !ch.has("why-"+idp):
			t.Errorf("plus chooser at %s: #idp-%s is greyed out without a reason (#why-%s)", acr, idp, idp)
		}
	}
	for _, idp := range []string{"impots", "ameli"} {
		if present, _ := ch.idpButton(idp); present {
			t.Errorf("plus chooser offers %s, an IdP of the standard platform only", idp)
		}
	}
}

// plusChooser follows a "+" authorization request to the chooser.
func (a *agent) plusChooser(t *testing.T, st *stack, authURL, acr string) *page {
	t.Helper()
	a.get(authURL).redirect(t, st.Plus+"/authorize/choose")
	ch := a.get(st.Plus + "/authorize/choose").ok(t)
	checkPlusChooser(t, ch, acr)
	return ch
}

// choosePlus picks idp on the "+" chooser and returns the IdP's login page
// and the broker's request to it, which asks level.
func (a *agent) choosePlus(t *testing.T, st *stack, ch *page, idp, level string) (*page, *url.URL) {
	t.Helper()
	to := a.post(st.Plus+"/authorize/choose", url.Values{"csrf": {ch.hidden(t, "csrf")}, "idp": {idp}}).
		redirect(t, st.IdPIssuer(idp)+"/authorize")
	wantQuery(t, "plus → IdP", to, map[string]string{
		"client_id": brokerClientAtIdPs, "redirect_uri": st.Plus + "/idp/callback",
		"response_type": "code", "code_challenge_method": "S256", "prompt": "login", "acr_values": level,
	})
	nonEmpty(t, "plus → IdP", to, "state", "nonce", "code_challenge")
	return a.get(to.String()).ok(t), to
}

// idpLoginPlus posts the mock IdP's login form with an identity and the
// scenario fields, and returns its redirect to the "+" callback.
func (a *agent) idpLoginPlus(t *testing.T, st *stack, idp string, login *page, idpAuth *url.URL, identityID string, scenario url.Values) *url.URL {
	t.Helper()
	if !login.has("identity-" + identityID) {
		t.Fatalf("login page of %s does not list identity %s", idp, identityID)
	}
	form := url.Values{"tx": {login.hidden(t, "tx")}, "identity": {identityID}, "action": {"login"}}
	for k, v := range scenario {
		form[k] = v
	}
	cb := a.post(login.formAction(t), form).redirect(t, st.Plus+"/idp/callback")
	wantQuery(t, "IdP → plus", cb, map[string]string{"state": idpAuth.Query().Get("state"), "iss": st.IdPIssuer(idp)})
	if !scenario.Has("scenario_error") {
		nonEmpty(t, "IdP → plus", cb, "code")
	}
	return cb
}

// plusCallback delivers the IdP's callback to "+" and checks the move to
// the information page, with a rotated session cookie that dies with the
// browser (no Max-Age, no Expires).
func (a *agent) plusCallback(t *testing.T, st *stack, cb *url.URL) {
	t.Helper()
	before := a.cookie(st.Plus, "sesame_plus")
	if before == "" {
		t.Fatal("no sesame_plus cookie before the IdP callback")
	}
	p := a.get(cb.String())
	p.redirect(t, st.Plus+"/authorize/consent")
	after := a.cookie(st.Plus, "sesame_plus")
	if after == "" || after == before {
		t.Errorf("the plus session id was not rotated at the IdP callback (before %q, after %q)", before, after)
	}
	found := false
	for _, line := range p.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil || c.Name != "sesame_plus" {
			continue
		}
		found = true
		if c.MaxAge != 0 || !c.Expires.IsZero() {
			t.Errorf("sesame_plus cookie %q outlives the browser, want a session cookie", line)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("sesame_plus cookie %q, want HttpOnly and SameSite=Lax", line)
		}
	}
	if !found {
		t.Error("the IdP callback set no sesame_plus cookie")
	}
}

// plusLogin runs the broker part of a "+" login from an SP's authorization
// URL: chooser at acr, IdP (asked acr), callback, information page.
func (a *agent) plusLogin(t *testing.T, st *stack, authURL, acr, idp, identityID string, scenario url.Values) brokerLogin {
	t.Helper()
	ch := a.plusChooser(t, st, authURL, acr)
	login, idpAuth := a.choosePlus(t, st, ch, idp, acr)
	cb := a.idpLoginPlus(t, st, idp, login, idpAuth, identityID, scenario)
	a.plusCallback(t, st, cb)
	final := a.consentAt(t, st.Plus, loadIdentity(t, identityID))
	return brokerLogin{IdPAuth: idpAuth, Callback: cb, Final: final}
}

// checkPlusResponse checks a "+" authorization response: to the SP's
// redirect_uri, with code, state and iss, no error.
func checkPlusResponse(t *testing.T, st *stack, final *url.URL, redirectURI, state string) {
	t.Helper()
	if got := final.Scheme + "://" + final.Host + final.Path; got != redirectURI {
		t.Fatalf("authorization response goes to %s, want %s", final, redirectURI)
	}
	if final.Query().Has("error") {
		t.Fatalf("authorization response carries an error: %s", final)
	}
	wantQuery(t, "plus authorization response", final, map[string]string{"state": state, "iss": st.Plus})
	nonEmpty(t, "plus authorization response", final, "code")
}

// jweShown matches what the demo SP's /me shows for an encrypted token.
var jweShown = regexp.MustCompile(`JWE alg\s*:\s*(ECDH-ES|RSA-OAEP-256|RSA-OAEP), enc\s*:\s*A256GCM\b`)

// demoSPPlusLogin logs in at the demo SP on "+" at acr through idp and
// returns /me, checked: Sésame+, the level asked and obtained, the
// identity, amr, and both tokens shown as JWEs.
func demoSPPlusLogin(t *testing.T, st *stack, a *agent, acr, idp, identityID string) *page {
	t.Helper()
	who := loadIdentity(t, identityID)
	home := a.get(st.DemoSP + "/").ok(t)
	if !home.has("sesame-plus-connect") || !home.has("acr-plus-"+acr) {
		t.Fatalf("demo SP home has no #sesame-plus-connect or #acr-plus-%s", acr)
	}
	auth := a.post(st.DemoSP+"/login", url.Values{"platform": {"plus"}, "acr_values": {acr}}).redirect(t, st.Plus+"/authorize")
	// PAR (RFC 9126): the demo SP pushed the request; the browser
	// carries only client_id and the request_uri.
	if q := auth.Query(); len(q) != 2 || q.Get("client_id") != demoSPPlusID || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
		t.Errorf("demo SP → plus: %s, want only client_id and a PAR request_uri", auth)
	}

	bl := a.plusLogin(t, st, auth.String(), acr, idp, identityID, nil)
	checkPlusResponse(t, st, bl.Final, st.DemoSP+"/callback", bl.Final.Query().Get("state"))
	// The demo SP redeems the code with private_key_jwt (keys fetched
	// from its /jwks by the broker) and decrypts both JWEs.
	cb := a.get(bl.Final.String())
	if cb.status != http.StatusSeeOther {
		t.Fatalf("%s: status %d, want 303 to /me\nbody: %s", cb, cb.status, excerpt(cb.body))
	}
	cb.redirect(t, st.DemoSP+"/me")
	me := a.get(st.DemoSP + "/me").ok(t)
	if got := me.byID(t, "platform"); !strings.Contains(got, "Sésame+") {
		t.Errorf("demo SP /me shows platform %q, want Sésame+", got)
	}
	for id, want := range map[string]string{"acr": acr, "acr-asked": acr, "citizen-name": who.Name(), "amr": "pwd"} {
		if got := me.byID(t, id); got != want {
			t.Errorf("demo SP /me #%s = %q, want %q", id, got, want)
		}
	}
	if sub := me.byID(t, "sub"); !regexp.MustCompile(`^[0-9a-f]{64}v1$`).MatchString(sub) {
		t.Errorf("demo SP /me shows sub %q, want a pairwise sub", sub)
	}
	for _, id := range []string{"id-token-jwe", "userinfo-jwe"} {
		if got := me.innerText(t, id); !jweShown.MatchString(got) {
			t.Errorf("demo SP /me #%s = %q, want a JWE with alg ECDH-ES, RSA-OAEP or RSA-OAEP-256 and enc A256GCM", id, got)
		}
	}
	return me
}

var (
	tagRE   = regexp.MustCompile(`<[^>]*>`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// innerText is the text of the element with this id, nested tags
// stripped, entities decoded and spaces collapsed. It reads up to the
// first closing tag of the element's name, so the element must not nest
// one of its own kind.
func (p *page) innerText(t *testing.T, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<([a-z0-9]+)\b[^>]*\sid="` + regexp.QuoteMeta(id) + `"[^>]*>`).FindStringSubmatchIndex(p.body)
	if m == nil {
		t.Fatalf("%s: no element #%s\nbody: %s", p, id, excerpt(p.body))
	}
	tag := p.body[m[2]:m[3]]
	rest := p.body[m[1]:]
	end := strings.Index(rest, "</"+tag+">")
	if end < 0 {
		t.Fatalf("%s: element #%s is not closed", p, id)
	}
	s := html.UnescapeString(tagRE.ReplaceAllString(rest[:end], ""))
	return strings.TrimSpace(spaceRE.ReplaceAllString(strings.ReplaceAll(s, "\u00a0", " "), " "))
}
