package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/internal/dpop"
)

// jwtBearer is the client_assertion_type of private_key_jwt (RFC 7523).
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// plusClient is the test's own "+" SP registration (e2e-plus-sp): its keys
// are generated here, before the config is written, and registered inline.
type plusClient struct {
	ID, Sector                 string
	RedirectURI, PostLogoutURI string
	// Sign signs the client assertions (ES256); Enc is the private half of
	// the key the broker encrypts id_tokens and userinfo to (ECDH-ES).
	Sign, Enc jose.JSONWebKey
	// PublicJWKS is the inline jwks of the registration: public keys only.
	PublicJWKS string
}

func newPlusClient(t *testing.T) *plusClient {
	t.Helper()
	key := func(alg, use string) jose.JSONWebKey {
		t.Helper()
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		jwk := jose.JSONWebKey{Key: k, Algorithm: alg, Use: use}
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		jwk.KeyID = use + "-" + base64.RawURLEncoding.EncodeToString(tp)[:12]
		return jwk
	}
	c := &plusClient{ID: plusSPID, Sector: "e2e-plus.sesame.localhost",
		Sign: key(string(jose.ES256), "sig"), Enc: key(string(jose.ECDH_ES), "enc")}
	pub, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{c.Sign.Public(), c.Enc.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pub), "'") {
		t.Fatalf("public JWKS %s cannot be single-quoted in YAML", pub)
	}
	c.PublicJWKS = string(pub)
	return c
}

// plusRP is the test acting as the "+" SP e2e-plus-sp: go-oidc for
// discovery and signature checks, go-jose for the JWE and the client
// assertions, x/oauth2 for the code exchange.
type plusRP struct {
	st       *stack
	c        *plusClient
	provider *oidc.Provider
	oauth    oauth2.Config
	http     *http.Client

	ACR                    string
	State, Nonce, Verifier string
	// DPoP is the key the RP proves possession of (RFC 9449) at PAR,
	// token and userinfo; "+" binds its tokens to it.
	DPoP jose.JSONWebKey
	t    *testing.T
}

// dpopTransport adds a fresh DPoP proof to every POST the RP makes (PAR
// and token), for its URL.
type dpopTransport struct{ r *plusRP }

func (d dpopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost {
		u := *req.URL
		u.RawQuery = ""
		proof, err := dpop.NewProof(d.r.DPoP, req.Method, u.String(), "", "")
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Header.Set(dpop.HeaderName, proof)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// newPlusRP discovers the "+" platform and prepares a login at acr.
func newPlusRP(t *testing.T, st *stack, acr string) *plusRP {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := &plusRP{st: st, c: st.PlusSP, ACR: acr, t: t, DPoP: jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256)}}
	r.http = &http.Client{Timeout: 10 * time.Second, Transport: dpopTransport{r}}
	p, err := oidc.NewProvider(oidc.ClientContext(stepCtx(t), r.http), st.Plus)
	if err != nil {
		t.Fatalf("go-oidc discovery of %s: %v", st.Plus, err)
	}
	r.provider = p
	ep := p.Endpoint()
	// private_key_jwt: client_id in the body, no secret anywhere.
	ep.AuthStyle = oauth2.AuthStyleInParams
	r.oauth = oauth2.Config{ClientID: r.c.ID, Endpoint: ep, RedirectURL: r.c.RedirectURI,
		Scopes: []string{"openid", "identite_pivot", "email"}}
	r.State, r.Nonce, r.Verifier = randomString(t), randomString(t), oauth2.GenerateVerifier()
	return r
}

// authURL is the authorization request (PKCE S256, nonce, acr_values)
// pushed first (RFC 9126) with private_key_jwt and a DPoP proof, as "+"
// requires: the browser gets only client_id and request_uri.
func (r *plusRP) authURL() string {
	t := r.t
	t.Helper()
	uri, status, code := r.pushed(t)
	if status != http.StatusCreated {
		t.Fatalf("PAR: %d %s", status, code)
	}
	return r.st.Plus + "/authorize?" + url.Values{"client_id": {r.c.ID}, "request_uri": {uri}}.Encode()
}

// push sends the authorization request to the PAR endpoint and returns
// the HTTP status and the error code ("" on success).
func (r *plusRP) push(t *testing.T) (int, string) {
	t.Helper()
	_, status, code := r.pushed(t)
	return status, code
}

func (r *plusRP) pushed(t *testing.T) (uri string, status int, code string) {
	t.Helper()
	full, err := url.Parse(r.oauth.AuthCodeURL(r.State, oidc.Nonce(r.Nonce), oauth2.S256ChallengeOption(r.Verifier),
		oauth2.SetAuthURLParam("acr_values", r.ACR)))
	if err != nil {
		t.Fatal(err)
	}
	form := full.Query()
	form.Set("client_assertion_type", jwtBearer)
	form.Set("client_assertion", r.assertion(t, r.st.Plus))
	resp, err := r.http.PostForm(r.st.Plus+"/par", form)
	if err != nil {
		t.Fatalf("PAR: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
		Error      string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("PAR answer: %v", err)
	}
	if resp.StatusCode == http.StatusCreated && (out.RequestURI == "" || out.ExpiresIn <= 0) {
		t.Fatalf("PAR: 201 without request_uri and expires_in: %+v", out)
	}
	return out.RequestURI, resp.StatusCode, out.Error
}

// assertion is a fresh private_key_jwt client assertion for aud.
func (r *plusRP) assertion(t *testing.T, aud string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: r.c.Sign.Key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", r.c.Sign.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := jwt.Signed(sig).Claims(jwt.Claims{
		Issuer: r.c.ID, Subject: r.c.ID, Audience: jwt.Audience{aud}, ID: randomString(t),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(60 * time.Second)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// exchange redeems code, authenticating with the given client assertion.
func (r *plusRP) exchange(t *testing.T, code, assertion string) (*oauth2.Token, error) {
	t.Helper()
	return r.oauth.Exchange(oidc.ClientContext(stepCtx(t), r.http), code, oauth2.VerifierOption(r.Verifier),
		oauth2.SetAuthURLParam("client_assertion_type", jwtBearer),
		oauth2.SetAuthURLParam("client_assertion", assertion))
}

// decryptJWE checks a compact JWE is encrypted to the SP's key as "+"
// requires (alg ECDH-ES or RSA-OAEP-256, enc A256GCM, the key's kid, a
// nested JWT) and returns its plaintext: the signed JWT inside.
func (r *plusRP) decryptJWE(t *testing.T, what, raw string) string {
	t.Helper()
	if n := strings.Count(raw, ".") + 1; n != 5 {
		t.Fatalf("%s has %d parts, want a 5-part compact JWE: %.60s…", what, n, raw)
	}
	hdr := jwtHeader(t, raw)
	if alg, _ := hdr["alg"].(string); alg != string(jose.ECDH_ES) && alg != string(jose.RSA_OAEP_256) {
		t.Errorf("%s JWE alg = %q, want ECDH-ES or RSA-OAEP-256", what, hdr["alg"])
	}
	if hdr["enc"] != string(jose.A256GCM) {
		t.Errorf("%s JWE enc = %v, want A256GCM", what, hdr["enc"])
	}
	if hdr["kid"] != r.c.Enc.KeyID {
		t.Errorf("%s JWE kid = %v, want the SP's encryption key %q", what, hdr["kid"], r.c.Enc.KeyID)
	}
	if cty, _ := hdr["cty"].(string); !strings.EqualFold(cty, "JWT") {
		t.Errorf("%s JWE cty = %v, want JWT (a nested, signed JWT)", what, hdr["cty"])
	}
	obj, err := jose.ParseEncryptedCompact(raw,
		[]jose.KeyAlgorithm{jose.ECDH_ES, jose.RSA_OAEP, jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatalf("%s is not a JWE with the algorithms of \"+\": %v", what, err)
	}
	plain, err := obj.Decrypt(r.c.Enc.Key)
	if err != nil {
		t.Fatalf("%s does not decrypt with the SP's private key: %v", what, err)
	}
	inner := string(plain)
	if n := strings.Count(inner, ".") + 1; n != 3 {
		t.Fatalf("decrypted %s has %d parts, want a 3-part JWS", what, n)
	}
	ih := jwtHeader(t, inner)
	if ih["alg"] != string(jose.ES256) {
		t.Errorf("decrypted %s is signed %v, want ES256 only", what, ih["alg"])
	}
	if kid, _ := ih["kid"].(string); kid == "" {
		t.Errorf("decrypted %s header has no kid", what)
	}
	return inner
}

// plusIDToken is an id_token the "+" SP decrypted and verified.
type plusIDToken struct {
	*oidc.IDToken
	Claims idTokenClaims
	Raw    string // the JWE as received
}

// idToken decrypts the token response's id_token with the SP's key and
// verifies the inner JWS with go-oidc against the broker's /jwks, ES256
// only, then checks iss, aud, nonce, at_hash and acr.
func (r *plusRP) idToken(t *testing.T, tok *oauth2.Token, wantACR string) plusIDToken {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("token response has no id_token")
	}
	if tok.TokenType != "DPoP" {
		t.Errorf("token_type = %q, want DPoP (the token is bound to the RP's key)", tok.TokenType)
	}
	inner := r.decryptJWE(t, "id_token", raw)
	v := r.provider.Verifier(&oidc.Config{ClientID: r.c.ID, SupportedSigningAlgs: []string{oidc.ES256}})
	idt, err := v.Verify(oidc.ClientContext(stepCtx(t), r.http), inner)
	if err != nil {
		t.Fatalf("go-oidc refuses the decrypted id_token (ES256, %s/jwks): %v", r.st.Plus, err)
	}
	// The JWE itself is no JWS: a client that skipped decryption gets
	// nothing it could verify.
	if _, err := v.Verify(oidc.ClientContext(stepCtx(t), r.http), raw); err == nil {
		t.Error("go-oidc verified the id_token JWE as if it were a JWS")
	}
	if idt.Issuer != r.st.Plus {
		t.Errorf("id_token iss = %q, want %q", idt.Issuer, r.st.Plus)
	}
	if !slices.Equal(idt.Audience, []string{r.c.ID}) {
		t.Errorf("id_token aud = %q, want [%s]", idt.Audience, r.c.ID)
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
	if c.ACR != wantACR {
		t.Errorf("id_token acr = %q, want %s", c.ACR, wantACR)
	}
	if c.AuthTime == nil {
		t.Fatal("id_token has no auth_time")
	}
	if c.AMR != nil {
		t.Errorf("id_token has amr %q although the claims parameter did not ask for it", c.AMR)
	}
	return plusIDToken{IDToken: idt, Claims: c, Raw: raw}
}

// userinfo fetches userinfo, which on "+" is an application/jwt JWE:
// decrypted with the SP's key, its inner JWS verified with go-oidc's key
// set of the broker's /jwks; iss, aud and sub are checked.
func (r *plusRP) userinfo(t *testing.T, accessToken, wantSub string) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(stepCtx(t), http.MethodGet, r.provider.UserInfoEndpoint(), nil)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := dpop.NewProof(r.DPoP, http.MethodGet, r.provider.UserInfoEndpoint(), accessToken, "")
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "DPoP "+accessToken)
	req.Header.Set(dpop.HeaderName, proof)
	resp, err := r.http.Do(req)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: status %d, want 200: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwt" {
		t.Fatalf("userinfo Content-Type = %q, want application/jwt", ct)
	}
	inner := r.decryptJWE(t, "userinfo", strings.TrimSpace(string(body)))
	keySet := oidc.NewRemoteKeySet(oidc.ClientContext(stepCtx(t), r.http), r.st.Plus+"/jwks")
	payload, err := keySet.VerifySignature(oidc.ClientContext(stepCtx(t), r.http), inner)
	if err != nil {
		t.Fatalf("decrypted userinfo does not verify against %s/jwks: %v", r.st.Plus, err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("userinfo payload: %v", err)
	}
	if claims["iss"] != r.st.Plus {
		t.Errorf("userinfo iss = %v, want %q", claims["iss"], r.st.Plus)
	}
	switch aud := claims["aud"].(type) {
	case string:
		if aud != r.c.ID {
			t.Errorf("userinfo aud = %q, want %q", aud, r.c.ID)
		}
	case []any:
		if len(aud) != 1 || aud[0] != r.c.ID {
			t.Errorf("userinfo aud = %v, want [%s]", aud, r.c.ID)
		}
	default:
		t.Errorf("userinfo aud = %#v, want %q", claims["aud"], r.c.ID)
	}
	if claims["sub"] != wantSub {
		t.Errorf("userinfo sub = %v, want the id_token's %q", claims["sub"], wantSub)
	}
	return claims
}
