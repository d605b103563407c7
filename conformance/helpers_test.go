package conformance

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

// The test person of most modules, and the claims the broker must release
// for them (providers/identities.csv).
const (
	person      = "angela-dubois"
	otherPerson = "jean-pierre-martin-dupont"
	idp         = "impots"
	postLogout  = "https://sp.example/bye"
)

var angelaPivot = map[string]string{
	"given_name": "Angela Claire Louise", "family_name": "Dubois", "birthdate": "1962-08-24",
	"gender": "female", "birthplace": "75107", "birthcountry": "99100",
}

// rp is the conformance suite's stand-in: a relying party built on go-oidc
// and x/oauth2 that knows the broker only through its discovery document.
type rp struct {
	s        *teststack.Stack
	provider *oidc.Provider
	meta     map[string]any
	verifier *oidc.IDTokenVerifier
	// basic and post are the SP's OAuth client with client_secret_basic
	// and client_secret_post.
	basic, post *oauth2.Config
	rec         *recorder
	client      *http.Client
}

// recorder keeps the headers of the last token endpoint response, which
// x/oauth2 does not expose.
type recorder struct {
	mu   sync.Mutex
	last http.Header
}

func (rc *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/token") {
		rc.mu.Lock()
		rc.last = resp.Header.Clone()
		rc.mu.Unlock()
	}
	return resp, err
}

func (rc *recorder) header() http.Header {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.last
}

// newRP starts a stack with opts and discovers it with go-oidc, which
// already checks that the issuer equals the URL discovery was fetched from.
func newRP(t *testing.T, opts ...teststack.Option) *rp {
	t.Helper()
	s := teststack.New(t, opts...)
	r := &rp{s: s, rec: &recorder{}}
	r.client = &http.Client{Transport: r.rec, Timeout: 10 * time.Second}
	p, err := oidc.NewProvider(oidc.ClientContext(t.Context(), r.client), s.BrokerURL)
	if err != nil {
		t.Fatalf("discovery with go-oidc: %v", err)
	}
	r.provider = p
	if err := p.Claims(&r.meta); err != nil {
		t.Fatalf("discovery claims: %v", err)
	}
	algs := r.strs(t, "id_token_signing_alg_values_supported")
	r.verifier = p.Verifier(&oidc.Config{ClientID: teststack.SPID, SupportedSigningAlgs: algs})
	mk := func(style oauth2.AuthStyle) *oauth2.Config {
		ep := p.Endpoint()
		ep.AuthStyle = style
		return &oauth2.Config{ClientID: teststack.SPID, ClientSecret: teststack.SPSecret, Endpoint: ep, RedirectURL: teststack.SPRedirect}
	}
	r.basic, r.post = mk(oauth2.AuthStyleInHeader), mk(oauth2.AuthStyleInParams)
	return r
}

func (r *rp) ctx(t *testing.T) context.Context {
	return oidc.ClientContext(context.WithValue(t.Context(), oauth2.HTTPClient, r.client), r.client)
}

// withBrowser is the same relying party seen from another browser.
func (r *rp) withBrowser() *rp {
	s := *r.s
	s.Browser = teststack.NewBrowser()
	out := *r
	out.s = &s
	return &out
}

// strs reads a string array from the discovery document.
func (r *rp) strs(t *testing.T, key string) []string {
	t.Helper()
	return strList(t, r.meta, key)
}

func strList(t *testing.T, m map[string]any, key string) []string {
	t.Helper()
	raw, ok := m[key].([]any)
	if !ok {
		t.Fatalf("discovery %s = %#v, want a JSON array of strings", key, m[key])
	}
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("discovery %s holds %#v, want strings only", key, v)
		}
		out = append(out, s)
	}
	return out
}

// spConfig is the registered SP, with the defaults config validation set.
func (r *rp) spConfig() *config.SP { return &r.s.Config.Broker.Platforms[0].ServiceProviders[0] }

// --- config options

func withScopes(extra ...string) teststack.Option {
	return func(c *config.Config) {
		sp := &c.Broker.Platforms[0].ServiceProviders[0]
		for _, s := range extra {
			if !slices.Contains(sp.Scopes, s) {
				sp.Scopes = append(sp.Scopes, s)
			}
		}
	}
}

func withNonce(policy string) teststack.Option {
	return func(c *config.Config) { c.Broker.Platforms[0].Nonce = policy }
}

func withIDTokenAlg(alg string) teststack.Option {
	return func(c *config.Config) { c.Broker.Platforms[0].ServiceProviders[0].IDTokenSignedResponseAlg = alg }
}

func withPlatformACR(levels ...string) teststack.Option {
	return func(c *config.Config) { c.Broker.Platforms[0].ACRValues = levels }
}

// --- the authorization request

func random() string { return rand.Text() }

// params is the suite's authorization request: code flow, a fresh state
// and nonce, and no acr_values (the suite sends none unless a module
// adds them).
func params(scope string) url.Values {
	return url.Values{
		"client_id": {teststack.SPID}, "redirect_uri": {teststack.SPRedirect}, "response_type": {"code"},
		"scope": {scope}, "state": {random()}, "nonce": {random()},
	}
}

func (r *rp) authorizeURL(p url.Values) string { return r.s.BrokerURL + "/authorize?" + p.Encode() }

// authorize sends the browser to the authorization endpoint and returns the
// first answer.
func (r *rp) authorize(t *testing.T, p url.Values) *http.Response {
	t.Helper()
	resp, _ := teststack.Get(t, r.s.Browser, r.authorizeURL(p))
	return resp
}

// toSP asserts resp sends the browser straight back to the SP's
// redirect_uri (303 or 302, never a 307 that would replay a POST) and
// returns where.
func toSP(t *testing.T, resp *http.Response) *url.URL {
	t.Helper()
	loc := resp.Header.Get("Location")
	if (resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound) || !strings.HasPrefix(loc, teststack.SPRedirect+"?") {
		t.Fatalf("want a redirect to %s, got %d Location %q", teststack.SPRedirect, resp.StatusCode, loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// login runs a whole browser login and returns the redirect to the SP.
func (r *rp) login(t *testing.T, p url.Values, identity string) *url.URL {
	t.Helper()
	return r.s.Login(t, p, idp, identity)
}

// continueLogin drives the browser from the authorization endpoint's first
// answer to the SP, through the chooser and the IdP when the broker asks
// for a login. It returns the redirect to the SP and the IdP authorization
// request ("" when the broker did not send the browser to an IdP).
func (r *rp) continueLogin(t *testing.T, first *http.Response, identity string) (*url.URL, string) {
	t.Helper()
	s := r.s
	if first.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize: %d, want 303", first.StatusCode)
	}
	if loc := first.Header.Get("Location"); loc != "/authorize/choose" {
		return s.Finish(t, teststack.Abs(s.BrokerURL, loc)), ""
	}
	_, page := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
	resp, _ := teststack.Post(t, s.Browser, s.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {idp}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("choose: %d", resp.StatusCode)
	}
	idpAuth := resp.Header.Get("Location")
	_, page = teststack.Get(t, s.Browser, idpAuth)
	resp, _ = teststack.Post(t, s.Browser, strings.Split(idpAuth, "?")[0], url.Values{"tx": {teststack.Field(t, teststack.TxRE, page)}, "identity": {identity}, "action": {"login"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("idp login: %d", resp.StatusCode)
	}
	return s.Finish(t, resp.Header.Get("Location")), idpAuth
}

// codeFrom checks a successful authorization response (RFC 6749 §4.1.2,
// RFC 9207 §2) and returns its code.
func (r *rp) codeFrom(t *testing.T, u *url.URL, state string) string {
	t.Helper()
	q := u.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if base := u.Scheme + "://" + u.Host + u.Path; base != teststack.SPRedirect || u.Fragment != "" {
		t.Fatalf("authorization response at %s, want %s in the query", u, teststack.SPRedirect)
	}
	if len(q["state"]) != 1 || q.Get("state") != state {
		t.Errorf("authorization response state = %q, want %q", q["state"], state)
	}
	if len(q["iss"]) != 1 || q.Get("iss") != r.s.BrokerURL {
		t.Errorf("authorization response iss = %q, want %q (RFC 9207)", q["iss"], r.s.BrokerURL)
	}
	if len(q["code"]) != 1 || q.Get("code") == "" {
		t.Fatalf("authorization response has no single code: %s", u)
	}
	return q.Get("code")
}

// errorFrom checks an authorization error response: the error code, state
// echoed when it was sent (absent otherwise), iss, and no code.
func (r *rp) errorFrom(t *testing.T, u *url.URL, want []string, state string) string {
	t.Helper()
	q := u.Query()
	if !slices.Contains(want, q.Get("error")) {
		t.Errorf("error = %q (%s), want one of %v", q.Get("error"), q.Get("error_description"), want)
	}
	if q.Has("code") {
		t.Errorf("an error response carries a code: %s", u)
	}
	if state == "" && q.Has("state") {
		t.Errorf("state %q returned though the request carried none", q.Get("state"))
	}
	if state != "" && (len(q["state"]) != 1 || q.Get("state") != state) {
		t.Errorf("error response state = %q, want %q", q["state"], state)
	}
	if len(q["iss"]) != 1 || q.Get("iss") != r.s.BrokerURL {
		t.Errorf("error response iss = %q, want %q (RFC 9207)", q["iss"], r.s.BrokerURL)
	}
	if d := q.Get("error_description"); strings.ContainsAny(d, "\r\n\t\"\\") {
		t.Errorf("error_description has characters RFC 6749 forbids: %q", d)
	}
	return q.Get("error")
}

// tokens is what the token endpoint returned, the id_token verified.
type tokens struct {
	tok    *oauth2.Token
	raw    string
	idt    *oidc.IDToken
	claims map[string]any
}

func (tk tokens) sub() string { return tk.idt.Subject }

// exchange redeems code with cfg and checks the token response and its
// id_token as the suite does (nonce "" means none was sent).
func (r *rp) exchange(t *testing.T, cfg *oauth2.Config, code, nonce string, opts ...oauth2.AuthCodeOption) tokens {
	t.Helper()
	tok, err := cfg.Exchange(r.ctx(t), code, opts...)
	if err != nil {
		t.Fatalf("token endpoint: %v", err)
	}
	h := r.rec.header()
	if ct, _, _ := mime.ParseMediaType(h.Get("Content-Type")); ct != "application/json" {
		t.Errorf("token response Content-Type = %q, want application/json", h.Get("Content-Type"))
	}
	if cc := h.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("token response Cache-Control = %q, want no-store (RFC 6749 §5.1)", cc)
	}
	if !strings.EqualFold(tok.TokenType, "Bearer") || tok.AccessToken == "" {
		t.Errorf("token_type %q, access_token %q", tok.TokenType, tok.AccessToken)
	}
	if exp, ok := tok.Extra("expires_in").(float64); !ok || exp <= 0 || exp != float64(int64(exp)) {
		t.Errorf("expires_in = %v, want a positive integer", tok.Extra("expires_in"))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("token response has no id_token")
	}
	idt, claims := r.checkIDToken(t, raw, nonce, tok.AccessToken)
	return tokens{tok: tok, raw: raw, idt: idt, claims: claims}
}

// checkIDToken verifies an id_token per OIDC Core §3.1.3.7 and the suite's
// ValidateIdToken*: signature against the JWKS, iss, aud, exp, iat, sub,
// nonce, auth_time, at_hash and a kid that resolves.
func (r *rp) checkIDToken(t *testing.T, raw, nonce, accessToken string) (*oidc.IDToken, map[string]any) {
	t.Helper()
	idt, err := r.verifier.Verify(r.ctx(t), raw)
	if err != nil {
		t.Fatalf("id_token does not verify: %v", err)
	}
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if idt.Issuer != r.s.BrokerURL {
		t.Errorf("iss = %q, want %q", idt.Issuer, r.s.BrokerURL)
	}
	if !slices.Equal(idt.Audience, []string{teststack.SPID}) {
		t.Errorf("aud = %v, want [%s]", idt.Audience, teststack.SPID)
	}
	if azp, ok := c["azp"]; ok && azp != teststack.SPID {
		t.Errorf("azp = %v, want %s", azp, teststack.SPID)
	}
	if idt.Subject == "" || len(idt.Subject) > 255 {
		t.Errorf("sub = %q, want 1 to 255 characters", idt.Subject)
	}
	if _, ok := c["iat"].(float64); !ok {
		t.Errorf("iat = %v, want a number", c["iat"])
	} else if idt.IssuedAt.After(now.Add(5*time.Second)) || idt.IssuedAt.Before(now.Add(-5*time.Minute)) {
		t.Errorf("iat = %v, not close to now", idt.IssuedAt)
	}
	if !idt.Expiry.After(now) || !idt.Expiry.After(idt.IssuedAt) {
		t.Errorf("exp = %v, iat = %v", idt.Expiry, idt.IssuedAt)
	}
	switch {
	case nonce != "" && idt.Nonce != nonce:
		t.Errorf("nonce = %q, want %q", idt.Nonce, nonce)
	case nonce == "":
		if _, ok := c["nonce"]; ok {
			t.Errorf("nonce %v present though the request carried none", c["nonce"])
		}
	}
	if at, ok := c["auth_time"]; ok {
		if n, isNum := at.(float64); !isNum || time.Unix(int64(n), 0).After(now.Add(5*time.Second)) {
			t.Errorf("auth_time = %v, want a past NumericDate", at)
		}
	}
	if err := idt.VerifyAccessToken(accessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	r.checkSignature(t, raw, "")
	return idt, c
}

// jwks fetches the published key set.
func (r *rp) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	uri, _ := r.meta["jwks_uri"].(string)
	resp, body := teststack.Get(t, http.DefaultClient, uri)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks_uri %s: %d", uri, resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("jwks_uri: %v", err)
	}
	return set
}

var jwsAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// checkSignature checks raw carries a kid that names exactly one key of
// the JWKS, of the header's alg, that verifies it (the suite's
// ValidateIdTokenSignatureUsingKid). wantAlg, when set, is the alg the
// header must name. It returns the header.
func (r *rp) checkSignature(t *testing.T, raw string, wantAlg string) jose.Header {
	t.Helper()
	jws, err := jose.ParseSigned(raw, jwsAlgs)
	if err != nil {
		t.Fatalf("id_token is not a JWS with a known alg: %v", err)
	}
	if len(jws.Signatures) != 1 {
		t.Fatalf("%d signatures", len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	if wantAlg != "" && h.Algorithm != wantAlg {
		t.Errorf("id_token alg = %s, want %s", h.Algorithm, wantAlg)
	}
	if h.KeyID == "" {
		t.Fatal("id_token header has no kid (OIDC Core §10.1, suite EnsureIdTokenContainsKid)")
	}
	set := r.jwks(t)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q names %d keys of the JWKS, want 1", h.KeyID, len(keys))
	}
	if keys[0].Algorithm != "" && keys[0].Algorithm != h.Algorithm {
		t.Errorf("kid %q is a %s key, the header says %s", h.KeyID, keys[0].Algorithm, h.Algorithm)
	}
	if _, err := jws.Verify(keys[0]); err != nil {
		t.Errorf("id_token signature does not verify with key %q: %v", h.KeyID, err)
	}
	return h
}

// flow is the suite's happy path: a browser login, the authorization
// response, the token exchange with client_secret_basic.
func (r *rp) flow(t *testing.T, p url.Values, identity string) tokens {
	t.Helper()
	u := r.login(t, p, identity)
	return r.exchange(t, r.basic, r.codeFrom(t, u, p.Get("state")), p.Get("nonce"))
}

// --- userinfo

// userinfo calls userinfo with go-oidc (GET, Bearer header) and returns
// its claims after checking sub against the id_token's.
func (r *rp) userinfo(t *testing.T, tk tokens) map[string]any {
	t.Helper()
	ui, err := r.provider.UserInfo(r.ctx(t), oauth2.StaticTokenSource(tk.tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var c map[string]any
	if err := ui.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if ui.Subject != tk.sub() {
		t.Errorf("userinfo sub %q differs from the id_token's %q (OIDC Core §5.3.2)", ui.Subject, tk.sub())
	}
	return c
}

// userinfoDo sends req to userinfo and decodes a 200 JSON answer.
func userinfoDo(t *testing.T, req *http.Request) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo %s: %d %s", req.Method, resp.StatusCode, body)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/json" {
		t.Errorf("userinfo Content-Type = %q, want application/json", resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("userinfo Cache-Control = %q, want no-store", cc)
	}
	var c map[string]any
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("userinfo body: %v", err)
	}
	return c
}

// wantClaims asserts c holds exactly sub plus want, string for string.
func wantClaims(t *testing.T, c map[string]any, sub string, want map[string]string) {
	t.Helper()
	if c["sub"] != sub {
		t.Errorf("userinfo sub = %v, want %s", c["sub"], sub)
	}
	for k, v := range want {
		if got, ok := c[k]; !ok || got != v {
			t.Errorf("userinfo %s = %#v, want %q", k, got, v)
		}
	}
	for k, v := range c {
		if _, ok := want[k]; !ok && k != "sub" {
			t.Errorf("userinfo releases %s = %#v, which the request did not ask for", k, v)
		}
	}
}

// noEmptyClaims asserts no claim is an empty string or null: OIDC Core
// §5.3.2 says a claim not returned SHOULD be omitted, not sent empty.
func noEmptyClaims(t *testing.T, c map[string]any) {
	t.Helper()
	for k, v := range c {
		if v == nil || v == "" {
			t.Errorf("userinfo %s = %#v: a claim without a value SHOULD be omitted (OIDC Core §5.3.2)", k, v)
		}
	}
}

func authTime(t *testing.T, tk tokens) int64 {
	t.Helper()
	n, ok := tk.claims["auth_time"].(float64)
	if !ok {
		t.Fatalf("id_token has no auth_time: %v", tk.claims)
	}
	return int64(n)
}

// --- browsing beyond the authorization endpoint

// landing is where a chain of redirects ended: at the SP (SP set) or on a
// page of the broker or an IdP.
type landing struct {
	SP     *url.URL
	URL    string
	Status int
	Body   string
}

// follow follows redirects from resp (the answer to a request to from)
// until the browser reaches the SP or a page.
func follow(t *testing.T, c *http.Client, from string, resp *http.Response, body string) landing {
	t.Helper()
	for range 10 {
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return landing{URL: from, Status: resp.StatusCode, Body: body}
		}
		if resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect {
			t.Errorf("%s answers %d: a POST would be replayed", from, resp.StatusCode)
		}
		loc := teststack.Abs(from, resp.Header.Get("Location"))
		if strings.HasPrefix(loc, "https://sp.example/") {
			u, err := url.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			return landing{SP: u, URL: loc, Status: resp.StatusCode}
		}
		from = loc
		resp, body = teststack.Get(t, c, loc)
	}
	t.Fatal("too many redirects")
	return landing{}
}

var (
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	formRE   = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
)

// submit posts the page's first form with its hidden fields, as a browser
// does when the citizen presses its button, and follows the answer.
func submit(t *testing.T, c *http.Client, pageURL, page string) landing {
	t.Helper()
	m := formRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form on the page:\n%s", page)
	}
	form := url.Values{}
	for _, f := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(f[1]), html.UnescapeString(f[2]))
	}
	action := teststack.Abs(pageURL, html.UnescapeString(m[1]))
	resp, body := teststack.Post(t, c, action, form)
	return follow(t, c, action, resp, body)
}

// oauthErr returns the error code and HTTP status of a token endpoint
// error response.
func oauthErr(err error) (code string, status int) {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode, re.Response.StatusCode
	}
	return "", 0
}
