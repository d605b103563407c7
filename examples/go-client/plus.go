package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// plus is what the "+" platform asks beyond OpenID Connect (FAPI 2.0):
// the authorization request pushed first (PAR, RFC 9126), the client
// authenticated by a JWT signed with its key (private_key_jwt), tokens
// bound to a key of this process (DPoP, RFC 9449), and the id_token and
// userinfo encrypted to the client's key (JWE).
type plus struct {
	issuer, clientID         string
	par, authorize, userinfo string
	sig, enc                 jose.JSONWebKey // the client's private keys
	keys                     *oidc.RemoteKeySet
	http                     *http.Client // adds the DPoP proofs
}

func newPlus(ctx context.Context, provider *oidc.Provider, c Config) (*plus, error) {
	raw, err := os.ReadFile(c.KeysFile)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("%s: %w", c.KeysFile, err)
	}
	p := &plus{issuer: c.Issuer, clientID: c.ClientID}
	for _, k := range set.Keys {
		switch {
		case k.Use == "sig" && !k.IsPublic():
			p.sig = k
		case k.Use == "enc" && !k.IsPublic():
			p.enc = k
		}
	}
	if p.sig.Key == nil || p.enc.Key == nil {
		return nil, fmt.Errorf("%s: expected a private sig key and a private enc key", c.KeysFile)
	}
	var meta struct {
		PAR      string `json:"pushed_authorization_request_endpoint"`
		Userinfo string `json:"userinfo_endpoint"`
		JWKS     string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.PAR == "" {
		return nil, fmt.Errorf("%s announces no pushed_authorization_request_endpoint", c.Issuer)
	}
	p.par, p.authorize, p.userinfo = meta.PAR, provider.Endpoint().AuthURL, meta.Userinfo
	p.keys = oidc.NewRemoteKeySet(ctx, meta.JWKS)
	// The DPoP key is this process's alone, made at start and never
	// published: it proves who holds the tokens, not who the client is.
	dpopKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p.http = &http.Client{Timeout: 10 * time.Second, Transport: &dpopTransport{key: dpopKey, base: http.DefaultTransport}}
	return p, nil
}

// assertion is the private_key_jwt client authentication, for one call.
func (p *plus) assertion() string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.sig.Key}, (&jose.SignerOptions{}).WithHeader("kid", p.sig.KeyID))
	if err != nil {
		panic(err) // an ES256 key loaded at start: cannot fail
	}
	now := time.Now()
	s, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: p.clientID, Subject: p.clientID, Audience: jwt.Audience{p.issuer},
		ID: rand.Text(), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	if err != nil {
		panic(err)
	}
	return s
}

// clientAssertion authenticates the token call made by x/oauth2.
func (p *plus) clientAssertion() []oauth2.AuthCodeOption {
	return []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
		oauth2.SetAuthURLParam("client_assertion", p.assertion()),
	}
}

// context makes x/oauth2 call through the DPoP client.
func (p *plus) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.http)
}

// push sends the authorization request x/oauth2 built (its query) to the
// PAR endpoint, authenticated, and returns where the browser goes: the
// authorization endpoint with client_id and request_uri only.
func (p *plus) push(ctx context.Context, authCodeURL string) (string, error) {
	u, err := url.Parse(authCodeURL)
	if err != nil {
		return "", err
	}
	form := u.Query()
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", p.assertion())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.par, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		RequestURI  string `json:"request_uri"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%d %s %s", resp.StatusCode, out.Error, out.Description)
	}
	return p.authorize + "?" + url.Values{"client_id": {p.clientID}, "request_uri": {out.RequestURI}}.Encode(), nil
}

// decrypt opens a JWE encrypted to the client's enc key and returns the
// signed JWT inside, and what the JWE header says.
func (p *plus) decrypt(raw string) (jws, header string, err error) {
	jwe, err := jose.ParseEncrypted(raw, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return "", "", fmt.Errorf("not a JWE to ECDH-ES and A256GCM: %w", err)
	}
	inner, err := jwe.Decrypt(p.enc.Key)
	if err != nil {
		return "", "", fmt.Errorf("decrypt: %w", err)
	}
	return string(inner), fmt.Sprintf("JWE %s %s, kid %s", jwe.Header.Algorithm, jwe.Header.ExtraHeaders["enc"], jwe.Header.KeyID), nil
}

// userInfo calls userinfo with the DPoP-bound access token; the answer
// is a JWT signed by the platform and encrypted to the client.
func (p *plus) userInfo(ctx context.Context, accessToken string) (map[string]any, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.userinfo, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "DPoP "+accessToken)
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("%d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	jws, hdr, err := p.decrypt(string(body))
	if err != nil {
		return nil, "", err
	}
	payload, err := p.keys.VerifySignature(ctx, jws)
	if err != nil {
		return nil, "", fmt.Errorf("signature: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, "", err
	}
	if claims["iss"] != p.issuer || claims["aud"] != p.clientID {
		return nil, "", errors.New("iss or aud is not ours")
	}
	return claims, hdr, nil
}

// dpopTransport adds a DPoP proof to every request: the method and URL
// of that request, and at userinfo the hash of the access token.
type dpopTransport struct {
	key  *ecdsa.PrivateKey
	base http.RoundTripper
}

func (t *dpopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: t.key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		return nil, err
	}
	u := *req.URL
	u.RawQuery, u.Fragment = "", ""
	claims := map[string]any{"jti": rand.Text(), "htm": req.Method, "htu": u.String(), "iat": time.Now().Unix()}
	if at, ok := strings.CutPrefix(req.Header.Get("Authorization"), "DPoP "); ok {
		sum := sha256.Sum256([]byte(at))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	proof, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Header.Set("DPoP", proof)
	return t.base.RoundTrip(req)
}
