package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// rp is the test itself acting as a service provider: an independent
// client built only on go-oidc and x/oauth2, which knows the broker by its
// discovery document and the client's registration.
type rp struct {
	st       *stack
	client   spClient
	provider *oidc.Provider
	oauth    oauth2.Config
	// http is the client of every back-channel call; it records the token
	// requests so the test can check the client authentication method.
	http     *http.Client
	recorder *tokenRecorder

	State, Nonce, Verifier string
	// AskAMR sends the claims parameter asking for amr in the id_token.
	AskAMR bool
}

// amrClaims asks for amr in the id_token (OIDC Core §5.5), which the
// broker releases only on request, as FranceConnect does.
const amrClaims = `{"id_token":{"amr":{"essential":true}}}`

// newRP discovers the broker and prepares a login for client with the
// given token endpoint authentication (basic or post).
func newRP(t *testing.T, st *stack, clientID string, style oauth2.AuthStyle, scopes ...string) *rp {
	t.Helper()
	rec := &tokenRecorder{next: http.DefaultTransport}
	r := &rp{st: st, client: st.Clients[clientID], recorder: rec, http: &http.Client{Timeout: 10 * time.Second, Transport: rec}}
	p, err := oidc.NewProvider(oidc.ClientContext(stepCtx(t), r.http), st.Broker)
	if err != nil {
		t.Fatalf("go-oidc discovery of %s: %v", st.Broker, err)
	}
	r.provider = p
	ep := p.Endpoint()
	ep.AuthStyle = style
	r.oauth = oauth2.Config{
		ClientID: r.client.ID, ClientSecret: r.client.Secret, Endpoint: ep,
		RedirectURL: r.client.RedirectURI, Scopes: scopes,
	}
	r.State, r.Nonce, r.Verifier = randomString(t), randomString(t), oauth2.GenerateVerifier()
	return r
}

// authURL is the authorization request, with PKCE S256 and acr eidas1.
func (r *rp) authURL() string {
	opts := []oauth2.AuthCodeOption{oidc.Nonce(r.Nonce), oauth2.S256ChallengeOption(r.Verifier),
		oauth2.SetAuthURLParam("acr_values", "eidas1")}
	if r.AskAMR {
		opts = append(opts, oauth2.SetAuthURLParam("claims", amrClaims))
	}
	return r.oauth.AuthCodeURL(r.State, opts...)
}

// login runs a whole login with agent a and returns the code, after
// checking the authorization response (RFC 9207 iss, state echoed).
func (r *rp) login(t *testing.T, a *agent, idp, identityID string, hooks loginHooks) (string, brokerLogin) {
	t.Helper()
	bl := a.loginAtBroker(t, r.st, r.authURL(), idp, identityID, hooks)
	r.checkResponse(t, bl.Final)
	return bl.Final.Query().Get("code"), bl
}

func (r *rp) checkResponse(t *testing.T, final *url.URL) {
	t.Helper()
	if got := final.Scheme + "://" + final.Host + final.Path; got != r.client.RedirectURI {
		t.Fatalf("authorization response goes to %s, want the registered %s", final, r.client.RedirectURI)
	}
	wantQuery(t, "authorization response", final, map[string]string{"state": r.State, "iss": r.st.Broker})
	nonEmpty(t, "authorization response", final, "code")
	if final.Query().Has("error") {
		t.Fatalf("authorization response carries an error: %s", final)
	}
}

// exchange redeems the code; it checks that the token request used the
// configured client authentication method, and nothing else.
func (r *rp) exchange(t *testing.T, code string) (*oauth2.Token, error) {
	t.Helper()
	r.recorder.reset()
	tok, err := r.oauth.Exchange(oidc.ClientContext(stepCtx(t), r.http), code, oauth2.VerifierOption(r.Verifier))
	req := r.recorder.last()
	if req == nil {
		t.Fatal("no token request was recorded")
	}
	basic := strings.HasPrefix(req.header.Get("Authorization"), "Basic ")
	post := req.form.Get("client_secret") != ""
	switch r.oauth.Endpoint.AuthStyle {
	case oauth2.AuthStyleInHeader:
		if !basic || post {
			t.Errorf("token request did not use client_secret_basic alone (basic %v, post %v)", basic, post)
		}
	case oauth2.AuthStyleInParams:
		if basic || !post || req.form.Get("client_id") != r.client.ID {
			t.Errorf("token request did not use client_secret_post alone (basic %v, post %v)", basic, post)
		}
	}
	if req.form.Get("code_verifier") != r.Verifier {
		t.Errorf("token request carries code_verifier %q, want the PKCE verifier", req.form.Get("code_verifier"))
	}
	return tok, err
}

// idTokenClaims are the claims checked beyond go-oidc's.
type idTokenClaims struct {
	ACR      string   `json:"acr"`
	AuthTime *int64   `json:"auth_time"`
	IssuedAt int64    `json:"iat"`
	Expiry   int64    `json:"exp"`
	Nonce    string   `json:"nonce"`
	AtHash   string   `json:"at_hash"`
	AMR      []string `json:"amr"`
}

// verifyIDToken verifies the token response's id_token with go-oidc against
// the broker's /jwks, accepting only the client's registered algorithm, and
// checks every claim the broker promises. It returns the sub.
func (r *rp) verifyIDToken(t *testing.T, tok *oauth2.Token, loginStart time.Time) (string, string) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("token response has no id_token")
	}
	if tok.TokenType != "Bearer" {
		t.Errorf("token_type = %q, want Bearer", tok.TokenType)
	}
	if got, _ := tok.Extra("expires_in").(float64); got != 60 {
		t.Errorf("expires_in = %v, want 60", tok.Extra("expires_in"))
	}
	hdr := jwtHeader(t, raw)
	if hdr["alg"] != r.client.Alg {
		t.Errorf("id_token alg = %v, want %s for %s", hdr["alg"], r.client.Alg, r.client.ID)
	}
	if kid, _ := hdr["kid"].(string); kid == "" {
		t.Error("id_token header has no kid")
	}
	v := r.provider.Verifier(&oidc.Config{ClientID: r.client.ID, SupportedSigningAlgs: []string{r.client.Alg}})
	idt, err := v.Verify(oidc.ClientContext(stepCtx(t), r.http), raw)
	if err != nil {
		t.Fatalf("go-oidc refuses the id_token: %v", err)
	}
	if idt.Issuer != r.st.Broker {
		t.Errorf("id_token iss = %q, want %q", idt.Issuer, r.st.Broker)
	}
	if !slices.Equal(idt.Audience, []string{r.client.ID}) {
		t.Errorf("id_token aud = %q, want [%s]", idt.Audience, r.client.ID)
	}
	if idt.Nonce != r.Nonce {
		t.Errorf("id_token nonce = %q, want %q", idt.Nonce, r.Nonce)
	}
	if idt.AccessTokenHash == "" {
		t.Error("id_token has no at_hash")
	} else if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("id_token at_hash does not match the access token: %v", err)
	}
	var c idTokenClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.ACR != "eidas1" {
		t.Errorf("id_token acr = %q, want eidas1", c.ACR)
	}
	if c.Expiry-c.IssuedAt != 60 {
		t.Errorf("id_token lives exp-iat = %d s, want 60", c.Expiry-c.IssuedAt)
	}
	if c.AuthTime == nil {
		t.Error("id_token has no auth_time")
	} else if at := time.Unix(*c.AuthTime, 0); at.Before(loginStart.Add(-2*time.Second)) || at.After(time.Now().Add(2*time.Second)) {
		t.Errorf("id_token auth_time = %v, want during this login (from %v)", at, loginStart)
	}
	switch {
	case r.AskAMR && !slices.Equal(c.AMR, []string{"pwd"}):
		t.Errorf("id_token amr = %q, want the mock IdP's [pwd] (asked through claims)", c.AMR)
	case !r.AskAMR && c.AMR != nil:
		t.Errorf("id_token has amr %q although the claims parameter did not ask for it", c.AMR)
	}
	return idt.Subject, raw
}

// userinfo calls /userinfo with the access token and returns the status,
// the content type and the body.
func (r *rp) userinfo(t *testing.T, accessToken string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(stepCtx(t), http.MethodGet, r.provider.UserInfoEndpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := r.http.Do(req)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// userinfoClaims fetches userinfo and returns its claims: plain JSON, or a
// JWT verified with go-jose against the broker's JWKS for a client that
// registered userinfo_signed_response_alg (whose iss and aud are checked).
func (r *rp) userinfoClaims(t *testing.T, accessToken string) map[string]any {
	t.Helper()
	status, hdr, body := r.userinfo(t, accessToken)
	if status != http.StatusOK {
		t.Fatalf("userinfo: status %d, want 200: %s", status, body)
	}
	ct := hdr.Get("Content-Type")
	claims := map[string]any{}
	if r.client.SignedUserinfo == "" {
		if !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("userinfo Content-Type = %q, want application/json", ct)
		}
		if err := json.Unmarshal(body, &claims); err != nil {
			t.Fatalf("userinfo JSON: %v: %s", err, body)
		}
		return claims
	}
	if ct != "application/jwt" {
		t.Fatalf("userinfo Content-Type = %q, want application/jwt for %s", ct, r.client.ID)
	}
	alg := jose.SignatureAlgorithm(r.client.SignedUserinfo)
	tok, err := jwt.ParseSigned(string(body), []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("userinfo is not a %s JWT: %v", alg, err)
	}
	if err := tok.Claims(r.jwks(t), &claims); err != nil {
		t.Fatalf("userinfo JWT signature does not verify against %s/jwks: %v", r.st.Broker, err)
	}
	var std jwt.Claims
	_ = tok.Claims(r.jwks(t), &std)
	if std.Issuer != r.st.Broker {
		t.Errorf("userinfo JWT iss = %q, want %q", std.Issuer, r.st.Broker)
	}
	if !slices.Equal([]string(std.Audience), []string{r.client.ID}) {
		t.Errorf("userinfo JWT aud = %q, want [%s]", std.Audience, r.client.ID)
	}
	if std.IssuedAt == nil {
		t.Error("userinfo JWT has no iat")
	}
	return claims
}

// jwks fetches the broker's /jwks and checks it holds public keys only,
// each with a kid.
func (r *rp) jwks(t *testing.T) *jose.JSONWebKeySet {
	t.Helper()
	resp, err := r.http.Get(r.st.Broker + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("/jwks: %v", err)
	}
	if len(set.Keys) == 0 {
		t.Fatal("/jwks has no key")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.KeyID == "" {
			t.Errorf("/jwks key %q: public %v, want public keys with a kid", k.KeyID, k.IsPublic())
		}
	}
	return &set
}

// wantIdentityClaims checks that userinfo released exactly keys, with the
// identity's values from identities.csv.
func wantIdentityClaims(t *testing.T, claims map[string]any, who identity, sub string, keys ...string) {
	t.Helper()
	if got := slices.Sorted(maps.Keys(claims)); !slices.Equal(got, slices.Sorted(slices.Values(keys))) {
		t.Errorf("userinfo claims = %q, want exactly %q", got, slices.Sorted(slices.Values(keys)))
	}
	if claims["sub"] != sub {
		t.Errorf("userinfo sub = %v, want the id_token's %q", claims["sub"], sub)
	}
	for _, c := range []string{"given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry", "email"} {
		if !slices.Contains(keys, c) {
			continue
		}
		if got, ok := claims[c].(string); !ok || got != who[c] {
			t.Errorf("userinfo %s = %#v, want %q", c, claims[c], who[c])
		}
	}
}

// jwtHeader decodes a compact JWS header without verifying anything.
func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	return out
}

// retrieveError returns the OAuth error code of a failed exchange.
func retrieveError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// tokenRecorder keeps the last token request (headers and form) that
// passed through it.
type tokenRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	req  *recorded
}

type recorded struct {
	header http.Header
	form   url.Values
}

func (r *tokenRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/token") && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		form, _ := url.ParseQuery(string(b))
		r.mu.Lock()
		r.req = &recorded{header: req.Header.Clone(), form: form}
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

func (r *tokenRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.req = nil
}

func (r *tokenRecorder) last() *recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.req
}
