package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
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

// plusSP is a service provider of the "+" platform: its signing key for
// private_key_jwt and its decryption keys.
type plusSP struct {
	sig        jose.JSONWebKey
	ec, rsaKey jose.JSONWebKey
}

func newPlusSP(t testing.TB) *plusSP {
	t.Helper()
	sig, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enc, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &plusSP{
		sig:    jose.JSONWebKey{Key: sig, KeyID: "sp-sig", Algorithm: "ES256", Use: "sig"},
		ec:     jose.JSONWebKey{Key: enc, KeyID: "sp-enc-ec", Algorithm: "ECDH-ES", Use: "enc"},
		rsaKey: jose.JSONWebKey{Key: rk, KeyID: "sp-enc-rsa", Algorithm: "RSA-OAEP-256", Use: "enc"},
	}
}

// jwks returns the public keys; the first encryption key listed is the one
// the broker uses.
func (sp *plusSP) jwks(t testing.TB, encFirst jose.JSONWebKey) string {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sp.sig.Public(), encFirst.Public()}}
	for _, k := range []jose.JSONWebKey{sp.ec, sp.rsaKey} {
		if k.KeyID != encFirst.KeyID {
			set.Keys = append(set.Keys, k.Public())
		}
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// assertion mints a private_key_jwt client assertion.
func (sp *plusSP) assertion(t testing.TB, aud string, mutate func(*jwt.Claims), key any, alg jose.SignatureAlgorithm) string {
	t.Helper()
	now := time.Now()
	c := jwt.Claims{Issuer: teststack.SPID, Subject: teststack.SPID, Audience: jwt.Audience{aud},
		ID: rand.Text(), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	if mutate != nil {
		mutate(&c)
	}
	if key == nil {
		key, alg = sp.sig.Key, jose.ES256
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", sp.sig.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertionForm(code, assertion string) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect},
		"client_id": {teststack.SPID}, "client_assertion": {assertion},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
	}
}

// openNested decrypts a JWE with the SP's key and verifies the JWS inside
// against the broker's published keys, ES256 only.
func openNested(t *testing.T, s *teststack.Stack, raw string, dec jose.JSONWebKey) (map[string]any, *jose.JSONWebEncryption) {
	t.Helper()
	if n := strings.Count(raw, "."); n != 4 {
		t.Fatalf("not a compact JWE (%d dots): %.60s", n, raw)
	}
	jwe, err := jose.ParseEncrypted(raw, []jose.KeyAlgorithm{jose.ECDH_ES, jose.RSA_OAEP, jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := jwe.Decrypt(dec.Key)
	if err != nil {
		t.Fatalf("SP cannot decrypt with its key: %v", err)
	}
	jws, err := jose.ParseSigned(string(inner), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("inner token is not an ES256 JWS: %v", err)
	}
	_, body := teststack.Get(t, http.DefaultClient, s.BrokerURL+"/jwks")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q does not resolve in /jwks", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("signature does not verify against /jwks: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims, jwe
}

func plusParams(level string) url.Values {
	p := teststack.AuthParams()
	p.Set("acr_values", level)
	return p
}

func TestPlusEncryptedTokens(t *testing.T) {
	sp := newPlusSP(t)
	for _, dec := range []jose.JSONWebKey{sp.ec, sp.rsaKey} {
		t.Run(dec.Algorithm, func(t *testing.T) {
			s := teststack.New(t, teststack.Plus(sp.jwks(t, dec)))
			u := s.Login(t, plusParams("eidas3"), "laposte", "angela-dubois")
			status, out := s.Token(t, assertionForm(u.Query().Get("code"), sp.assertion(t, s.BrokerURL+"/token", nil, nil, "")), false)
			if status != http.StatusOK {
				t.Fatalf("token with private_key_jwt: %d %v", status, out)
			}
			claims, jwe := openNested(t, s, out["id_token"].(string), dec)
			if jwe.Header.Algorithm != dec.Algorithm || jwe.Header.KeyID != dec.KeyID {
				t.Errorf("JWE header alg %s kid %s, want %s %s", jwe.Header.Algorithm, jwe.Header.KeyID, dec.Algorithm, dec.KeyID)
			}
			if claims["acr"] != "eidas3" || claims["aud"] != teststack.SPID || claims["iss"] != s.BrokerURL || claims["nonce"] == nil {
				t.Fatalf("id_token claims: %v", claims)
			}

			req, _ := http.NewRequest(http.MethodGet, s.BrokerURL+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+out["access_token"].(string))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Header.Get("Content-Type") != "application/jwt" {
				t.Fatalf("userinfo content type %q", resp.Header.Get("Content-Type"))
			}
			info, _ := openNested(t, s, string(body), dec)
			if info["sub"] != claims["sub"] || info["aud"] != teststack.SPID || info["iss"] != s.BrokerURL || info["family_name"] != "Dubois" {
				t.Fatalf("userinfo claims: %v", info)
			}
		})
	}
}

func TestPlusPrivateKeyJWT(t *testing.T) {
	sp := newPlusSP(t)
	s := teststack.New(t, teststack.Plus(sp.jwks(t, sp.ec)))
	tokenURL := s.BrokerURL + "/token"
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	code := func() string { return s.Login(t, plusParams("eidas2"), "laposte", "angela-dubois").Query().Get("code") }

	bad := map[string]string{
		"wrong aud":         sp.assertion(t, "https://elsewhere.example/token", nil, nil, ""),
		"expired":           sp.assertion(t, tokenURL, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Minute)) }, nil, ""),
		"too long-lived":    sp.assertion(t, tokenURL, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(2 * time.Hour)) }, nil, ""),
		"no jti":            sp.assertion(t, tokenURL, func(c *jwt.Claims) { c.ID = "" }, nil, ""),
		"sub not client":    sp.assertion(t, tokenURL, func(c *jwt.Claims) { c.Subject = "someone" }, nil, ""),
		"unregistered key":  sp.assertion(t, tokenURL, nil, other, jose.ES256),
		"HS256 with secret": sp.assertion(t, tokenURL, nil, []byte("0123456789abcdef0123456789abcdef"), jose.HS256),
		"garbage":           "not.a.jwt",
	}
	for name, a := range bad {
		if _, out := s.Token(t, assertionForm(code(), a), false); out["error"] != "invalid_client" {
			t.Errorf("%s: %v, want invalid_client", name, out)
		}
	}
	// A jti is single use, whichever replica sees it second.
	a := sp.assertion(t, s.BrokerURL, nil, nil, "") // aud = issuer is accepted too
	if status, out := s.Token(t, assertionForm(code(), a), false); status != http.StatusOK {
		t.Fatalf("issuer as aud: %d %v", status, out)
	}
	if _, out := s.Token(t, assertionForm(code(), a), false); out["error"] != "invalid_client" {
		t.Fatalf("replayed jti accepted: %v", out)
	}
	// This SP may not fall back to a secret.
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {teststack.SPRedirect}, "client_id": {teststack.SPID}, "client_secret": {"anything-at-all-0123456789abcdef"}}
	if _, out := s.Token(t, f, false); out["error"] != "invalid_client" {
		t.Fatalf("client_secret_post on a private_key_jwt SP: %v", out)
	}
	// Two methods at once is a malformed request.
	f = assertionForm(code(), sp.assertion(t, tokenURL, nil, nil, ""))
	f.Set("client_secret", "x")
	if _, out := s.Token(t, f, false); out["error"] != "invalid_request" {
		t.Fatalf("assertion plus secret: %v", out)
	}
}

func TestPlusLevels(t *testing.T) {
	sp := newPlusSP(t)
	s := teststack.New(t, teststack.Plus(sp.jwks(t, sp.ec)))
	// eidas1 on "+": back to the SP with state and iss.
	resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+plusParams("eidas1").Encode())
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "state-1" || loc.Query().Get("iss") != s.BrokerURL {
		t.Fatalf("eidas1 on plus: %s", loc)
	}
	// The LoA URI is a synonym.
	resp, _ = teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+plusParams("http://eidas.europa.eu/LoA/substantial").Encode())
	if resp.Header.Get("Location") != "/authorize/choose" {
		t.Fatalf("LoA URI refused: %s", resp.Header.Get("Location"))
	}
	// FranceConnect's code, as a compatibility switch.
	fc := teststack.New(t, teststack.Plus(sp.jwks(t, sp.ec)), func(c *config.Config) { c.Broker.Platforms[0].ACRError = "invalid_acr" })
	resp, _ = teststack.Get(t, fc.Browser, fc.BrokerURL+"/authorize?"+plusParams("eidas1").Encode())
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("error") != "invalid_acr" || loc.Query().Get("state") != "state-1" {
		t.Fatalf("invalid_acr switch: %s", loc)
	}
}

func TestPlusRequiresSPKeys(t *testing.T) {
	c := &config.Config{File: "plus.yaml", Broker: &config.Broker{
		SubSecret: strings.Repeat("s", 32), SessionKeys: []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"},
		IdentityProviders: []config.IdP{{ID: "idp", Issuer: "https://idp.example", ClientID: "c", ClientSecret: strings.Repeat("x", 32), ACRValues: []string{"eidas2"}}},
		Platforms: []config.Platform{{ID: "plus", Level: "plus", Listen: "127.0.0.1:0", Issuer: "https://plus.example",
			IdentityProviders: []string{"idp"},
			ServiceProviders:  []config.SP{{ClientID: "nokeys", ClientSecret: strings.Repeat("y", 32), Sector: "s", RedirectURIs: []string{"https://sp.example/cb"}}}}},
	}}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "service_providers[0] (nokeys): jwks_uri: an SP on a plus platform must register jwks_uri or jwks") {
		t.Fatalf("an SP without keys was accepted on plus: %v", err)
	}
}
