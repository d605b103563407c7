package providers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// The scenario tests drive the mock as the broker does, with go-oidc and
// x/oauth2 through HTTP, and each proves that the mock really misbehaves
// the way the scenario says: every one compares against what a correct IdP
// sends, so a scenario that did nothing would fail it.

// scenarioRun is one login at a mock IdP with a scenario, up to the
// redirect back to the client.
type scenarioRun struct {
	h            *harness
	idp          string
	provider     *oidc.Provider
	conf         *oauth2.Config
	verifier     string
	state, nonce string
	back         *url.URL
}

// scenarioLogin runs the authorization request (acr_values acr) and posts
// the login form with identity and the scenario fields, as a scripted
// client would.
func (h *harness) scenarioLogin(idp, acr, identity string, scenario url.Values) *scenarioRun {
	h.t.Helper()
	provider, conf := h.oidcClient(idp)
	run := &scenarioRun{h: h, idp: idp, provider: provider, conf: conf,
		verifier: oauth2.GenerateVerifier(), state: newSecret(), nonce: newSecret()}
	authURL := conf.AuthCodeURL(run.state, oauth2.S256ChallengeOption(run.verifier), oidc.Nonce(run.nonce),
		oauth2.SetAuthURLParam("acr_values", acr))
	resp, page := h.get(authURL)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	f := parseLoginForm(h.t, h.srv.URL, page)
	form := url.Values{"tx": {f.tx}, "identity": {identity}, "action": {"login"}}
	for k, v := range scenario {
		form[k] = v
	}
	resp, page = h.postForm(f.action, form)
	run.back = redirectTarget(h.t, resp, page)
	return run
}

// code is the authorization code of the redirect; it fails the test when
// the redirect carries none.
func (run *scenarioRun) code() string {
	run.h.t.Helper()
	q := run.back.Query()
	if q.Get("code") == "" || q.Get("state") != run.state || q.Get("iss") != run.h.issuer(run.idp) {
		run.h.t.Fatalf("redirect without code, state or iss: %v", q)
	}
	return q.Get("code")
}

// exchange redeems the code through ctx's HTTP client, if any.
func (run *scenarioRun) exchange(ctx context.Context) (*oauth2.Token, error) {
	return run.conf.Exchange(ctx, run.code(), oauth2.VerifierOption(run.verifier))
}

// tokens redeems the code and returns the access token and the id_token.
func (run *scenarioRun) tokens() (at, idToken string) {
	run.h.t.Helper()
	tok, err := run.exchange(context.Background())
	if err != nil {
		run.h.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		run.h.t.Fatal("no id_token")
	}
	return tok.AccessToken, raw
}

// verify is what a relying party does with the id_token.
func (run *scenarioRun) verify(raw string) (*oidc.IDToken, error) {
	return run.provider.Verifier(&oidc.Config{ClientID: testClientID, SupportedSigningAlgs: []string{oidc.ES256}}).
		Verify(context.Background(), raw)
}

// payload checks only the id_token's signature against the IdP's JWKS and
// returns its claims, so that a token missing exp or iss can be read.
func (run *scenarioRun) payload(raw string) map[string]any {
	run.h.t.Helper()
	ks := oidc.NewRemoteKeySet(context.Background(), run.h.issuer(run.idp)+"/jwks")
	b, err := ks.VerifySignature(context.Background(), raw)
	if err != nil {
		run.h.t.Fatalf("id_token signature: %v", err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		run.h.t.Fatal(err)
	}
	return m
}

// userinfo returns the raw userinfo object.
func (run *scenarioRun) userinfo(at string) map[string]any {
	run.h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, run.h.issuer(run.idp)+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		run.h.t.Fatal(err)
	}
	m := decodeJSON(run.h.t, resp)
	if resp.StatusCode != http.StatusOK {
		run.h.t.Fatalf("userinfo: %d %v", resp.StatusCode, m)
	}
	return m
}

func TestScenarioACR(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	for _, tc := range []struct {
		name, idp, asked, scenario string
		want                       any // nil: no acr claim
	}{
		{"no scenario asserts the level asked", "laposte", "eidas2", "", "eidas2"},
		{"lower than asked", "laposte", "eidas3", "eidas1", "eidas1"},
		{"higher than asked", "laposte", "eidas1", "eidas3", "eidas3"},
		{"outside the IdP's acr_values", "ameli", "eidas1", "eidas3", "eidas3"},
		{"eIDAS LoA URI", "laposte", "eidas2", "http://eidas.europa.eu/LoA/high", "http://eidas.europa.eu/LoA/high"},
		{"unknown value", "laposte", "eidas2", "eidas9", "eidas9"},
		{"none omits the claim", "laposte", "eidas2", "none", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := h.withT(t)
			run := h.scenarioLogin(tc.idp, tc.asked, "angela-dubois", url.Values{"scenario_acr": {tc.scenario}})
			_, raw := run.tokens()
			// The token is otherwise correct: a relying party's
			// signature and claims checks pass, only the acr is wrong.
			if _, err := run.verify(raw); err != nil {
				t.Fatalf("verify: %v", err)
			}
			got, has := run.payload(raw)["acr"]
			if tc.want == nil && has {
				t.Fatalf("acr = %v, want no acr claim", got)
			}
			if tc.want != nil && got != tc.want {
				t.Fatalf("acr = %v, want exactly %v", got, tc.want)
			}
		})
	}
}

func TestScenarioAMR(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	for _, tc := range []struct {
		scenario string
		want     []string // nil: no amr claim
	}{
		{"", []string{"pwd"}},
		{"mfa otp", []string{"mfa", "otp"}},
		{"pwd,mfa", []string{"pwd", "mfa"}},
		{" hwk , pin ", []string{"hwk", "pin"}},
		{"none", nil},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			h := h.withT(t)
			run := h.scenarioLogin("impots", "eidas1", "angela-dubois", url.Values{"scenario_amr": {tc.scenario}})
			_, raw := run.tokens()
			got, has := run.payload(raw)["amr"]
			if tc.want == nil {
				if has {
					t.Fatalf("amr = %v, want no amr claim", got)
				}
				return
			}
			list, _ := got.([]any)
			var strs []string
			for _, v := range list {
				s, _ := v.(string)
				strs = append(strs, s)
			}
			if !slices.Equal(strs, tc.want) {
				t.Fatalf("amr = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScenarioError(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	for _, code := range scenarioErrors {
		t.Run(code, func(t *testing.T) {
			h := h.withT(t)
			run := h.scenarioLogin("laposte", "eidas2", "angela-dubois", url.Values{"scenario_error": {code}})
			if got := run.back.Scheme + "://" + run.back.Host + run.back.Path; got != testRedirect {
				t.Fatalf("redirected to %s", got)
			}
			q := run.back.Query()
			if q.Has("code") {
				t.Fatalf("redirect carries a code: %v", q)
			}
			if q.Get("error") != code || q.Get("error_description") == "" {
				t.Errorf("error = %q, error_description = %q; want %s with a description", q.Get("error"), q.Get("error_description"), code)
			}
			if q.Get("state") != run.state || q.Get("iss") != h.issuer("laposte") {
				t.Errorf("state = %q, iss = %q; want the request's state and the issuer", q.Get("state"), q.Get("iss"))
			}
		})
	}
}

func TestScenarioSlowToken(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	impatient := oidc.ClientContext(context.Background(), &http.Client{Timeout: 200 * time.Millisecond})

	// Without the scenario the exchange fits easily in 200 ms.
	run := h.scenarioLogin("impots", "eidas1", "angela-dubois", nil)
	if _, err := run.exchange(impatient); err != nil {
		t.Fatalf("exchange without scenario: %v", err)
	}

	// With it, the client gives up; the mock stops waiting as soon as the
	// client has gone, so this costs 200 ms, not 5 s. The auth style is
	// fixed because x/oauth2's auto-detection would retry the timed-out
	// call with client_secret_post and report that retry's invalid_grant
	// (the first call spent the code), hiding the timeout.
	run = h.scenarioLogin("impots", "eidas1", "angela-dubois", url.Values{"scenario_token_delay": {"1s"}})
	run.conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	start := time.Now()
	_, err := run.exchange(impatient)
	if err == nil {
		t.Fatal("exchange with a 1 s delay succeeded within a 200 ms client timeout")
	}
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("exchange error %v is not a timeout", err)
	}
	// Once the delay is over, the mock has issued nothing for that code:
	// it stopped waiting when the client went away.
	time.Sleep(time.Until(start.Add(1300 * time.Millisecond)))
	if _, issued := h.s.idpByID("impots").redeemed.get(hashKey(run.code())); issued {
		t.Error("the mock issued tokens to a client that had gone")
	}

	// A patient client gets valid tokens, after the delay.
	run = h.scenarioLogin("impots", "eidas1", "angela-dubois", url.Values{"scenario_token_delay": {"300ms"}})
	start = time.Now()
	_, raw := run.tokens()
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("token answered after %v, want at least 300ms", d)
	}
	if _, err := run.verify(raw); err != nil {
		t.Errorf("verify after a delay: %v", err)
	}
}

func TestScenarioWrongKey(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	resp, body := h.get(h.issuer("laposte") + "/jwks")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %d", resp.StatusCode)
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &jwks); err != nil {
		t.Fatal(err)
	}
	published := jwks.Key(kidOf(t, h.scenarioLogin("laposte", "eidas2", "angela-dubois", nil).idToken()))
	if len(published) != 1 {
		t.Fatalf("the normal id_token's kid is not published once: %v", published)
	}

	for _, tc := range []struct {
		value       string
		publishedID bool
	}{
		{"forged", true},
		{"unknown_kid", false},
	} {
		t.Run(tc.value, func(t *testing.T) {
			h := h.withT(t)
			run := h.scenarioLogin("laposte", "eidas2", "angela-dubois", url.Values{"scenario_wrong_key": {tc.value}})
			raw := run.idToken()
			kid := kidOf(t, raw)
			if got := kid == published[0].KeyID; got != tc.publishedID {
				t.Errorf("kid %q is the published one: %v, want %v", kid, got, tc.publishedID)
			}
			if !tc.publishedID && len(jwks.Key(kid)) != 0 {
				t.Errorf("kid %q is in the JWKS", kid)
			}
			if _, err := run.verify(raw); err == nil {
				t.Fatal("go-oidc accepted an id_token signed with an unpublished key")
			}
			// Under the published key the signature fails: it is the key
			// that is wrong, not the token's shape.
			jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify(published[0]); err == nil {
				t.Fatal("the id_token verifies under the published key")
			}
		})
	}
}

// idToken redeems the code and returns the id_token.
func (run *scenarioRun) idToken() string {
	run.h.t.Helper()
	_, raw := run.tokens()
	return raw
}

// kidOf reads the kid of a compact JWS header.
func kidOf(t *testing.T, raw string) string {
	t.Helper()
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil || hdr.Kid == "" {
		t.Fatalf("header %s: no kid (%v)", b, err)
	}
	return hdr.Kid
}

func TestScenarioDropClaim(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	for _, tc := range []struct {
		value, claim          string
		inIDToken, inUserinfo bool // where the claim is still expected
	}{
		{"birthdate", "birthdate", false, false},
		{"given_name", "given_name", false, false},
		{"family_name", "family_name", false, false},
		{"gender", "gender", false, false},
		{"birthplace", "birthplace", false, false},
		{"birthcountry", "birthcountry", false, false},
		{"email", "email", false, false},
		{"sub", "sub", false, false},
		{"userinfo:sub", "sub", true, false},
		{"id_token:sub", "sub", false, true},
		{"nonce", "nonce", false, false},
		{"acr", "acr", false, false},
		{"exp", "exp", false, false},
	} {
		t.Run(tc.value, func(t *testing.T) {
			h := h.withT(t)
			// A correct login releases every claim tested here.
			normal := h.scenarioLogin("laposte", "eidas2", "angela-dubois", nil)
			at, raw := normal.tokens()
			if _, ok := normal.payload(raw)[tc.claim]; !ok && slices.Contains(idTokenDroppable, tc.claim) {
				t.Fatalf("a normal id_token lacks %s", tc.claim)
			}
			if _, ok := normal.userinfo(at)[tc.claim]; !ok && slices.Contains(userinfoDroppable, tc.claim) {
				t.Fatalf("a normal userinfo lacks %s", tc.claim)
			}

			run := h.scenarioLogin("laposte", "eidas2", "angela-dubois", url.Values{"scenario_drop_claim": {tc.value}})
			at, raw = run.tokens()
			idt, ui := run.payload(raw), run.userinfo(at)
			if _, ok := idt[tc.claim]; ok != (tc.inIDToken && slices.Contains(idTokenDroppable, tc.claim)) {
				t.Errorf("id_token has %s: %v (%v)", tc.claim, ok, idt)
			}
			if _, ok := ui[tc.claim]; ok != (tc.inUserinfo && slices.Contains(userinfoDroppable, tc.claim)) {
				t.Errorf("userinfo has %s: %v (%v)", tc.claim, ok, ui)
			}
			// Only that claim goes, and the others keep their JSON types.
			if idt["iss"] == nil || (tc.claim != "family_name" && ui["family_name"] == nil) {
				t.Errorf("other claims went too: id_token %v, userinfo %v", idt, ui)
			}
			for _, c := range []string{"exp", "iat", "auth_time"} {
				if _, isNumber := idt[c].(float64); !isNumber && c != tc.claim {
					t.Errorf("id_token %s = %#v, want a JSON number", c, idt[c])
				}
			}
		})
	}
}

func TestScenarioBadCOG(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	want := h.s.byID["angela-dubois"]
	for _, tc := range []struct {
		value, claim, bad, other, otherWant string
	}{
		{"birthplace", "birthplace", "7510", "birthcountry", want.Birthcountry},
		{"birthcountry", "birthcountry", "9910", "birthplace", want.Birthplace},
	} {
		t.Run(tc.value, func(t *testing.T) {
			h := h.withT(t)
			run := h.scenarioLogin("impots", "eidas1", "angela-dubois", url.Values{"scenario_bad_cog": {tc.value}})
			at, raw := run.tokens()
			if _, err := run.verify(raw); err != nil {
				t.Fatalf("verify: %v", err)
			}
			ui := run.userinfo(at)
			if ui[tc.claim] != tc.bad {
				t.Errorf("userinfo %s = %v, want %q (the identity has %q)", tc.claim, ui[tc.claim], tc.bad, want.Birthplace)
			}
			if ui[tc.other] != tc.otherWant || ui["given_name"] != want.GivenName || ui["birthdate"] != want.Birthdate {
				t.Errorf("the rest of the identity changed: %v", ui)
			}
		})
	}
}

func TestScenarioInvalidValues(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	_, page := h.get(h.authURL("laposte", url.Values{"acr_values": {"eidas2"}}))
	f := parseLoginForm(t, h.srv.URL, page)
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string // named on the page
	}{
		{"acr with a space", url.Values{"scenario_acr": {"eidas 2"}}, "scenario_acr"},
		{"acr with markup", url.Values{"scenario_acr": {"<b>eidas2</b>"}}, "scenario_acr"},
		{"acr too long", url.Values{"scenario_acr": {strings.Repeat("e", 65)}}, "scenario_acr"},
		{"amr with none among values", url.Values{"scenario_amr": {"pwd none"}}, "scenario_amr"},
		{"amr only separators", url.Values{"scenario_amr": {" , ,"}}, "scenario_amr"},
		{"amr repeated value", url.Values{"scenario_amr": {"pwd pwd"}}, "scenario_amr"},
		{"amr too many", url.Values{"scenario_amr": {"a b c d e f g h i"}}, "scenario_amr"},
		{"unknown error", url.Values{"scenario_error": {"invalid_grant"}}, "scenario_error"},
		{"error in capitals", url.Values{"scenario_error": {"ACCESS_DENIED"}}, "scenario_error"},
		{"delay not a duration", url.Values{"scenario_token_delay": {"soon"}}, "scenario_token_delay"},
		{"delay negative", url.Values{"scenario_token_delay": {"-1s"}}, "scenario_token_delay"},
		{"delay zero", url.Values{"scenario_token_delay": {"0s"}}, "scenario_token_delay"},
		{"delay over 60 s", url.Values{"scenario_token_delay": {"61s"}}, "scenario_token_delay"},
		{"delay bare over 60", url.Values{"scenario_token_delay": {"90"}}, "scenario_token_delay"},
		{"wrong_key yes", url.Values{"scenario_wrong_key": {"yes"}}, "scenario_wrong_key"},
		{"drop unknown claim", url.Values{"scenario_drop_claim": {"password"}}, "scenario_drop_claim"},
		{"drop nonce from userinfo", url.Values{"scenario_drop_claim": {"userinfo:nonce"}}, "scenario_drop_claim"},
		{"drop given_name from id_token", url.Values{"scenario_drop_claim": {"id_token:given_name"}}, "scenario_drop_claim"},
		{"drop from elsewhere", url.Values{"scenario_drop_claim": {"jwks:sub"}}, "scenario_drop_claim"},
		{"bad_cog as a code", url.Values{"scenario_bad_cog": {"7510"}}, "scenario_bad_cog"},
		{"unknown scenario field", url.Values{"scenario_acrs": {"eidas1"}}, "scenario_acrs"},
		{"repeated field", url.Values{"scenario_acr": {"eidas1", "eidas2"}}, "scenario_acr"},
		{"oversized value", url.Values{"scenario_error": {strings.Repeat("x", maxScenarioValue+1)}}, "scenario_error"},
		{"error with a token fault", url.Values{"scenario_error": {"server_error"}, "scenario_token_delay": {"1s"}}, "scenario_token_delay"},
		{"acr chosen and dropped", url.Values{"scenario_acr": {"eidas1"}, "scenario_drop_claim": {"acr"}}, "scenario_drop_claim"},
		{"amr chosen and dropped", url.Values{"scenario_amr": {"mfa"}, "scenario_drop_claim": {"id_token:amr"}}, "scenario_drop_claim"},
		{"birthplace bad and dropped", url.Values{"scenario_bad_cog": {"birthplace"}, "scenario_drop_claim": {"birthplace"}}, "scenario_drop_claim"},
	} {
		form := url.Values{"tx": {f.tx}, "identity": {"angela-dubois"}, "action": {"login"}}
		for k, v := range tc.form {
			form[k] = v
		}
		resp, body := h.postForm(f.action, form)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: status %d, Location %q; want a 400 page", tc.name, resp.StatusCode, resp.Header.Get("Location"))
			continue
		}
		if !strings.Contains(body, `role="alert"`) || !strings.Contains(body, "champ "+tc.field) {
			t.Errorf("%s: the page does not name %s in an alert", tc.name, tc.field)
		}
		if !strings.Contains(body, `<details class="fr-mb-4w" id="scenario" open>`) {
			t.Errorf("%s: the scenario section is not unfolded", tc.name)
		}
		if strings.Contains(body, "<b>eidas2</b>") {
			t.Errorf("%s: the refused value is echoed unescaped", tc.name)
		}
		if tc.field != "scenario_acrs" {
			control := regexp.MustCompile(`<(?:input|select)[^>]*name="` + tc.field + `"[^>]*>`).FindString(body)
			if !strings.Contains(control, `aria-describedby="login-error" aria-invalid="true"`) {
				t.Errorf("%s: %s is not marked invalid: %s", tc.name, tc.field, control)
			}
		}
		// A refused choice keeps the identity picked.
		if !strings.Contains(body, `value="angela-dubois" required checked`) {
			t.Errorf("%s: the identity choice was lost", tc.name)
		}
	}
	// The transaction survived every refusal.
	resp, body := h.postForm(f.action, url.Values{"tx": {f.tx}, "identity": {"angela-dubois"}, "scenario_acr": {"eidas1"}})
	if q := redirectTarget(t, resp, body).Query(); q.Get("code") == "" {
		t.Fatalf("no code after the refusals: %v", q)
	}
}

func TestScenarioFromForm(t *testing.T) {
	for _, tc := range []struct {
		form url.Values
		want Scenario
	}{
		{url.Values{}, Scenario{}},
		{url.Values{"identity": {"x"}, "tx": {"y"}, "scenario_acr": {""}, "scenario_amr": {" "}, "scenario_error": {""},
			"scenario_token_delay": {""}, "scenario_wrong_key": {""}, "scenario_drop_claim": {""}, "scenario_bad_cog": {""}}, Scenario{}},
		{url.Values{"scenario_token_delay": {"10"}}, Scenario{TokenDelay: 10 * time.Second}},
		{url.Values{"scenario_token_delay": {"1500ms"}}, Scenario{TokenDelay: 1500 * time.Millisecond}},
		{url.Values{"scenario_token_delay": {"1m"}}, Scenario{TokenDelay: time.Minute}},
		{url.Values{"scenario_amr": {"none"}}, Scenario{OmitAMR: true}},
		{url.Values{"scenario_acr": {"none"}, "scenario_amr": {"mfa,otp"}}, Scenario{ACR: "none", AMR: []string{"mfa", "otp"}}},
		{url.Values{"scenario_drop_claim": {"userinfo:sub"}}, Scenario{DropClaim: "sub", DropFrom: "userinfo"}},
		{url.Values{"scenario_error": {"access_denied"}}, Scenario{Error: "access_denied"}},
		{url.Values{"scenario_wrong_key": {"forged"}, "scenario_bad_cog": {"birthcountry"}}, Scenario{WrongKey: "forged", BadCOG: "birthcountry"}},
	} {
		got, err := scenarioFromForm(tc.form)
		if err != nil {
			t.Errorf("%v: %v", tc.form, err)
			continue
		}
		if got.String() != tc.want.String() || got.isZero() != tc.want.isZero() {
			t.Errorf("%v: got %q, want %q", tc.form, got, tc.want)
		}
	}
}

func TestLoginPageScenarioSection(t *testing.T) {
	t.Parallel()
	h := sharedHarness(t)
	resp, page := h.get(h.authURL("laposte", url.Values{"acr_values": {"eidas2"}, "scope": {"openid profile birth"}}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Collapsed, without script, and saying which acr a normal login gets.
	if !strings.Contains(page, `<details class="fr-mb-4w" id="scenario">`) || !strings.Contains(page, "<summary>Scénario de test") {
		t.Error("no collapsed Scénario de test section")
	}
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Error("the login page has a script")
	}
	for _, want := range []string{
		"Niveau qui sera attesté (acr)</dt>\n      <dd><code>eidas2</code>",
		"Comportement normal : eidas2",
		"eidas1 (inférieur au niveau demandé)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	// Every control is labelled, and every select starts on the normal
	// behaviour with nothing else selected.
	for _, name := range scenarioFields {
		if !strings.Contains(page, `<label class="fr-label" for="`+name+`">`) || !strings.Contains(page, `id="`+name+`" name="`+name+`"`) {
			t.Errorf("%s has no labelled control", name)
		}
	}
	selects := regexp.MustCompile(`(?s)<select[^>]*name="([^"]+)".*?</select>`).FindAllStringSubmatch(page, -1)
	// One select per field but scenario_amr, and the short form's preset.
	if len(selects) != len(scenarioFields) {
		t.Errorf("%d selects, want %d", len(selects), len(scenarioFields))
	}
	for _, s := range selects {
		first := regexp.MustCompile(`<option value="([^"]*)"`).FindStringSubmatch(s[0])
		if first == nil || first[1] != "" || strings.Contains(s[0], " selected") {
			t.Errorf("%s does not default to the normal behaviour", s[1])
		}
	}
	if !strings.Contains(page, `name="scenario_amr" value=""`) {
		t.Error("scenario_amr is not empty by default")
	}
	// The ameli mock stops at eidas1: the page says eidas3 is outside it.
	_, page = h.get(h.authURL("ameli", nil))
	if !strings.Contains(page, "eidas3 (hors des niveaux de ce fournisseur)") {
		t.Error("ameli's page does not flag eidas3 as outside its levels")
	}

	// Submitting the page as it comes (every field at its default) is a
	// normal login.
	run := h.scenarioLogin("laposte", "eidas2", "angela-dubois", url.Values{
		"scenario_acr": {""}, "scenario_amr": {""}, "scenario_error": {""}, "scenario_token_delay": {""},
		"scenario_wrong_key": {""}, "scenario_drop_claim": {""}, "scenario_bad_cog": {""},
	})
	at, raw := run.tokens()
	idt, err := run.verify(raw)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var c struct {
		ACR string   `json:"acr"`
		AMR []string `json:"amr"`
	}
	if err := idt.Claims(&c); err != nil || c.ACR != "eidas2" || !slices.Equal(c.AMR, []string{"pwd"}) {
		t.Errorf("acr %q amr %v (%v), want eidas2 [pwd]", c.ACR, c.AMR, err)
	}
	if ui := run.userinfo(at); ui["birthplace"] != "75107" {
		t.Errorf("userinfo birthplace = %v", ui["birthplace"])
	}
}

// withT is the same harness reporting to a subtest.
func (h *harness) withT(t *testing.T) *harness {
	return &harness{t: t, s: h.s, srv: h.srv, browser: h.browser}
}
