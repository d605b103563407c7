package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestE2ELoginStandard logs in at the standard platform end to end, with
// the broker on a private Redis: through the demo SP process, then with the
// test itself as an independent OIDC client of each registered SP.
func TestE2ELoginStandard(t *testing.T) {
	st := startStack(t, stackOptions{})
	t.Run("discovery", func(t *testing.T) { checkDiscovery(t, st) })
	t.Run("demo-sp/impots", func(t *testing.T) { runDemoSPFlow(t, st, "impots", "jean-pierre-martin-dupont") })
	t.Run("other-sector-sp/client_secret_basic/impots", func(t *testing.T) { runRPFlow(t, st, rpCases[0]) })
	t.Run("demo-sp-client/client_secret_post/ameli", func(t *testing.T) { runRPFlow(t, st, rpCases[1]) })
}

// TestE2ELoginMemoryStore runs the same logins on the embedded in-memory
// store, so both stores are shown to work end to end.
func TestE2ELoginMemoryStore(t *testing.T) {
	st := startStack(t, stackOptions{Memory: true})
	if st.Redis != nil {
		t.Fatal("memory stack has a Redis")
	}
	t.Run("demo-sp/laposte", func(t *testing.T) { runDemoSPFlow(t, st, "laposte", "helene-lefevre") })
	t.Run("other-sector-sp/client_secret_basic/impots", func(t *testing.T) { runRPFlow(t, st, rpCases[0]) })
	t.Run("demo-sp-client/client_secret_post/ameli", func(t *testing.T) { runRPFlow(t, st, rpCases[1]) })
}

// checkDiscovery reads the discovery document as any OIDC client would.
func checkDiscovery(t *testing.T, st *stack) {
	resp, err := http.Get(st.Broker + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	for k, want := range map[string]any{
		"issuer": st.Broker, "authorization_endpoint": st.Broker + "/authorize", "token_endpoint": st.Broker + "/token",
		"userinfo_endpoint": st.Broker + "/userinfo", "jwks_uri": st.Broker + "/jwks", "end_session_endpoint": st.Broker + "/session/end",
		"authorization_response_iss_parameter_supported": true,
	} {
		if d[k] != want {
			t.Errorf("discovery %s = %#v, want %#v", k, d[k], want)
		}
	}
	has := func(k string, want ...string) {
		t.Helper()
		list, _ := d[k].([]any)
		for _, w := range want {
			if !slices.Contains(list, any(w)) {
				t.Errorf("discovery %s = %v, want it to hold %q", k, d[k], w)
			}
		}
	}
	has("response_types_supported", "code")
	has("subject_types_supported", "pairwise")
	has("id_token_signing_alg_values_supported", "ES256", "RS256")
	has("code_challenge_methods_supported", "S256")
	has("token_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post")
	has("acr_values_supported", "eidas1")
	has("scopes_supported", "openid", "identite_pivot", "profile", "birth", "email")
	has("claims_supported", "sub", "acr", "given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry")
	if l, _ := d["response_types_supported"].([]any); len(l) != 1 {
		t.Errorf("discovery response_types_supported = %v, want only code", l)
	}
}

// runDemoSPFlow logs in through the demo SP process, then logs out through
// the broker and the IdP, and shows that the next login asks again.
func runDemoSPFlow(t *testing.T, st *stack, idp, identityID string) {
	a := newAgent(t)
	who := loadIdentity(t, identityID)
	res := demoSPLogin(t, st, a, idp, identityID)
	// The demo SP asks for amr through the claims parameter.
	if got := res.Me.byID(t, "amr"); got != "pwd" {
		t.Errorf("demo SP /me shows amr %q, want the mock IdP's pwd", got)
	}
	for _, v := range []string{who["birthdate"], who["birthplace"], who["birthcountry"], who["email"]} {
		if !strings.Contains(res.Me.text(), v) {
			t.Errorf("demo SP /me does not show %q", v)
		}
	}
	if st.Redis != nil {
		if n, err := st.Redis.DBSize(stepCtx(t)).Result(); err != nil || n == 0 {
			t.Errorf("the broker's Redis holds %d keys after a login (err %v): the broker is not using it", n, err)
		}
	}

	demoSPLogout(t, st, a, idp, idp != "ameli")
	a.get(st.DemoSP+"/me").redirect(t, st.DemoSP+"/")
	// No SSO after the logout: the broker shows the chooser again.
	auth := a.post(st.DemoSP+"/login", url.Values{"acr_values": {"eidas1"}}).redirect(t, st.Broker+"/authorize")
	a.toChooser(t, st, auth.String())
}

// rpCase is one login with the test as the SP.
type rpCase struct {
	client     string
	style      oauth2.AuthStyle
	scopes     []string
	idp        string
	identity   string
	endSession bool // the IdP has an end_session endpoint
	askAMR     bool // ask for amr through the claims parameter
	// wantScope is the scope the token response grants; wantClaims the
	// claims userinfo releases.
	wantScope  string
	wantClaims []string
}

var pivotClaims = []string{"sub", "given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry"}

var rpCases = []rpCase{{
	// RS256 id_token and an ES256-signed userinfo JWT; profile is not
	// registered for this SP, so it is dropped.
	client: otherSPID, style: oauth2.AuthStyleInHeader,
	scopes: []string{"openid", "identite_pivot", "email", "profile"},
	idp:    "impots", identity: "francois-xavier-d-harcourt", endSession: true,
	wantScope:  "openid identite_pivot email",
	wantClaims: append([]string{"email", "iss", "aud", "iat"}, pivotClaims...),
}, {
	// ES256 id_token and plain JSON userinfo; born abroad, so birthplace
	// is empty; ameli has no end_session.
	client: demoSPID, style: oauth2.AuthStyleInParams,
	scopes: []string{"openid", "identite_pivot", "email"},
	idp:    "ameli", identity: "klaus-mueller", endSession: false, askAMR: true,
	wantScope:  "openid identite_pivot email",
	wantClaims: append([]string{"email"}, pivotClaims...),
}}

// runRPFlow is a whole login with the test as the SP: authorization
// response, token, id_token, userinfo, code replay, SSO, logout, no SSO.
func runRPFlow(t *testing.T, st *stack, c rpCase) {
	a := newAgent(t)
	who := loadIdentity(t, c.identity)
	start := time.Now()
	r := newRP(t, st, c.client, c.style, c.scopes...)
	r.AskAMR = c.askAMR
	code, _ := r.login(t, a, c.idp, c.identity, loginHooks{})

	tok, err := r.exchange(t, code)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	if got, _ := tok.Extra("scope").(string); got != c.wantScope {
		t.Errorf("token response scope = %q, want %q", got, c.wantScope)
	}
	sub, rawID := r.verifyIDToken(t, tok, start)
	claims := r.userinfoClaims(t, tok.AccessToken)
	wantIdentityClaims(t, claims, who, sub, c.wantClaims...)

	// A replayed code is refused, and the token it gave is revoked.
	if _, err := r.exchange(t, code); retrieveError(err) != "invalid_grant" {
		t.Errorf("second use of the code: %v, want invalid_grant", err)
	}
	status, hdr, body := r.userinfo(t, tok.AccessToken)
	if status != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("userinfo with the token of a replayed code: %d %q %s, want 401 invalid_token", status, hdr.Get("WWW-Authenticate"), body)
	}

	// SSO: while the broker session lives, a new request skips the chooser.
	sso := newRP(t, st, c.client, c.style, c.scopes...)
	a.get(sso.authURL()).redirect(t, st.Broker+"/authorize/consent")

	// RP-initiated logout with the id_token as hint, back to the
	// registered post_logout_redirect_uri with the same state.
	session := a.cookie(st.Broker, "sesame_std")
	state := randomString(t)
	q := url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {r.client.PostLogoutURI}, "state": {state}}
	back := brokerLogout(t, st, a, st.Broker+"/session/end?"+q.Encode(), c.idp, c.endSession, r.client.PostLogoutURI)
	wantQuery(t, "logout response", back, map[string]string{"state": state})
	if a.cookie(st.Broker, "sesame_std") != "" {
		t.Error("the broker session cookie survived the logout")
	}

	// No SSO after the logout.
	again := newRP(t, st, c.client, c.style, c.scopes...)
	a.toChooser(t, st, again.authURL())
	// The session is dead on the server too, not only forgotten by this
	// browser: its old cookie, replayed, gives no SSO either.
	kept := newAgent(t)
	kept.setCookie(st.Broker, "sesame_std", session)
	kept.toChooser(t, st, newRP(t, st, c.client, c.style, c.scopes...).authURL())
}

// TestE2ESameSubAcrossIdPs shows the pairwise sub: one person gets the
// same sub at one SP whatever the IdP, a different one in another sector,
// and another person gets another sub.
func TestE2ESameSubAcrossIdPs(t *testing.T) {
	st := startStack(t, stackOptions{})
	const person = "helene-lefevre"

	viaImpots := demoSPLogin(t, st, newAgent(t), "impots", person).Sub
	viaLaPoste := demoSPLogin(t, st, newAgent(t), "laposte", person).Sub
	if viaImpots != viaLaPoste {
		t.Errorf("same person at demo-sp: sub %q via impots but %q via laposte, want the same", viaImpots, viaLaPoste)
	}

	rpSub := func(client, idp, who string) string {
		t.Helper()
		r := newRP(t, st, client, oauth2.AuthStyleInHeader, "openid", "identite_pivot")
		code, _ := r.login(t, newAgent(t), idp, who, loginHooks{})
		tok, err := r.exchange(t, code)
		if err != nil {
			t.Fatalf("token request: %v", err)
		}
		sub, _ := r.verifyIDToken(t, tok, time.Now().Add(-time.Minute))
		return sub
	}
	// Any client of the demo-sp registration sees the same sub, here via a
	// third IdP.
	if got := rpSub(demoSPID, "ameli", person); got != viaImpots {
		t.Errorf("same person, demo-sp client, via ameli: sub %q, want %q", got, viaImpots)
	}
	otherImpots := rpSub(otherSPID, "impots", person)
	otherLaPoste := rpSub(otherSPID, "laposte", person)
	if otherImpots != otherLaPoste {
		t.Errorf("same person at other-sector-sp: sub %q via impots but %q via laposte", otherImpots, otherLaPoste)
	}
	if otherImpots == viaImpots {
		t.Errorf("same person has sub %q in two sectors, want different pairwise subs", otherImpots)
	}
	if someoneElse := demoSPLogin(t, st, newAgent(t), "impots", "klaus-mueller").Sub; someoneElse == viaImpots {
		t.Errorf("two people share sub %q at demo-sp", someoneElse)
	}
}

// TestE2ERedisHoldsNoSecrets looks at every key of the broker's Redis
// during a login: after the IdP step and after the token call, each key
// has a TTL and no key or value holds a secret or the identity in clear.
func TestE2ERedisHoldsNoSecrets(t *testing.T) {
	st := startStack(t, stackOptions{})
	const person = "noelle-loeuvre"
	who := loadIdentity(t, person)
	a := newAgent(t)
	r := newRP(t, st, demoSPID, oauth2.AuthStyleInHeader, "openid", "identite_pivot", "email")

	identityValues := map[string]string{
		"family name": who["family_name"], "given name": who["given_name"],
		"first given name": strings.Fields(who["given_name"])[0],
		"birthdate":        who["birthdate"], "email": who["email"],
	}
	check := func(when string, secrets map[string]string, wantKey string) {
		t.Helper()
		keys := st.scanKeys(t)
		if len(keys) == 0 {
			t.Fatalf("%s: Redis is empty; the broker does not store there", when)
		}
		found := false
		for k, e := range keys {
			if strings.Contains(k, wantKey) {
				found = true
			}
			if !strings.HasPrefix(k, "sesame:std:") {
				t.Errorf("%s: key %q is outside the platform's namespace sesame:std:", when, k)
			}
			switch {
			case e.PTTL == -2: // go-redis reports PTTL's -2 (no such key) as -2ns
				// Gone between SCAN and PTTL: a record taken meanwhile.
			case e.PTTL <= 0:
				t.Errorf("%s: key %q has no TTL (PTTL %v)", when, k, e.PTTL)
			}
			for what, s := range secrets {
				if s == "" {
					t.Fatalf("%s: the test lost the %s", when, what)
				}
				if strings.Contains(k, s) || bytes.Contains(e.Value, []byte(s)) {
					t.Errorf("%s: key %q holds the %s in clear", when, k, what)
				}
			}
		}
		if !found {
			t.Errorf("%s: no key contains %q among %d keys; the scan did not see the login", when, wantKey, len(keys))
		}
		t.Logf("%s: %d keys checked, all with a TTL", when, len(keys))
	}
	with := func(m map[string]string, extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}

	var atIdP map[string]string
	code, _ := r.login(t, a, "impots", person, loginHooks{afterCallback: func(idpAuth, cb *url.URL) {
		atIdP = with(identityValues, map[string]string{
			"SP state": r.State, "SP nonce": r.Nonce, "PKCE verifier": r.Verifier,
			"IdP state": idpAuth.Query().Get("state"), "IdP nonce": idpAuth.Query().Get("nonce"),
			"IdP code":       cb.Query().Get("code"),
			"session cookie": a.cookie(st.Broker, "sesame_std"),
		})
		check("after the IdP callback", atIdP, ":sess")
	}})
	tok, err := r.exchange(t, code)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	check("after the token call", with(atIdP, map[string]string{
		"code": code, "access token": tok.AccessToken, "id_token": raw,
		"session cookie (now)": a.cookie(st.Broker, "sesame_std"),
	}), "}at:")
}
