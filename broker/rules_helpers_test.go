package broker_test

// Helpers of rules_test.go: the two stores, a stack with its SPs' keys,
// the browser steps up to each outcome, and the SP's side (token, id_token,
// userinfo) on both platforms.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/testredis"
)

// bothStores runs f as subtests "memory" and "redis" (a private
// redis-server), in parallel; opts select the store.
func bothStores(t *testing.T, f func(t *testing.T, opts ...teststack.Option)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		f(t)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		r := testredis.Start(t)
		f(t, teststack.RedisURL(r.URL()))
	})
}

// Config edits.

// onSP edits the test SP ("sp").
func onSP(mod func(*config.SP)) teststack.Option {
	return func(c *config.Config) { mod(&c.Broker.Platforms[0].ServiceProviders[0]) }
}

// withSP registers another SP on the platform: a copy of the test SP as the
// earlier options left it (on "+": its keys and private_key_jwt), under its
// own client_id, then edited by mod.
func withSP(id string, mod func(*config.SP)) teststack.Option {
	return func(c *config.Config) {
		pl := &c.Broker.Platforms[0]
		sp := pl.ServiceProviders[0]
		sp.ClientID, sp.Name = id, id
		sp.Scopes, sp.Claims = slices.Clone(sp.Scopes), slices.Clone(sp.Claims)
		sp.TokenEndpointAuthMethods = slices.Clone(sp.TokenEndpointAuthMethods)
		if mod != nil {
			mod(&sp)
		}
		pl.ServiceProviders = append(pl.ServiceProviders, sp)
	}
}

// onIdP edits the broker's registration of an IdP.
func onIdP(id string, mod func(*config.IdP)) teststack.Option {
	return func(c *config.Config) {
		for i := range c.Broker.IdentityProviders {
			if c.Broker.IdentityProviders[i].ID == id {
				mod(&c.Broker.IdentityProviders[i])
				return
			}
		}
		panic("no IdP " + id)
	}
}

// offering sets the IdPs of the platform, in chooser order.
func offering(ids ...string) teststack.Option {
	return func(c *config.Config) { c.Broker.Platforms[0].IdentityProviders = ids }
}

// The "+" SPs' keys: one ES256 key for private_key_jwt and one ECDH-ES key
// the broker encrypts to, shared by every "+" SP of these tests.
type spKeys struct {
	sig, enc jose.JSONWebKey
	jwks     string
}

var plusKeysOnce = sync.OnceValues(func() (*spKeys, error) {
	sig, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	enc, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	k := &spKeys{
		sig: jose.JSONWebKey{Key: sig, KeyID: "rules-sig", Algorithm: "ES256", Use: "sig"},
		enc: jose.JSONWebKey{Key: enc, KeyID: "rules-enc", Algorithm: "ECDH-ES", Use: "enc"},
	}
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.sig.Public(), k.enc.Public()}})
	k.jwks = string(raw)
	return k, err
})

// rig is a stack and, on "+", its SPs' keys.
type rig struct {
	*teststack.Stack
	keys *spKeys
}

func newRig(t testing.TB, store []teststack.Option, plus bool, opts ...teststack.Option) *rig {
	t.Helper()
	r := &rig{}
	all := slices.Clone(store)
	if plus {
		k, err := plusKeysOnce()
		if err != nil {
			t.Fatal(err)
		}
		r.keys = k
		all = append(all, teststack.Plus(k.jwks))
	}
	r.Stack = teststack.New(t, append(all, opts...)...)
	return r
}

// browser is the same stack seen from a new browser.
func (r *rig) browser() *rig { return &rig{Stack: r.WithBrowser(), keys: r.keys} }

// authParams is the test SP's request with the given parameters set; an
// empty value removes the parameter.
func authParams(kv ...string) url.Values {
	p := teststack.AuthParams()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			p.Del(kv[i])
		} else {
			p.Set(kv[i], kv[i+1])
		}
	}
	return p
}

// Browser steps.

func (r *rig) authorize(t *testing.T, p url.Values) *http.Response {
	t.Helper()
	resp, _ := teststack.Get(t, r.Browser, r.BrokerURL+"/authorize?"+p.Encode())
	return resp
}

// wantLocation checks a 303 to loc.
func wantLocation(t *testing.T, resp *http.Response, loc string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != loc {
		t.Fatalf("got %d to %q, want 303 to %q", resp.StatusCode, resp.Header.Get("Location"), loc)
	}
}

// wantSPError checks a redirect to the SP with error code, the request's
// state and the broker's iss, and no code.
func wantSPError(t *testing.T, r *rig, resp *http.Response, code string) {
	t.Helper()
	loc := resp.Header.Get("Location")
	u, _ := url.Parse(loc)
	q := u.Query()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, teststack.SPRedirect+"?") ||
		q.Get("error") != code || q.Get("state") != "state-1" || q.Get("iss") != r.BrokerURL || q.Has("code") {
		t.Fatalf("got %d to %q, want the SP's redirect_uri with error=%s, state=state-1, iss=%s and no code", resp.StatusCode, loc, code, r.BrokerURL)
	}
	if q.Get("error_description") == "" {
		t.Errorf("%s without error_description", code)
	}
}

// wantPage checks an error page with status and code, and no redirect.
func wantPage(t *testing.T, resp *http.Response, body string, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Location") != "" || !strings.Contains(body, "<code>"+code+"</code>") {
		t.Fatalf("got %d (Location %q, code %v), want page %s with %d", resp.StatusCode, resp.Header.Get("Location"), pageCodeRE.FindAllString(body, -1), code, status)
	}
}

var pageCodeRE = regexp.MustCompile(`S[0-9]{6}`)

// bannerSentences tells each chooser banner by its sentence: the banner
// shows the sentence of the code, not the code.
var bannerSentences = map[string]string{
	"S020026": "Le fournisseur d'identité ne répond pas.",
	"S020027": "La réponse du fournisseur d'identité n'a pas pu être vérifiée.",
	"S020030": "La connexion auprès du fournisseur d'identité a été annulée ou refusée.",
}

var bannerRE = regexp.MustCompile(`(?s)id="banner">\s*<p>(.*?)</p>`)

// wantBanner checks a redirect to the chooser, which then shows the
// banner of code.
func wantBanner(t *testing.T, r *rig, resp *http.Response, code string) {
	t.Helper()
	wantLocation(t, resp, "/authorize/choose")
	cresp, page := teststack.Get(t, r.Browser, r.BrokerURL+"/authorize/choose")
	m := bannerRE.FindStringSubmatch(page)
	if cresp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("chooser: %d, banner %v; want a banner %s", cresp.StatusCode, m, code)
	}
	if got := html.UnescapeString(m[1]); !strings.Contains(got, bannerSentences[code]) {
		t.Fatalf("banner %q, want %s: %q", got, code, bannerSentences[code])
	}
}

var (
	choiceRE = regexp.MustCompile(`id="idp-([a-z0-9-]+)"( disabled)?`)
	// The badge says the level in words ("Connexion standard"); the
	// level asked is in its data-acr.
	acrRE = regexp.MustCompile(`id="acr" data-acr="([^"]*)"`)
)

// chooser fetches the chooser and returns its level badge and its IdPs,
// each mapped to whether it is greyed out.
func (r *rig) chooser(t *testing.T) (string, map[string]bool) {
	t.Helper()
	resp, page := teststack.Get(t, r.Browser, r.BrokerURL+"/authorize/choose")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chooser: %d", resp.StatusCode)
	}
	idps := map[string]bool{}
	for _, m := range choiceRE.FindAllStringSubmatch(page, -1) {
		idps[m[1]] = m[2] != ""
	}
	return teststack.Field(t, acrRE, page), idps
}

// toIdP sends the SP's request, which must lead to the chooser, and picks
// idp; it returns the broker's redirect to the IdP.
func (r *rig) toIdP(t *testing.T, p url.Values, idp string) *url.URL {
	t.Helper()
	wantLocation(t, r.authorize(t, p), "/authorize/choose")
	loc := r.Choose(t, idp)
	u, _ := url.Parse(loc)
	if !strings.HasPrefix(loc, r.IdPURL+"/"+idp+"/authorize?") {
		t.Fatalf("choose %s: redirect to %q", idp, loc)
	}
	return u
}

// callback runs a login through the chooser up to the broker's answer at
// the IdP callback.
func (r *rig) callback(t *testing.T, p url.Values, idp, identity string, scenario url.Values) (*http.Response, string) {
	t.Helper()
	cb := r.IdPLogin(t, r.toIdP(t, p, idp).String(), identity, scenario)
	return teststack.Get(t, r.Browser, cb)
}

// login is a fresh login through the chooser. It returns the redirect to
// the SP and the bounds, in Unix seconds, of the moment the citizen logged
// in at the IdP.
func (r *rig) login(t *testing.T, p url.Values, idp, identity string, scenario url.Values) (*url.URL, int64, int64) {
	t.Helper()
	idpAuth := r.toIdP(t, p, idp).String()
	before := time.Now().Unix()
	cb := r.IdPLogin(t, idpAuth, identity, scenario)
	after := time.Now().Unix()
	return r.Finish(t, cb), before, after
}

// sso sends the SP's request, which must be served from the session (to
// the information page, no chooser), and goes on to the SP.
func (r *rig) sso(t *testing.T, p url.Values) *url.URL {
	t.Helper()
	wantLocation(t, r.authorize(t, p), "/authorize/consent")
	return r.Finish(t, r.BrokerURL+"/authorize/consent")
}

// waitNextSecond sleeps into the next second, so that two logins have
// different auth_time.
func waitNextSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now))
}

// The SP's side.

type tokens struct {
	ID          map[string]any // verified (and on "+", decrypted) id_token claims
	AccessToken string
	Scope       string
}

// redeem checks the authorization response and redeems its code as
// clientID: client_secret_post on standard, private_key_jwt on "+".
func (r *rig) redeem(t *testing.T, clientID string, u *url.URL) tokens {
	t.Helper()
	q := u.Query()
	if q.Get("code") == "" || q.Get("state") != "state-1" || q.Get("iss") != r.BrokerURL || q.Has("error") {
		t.Fatalf("authorization response %s: want code, state and iss", u)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {teststack.SPRedirect}, "client_id": {clientID}}
	if r.keys != nil {
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", r.assertion(t, clientID))
	} else {
		form.Set("client_secret", teststack.SPSecret)
	}
	status, out := r.Token(t, form, false)
	raw, _ := out["id_token"].(string)
	if status != http.StatusOK || raw == "" {
		t.Fatalf("token: %d %v", status, out)
	}
	var claims map[string]any
	if r.keys != nil {
		claims, _ = openNested(t, r.Stack, raw, r.keys.enc)
	} else {
		claims = r.verifyJWS(t, raw)
	}
	if claims["iss"] != r.BrokerURL || claims["aud"] != clientID {
		t.Fatalf("id_token iss %v aud %v", claims["iss"], claims["aud"])
	}
	at, _ := out["access_token"].(string)
	scope, _ := out["scope"].(string)
	return tokens{ID: claims, AccessToken: at, Scope: scope}
}

// assertion is a private_key_jwt client assertion of clientID.
func (r *rig) assertion(t testing.TB, clientID string) string {
	t.Helper()
	now := time.Now()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: r.keys.sig.Key}, (&jose.SignerOptions{}).WithHeader("kid", r.keys.sig.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{r.BrokerURL + "/token"}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	out, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// verifyJWS verifies a standard platform's ES256 token against /jwks.
func (r *rig) verifyJWS(t *testing.T, raw string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("id_token is not an ES256 JWS: %v", err)
	}
	_, body := teststack.Get(t, http.DefaultClient, r.BrokerURL+"/jwks")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in /jwks", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("id_token does not verify against /jwks: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// userinfo fetches the claims an access token releases.
func (r *rig) userinfo(t *testing.T, accessToken string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.BrokerURL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d %s", resp.StatusCode, body)
	}
	if r.keys != nil {
		claims, _ := openNested(t, r.Stack, string(body), r.keys.enc)
		return claims
	}
	var claims map[string]any
	if err := json.Unmarshal(body, &claims); err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	return claims
}

// authTime reads auth_time from id_token claims.
func authTime(t *testing.T, claims map[string]any) int64 {
	t.Helper()
	v, ok := claims["auth_time"].(float64)
	if !ok {
		t.Fatalf("id_token without auth_time: %v", claims)
	}
	return int64(v)
}

// amr reads amr from id_token claims; nil when absent.
func amr(t *testing.T, claims map[string]any) []string {
	t.Helper()
	v, ok := claims["amr"]
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("amr is not an array: %v", v)
	}
	out := []string{}
	for _, a := range list {
		s, _ := a.(string)
		out = append(out, s)
	}
	return out
}
