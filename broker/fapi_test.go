package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/dpop"
)

// fapiClient is the test SP on a "+" platform with its FAPI 2.0 profile:
// it pushes its requests, proves a DPoP key, authenticates with
// private_key_jwt.
type fapiClient struct {
	*rig
	key      jose.JSONWebKey
	verifier string
	nonce    string // the latest DPoP-Nonce the broker sent
}

func newFAPI(t testing.TB, opts ...teststack.Option) *fapiClient {
	t.Helper()
	r := newRig(t, nil, true, append([]teststack.Option{teststack.FAPI()}, opts...)...)
	return &fapiClient{rig: r, key: newDPoPKey(t), verifier: oauth2.GenerateVerifier()}
}

func newDPoPKey(t testing.TB) jose.JSONWebKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256)}
}

func (c *fapiClient) proof(t testing.TB, key jose.JSONWebKey, method, path, token string) string {
	t.Helper()
	p, err := dpop.NewProof(key, method, c.BrokerURL+path, token, c.nonce)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// post sends a form with the client's assertion and, when proof is set,
// a DPoP header.
func (c *fapiClient) post(t testing.TB, path string, form url.Values, proof string) (int, http.Header, map[string]any) {
	t.Helper()
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", c.assertion(t, teststack.SPID))
	req, _ := http.NewRequest(http.MethodPost, c.BrokerURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		c.nonce = n
	}
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header, out
}

// pushParams is the SP's authorization request, as pushed.
func (c *fapiClient) pushParams() url.Values {
	p := teststack.AuthParams()
	p.Set("acr_values", "eidas2")
	p.Set("code_challenge", oauth2.S256ChallengeFromVerifier(c.verifier))
	p.Set("code_challenge_method", "S256")
	return p
}

// push sends params to /par with a proof of key, and returns the
// request_uri.
func (c *fapiClient) push(t testing.TB, params url.Values, key jose.JSONWebKey) string {
	t.Helper()
	status, _, out := c.post(t, "/par", params, c.proof(t, key, http.MethodPost, "/par", ""))
	uri, _ := out["request_uri"].(string)
	if status != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || out["expires_in"] != float64(60) {
		t.Fatalf("PAR: %d %v", status, out)
	}
	return uri
}

// login pushes, then runs the browser through laposte to the code.
func (c *fapiClient) login(t testing.TB, key jose.JSONWebKey) string {
	t.Helper()
	uri := c.push(t, c.pushParams(), key)
	u := c.Finish(t, c.IdPLogin(t, c.authorizeAndChoose(t, uri), "angela-dubois", nil))
	if u.Query().Get("code") == "" || u.Query().Get("iss") != c.BrokerURL || u.Query().Get("state") != "state-1" {
		t.Fatalf("authorization response %s", u)
	}
	return u.Query().Get("code")
}

func (c *fapiClient) authorizeAndChoose(t testing.TB, uri string) string {
	t.Helper()
	resp, body := teststack.Get(t, c.Browser, c.BrokerURL+"/authorize?"+url.Values{"client_id": {teststack.SPID}, "request_uri": {uri}}.Encode())
	if resp.Header.Get("Location") != "/authorize/choose" {
		t.Fatalf("authorize with request_uri: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	return c.Choose(t, "laposte")
}

// redeemDPoP redeems code with a proof of key.
func (c *fapiClient) redeemDPoP(t testing.TB, code string, key jose.JSONWebKey) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect}, "code_verifier": {c.verifier}}
	status, _, out := c.post(t, "/token", form, c.proof(t, key, http.MethodPost, "/token", ""))
	return status, out
}

// userinfoWith calls userinfo with an Authorization header and an
// optional DPoP proof, and returns the status and the challenge.
func (c *fapiClient) userinfoWith(t testing.TB, auth, proof string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.BrokerURL+"/userinfo", nil)
	req.Header.Set("Authorization", auth)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		c.nonce = n
	}
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// A "+" login with PAR, PKCE, private_key_jwt and DPoP; the token is bound
// to the key: without its proof, as Bearer, with another key's proof or
// a replayed proof, userinfo refuses it.
func TestFAPILogin(t *testing.T) {
	c := newFAPI(t)
	code := c.login(t, c.key)
	status, out := c.redeemDPoP(t, code, c.key)
	if status != http.StatusOK || out["token_type"] != "DPoP" {
		t.Fatalf("token: %d %v", status, out)
	}
	at := out["access_token"].(string)
	good := c.proof(t, c.key, http.MethodGet, "/userinfo", at)
	if st, ch := c.userinfoWith(t, "DPoP "+at, good); st != http.StatusOK {
		t.Fatalf("userinfo with its proof: %d %s", st, ch)
	}
	for name, call := range map[string]func() (int, string){
		"as Bearer":          func() (int, string) { return c.userinfoWith(t, "Bearer "+at, "") },
		"unknown bearer":     func() (int, string) { return c.userinfoWith(t, "Bearer nothing", "") },
		"DPoP without proof": func() (int, string) { return c.userinfoWith(t, "DPoP "+at, "") },
		"replayed proof":     func() (int, string) { return c.userinfoWith(t, "DPoP "+at, good) },
		"another key's proof": func() (int, string) {
			return c.userinfoWith(t, "DPoP "+at, c.proof(t, newDPoPKey(t), http.MethodGet, "/userinfo", at))
		},
		"proof for another token": func() (int, string) {
			return c.userinfoWith(t, "DPoP "+at, c.proof(t, c.key, http.MethodGet, "/userinfo", "another"))
		},
		"proof for another URL": func() (int, string) {
			return c.userinfoWith(t, "DPoP "+at, c.proof(t, c.key, http.MethodGet, "/token", at))
		},
	} {
		st, ch := call()
		t.Logf("%s: %d %q", name, st, ch)
		if st != http.StatusUnauthorized || !strings.HasPrefix(ch, "DPoP ") {
			t.Errorf("userinfo %s: %d %q, want 401 with a DPoP challenge", name, st, ch)
		}
	}
}

// What "+" refuses: no PAR, no PKCE, a client secret, no DPoP at token, a
// token proof by another key than the one the request was pushed with, a
// request_uri used twice or by another client.
func TestFAPIRefusals(t *testing.T) {
	c := newFAPI(t, withSP("other", func(sp *config.SP) {}))

	// Not pushed: back to the SP with invalid_request.
	resp := c.authorize(t, c.pushParams())
	wantSPError(t, c.rig, resp, "invalid_request")

	// Pushed without PKCE: refused at PAR.
	noPKCE := c.pushParams()
	noPKCE.Del("code_challenge")
	noPKCE.Del("code_challenge_method")
	if st, _, out := c.post(t, "/par", noPKCE, ""); st != http.StatusBadRequest || out["error"] != "invalid_request" {
		t.Errorf("PAR without PKCE: %d %v", st, out)
	}
	// A request_uri in a pushed request.
	ru := c.pushParams()
	ru.Set("request_uri", "urn:ietf:params:oauth:request_uri:x")
	if st, _, out := c.post(t, "/par", ru, ""); st != http.StatusBadRequest || out["error"] != "invalid_request" {
		t.Errorf("PAR with request_uri: %d %v", st, out)
	}
	// A client secret, even the right shape: "+" takes private_key_jwt only.
	req, _ := http.NewRequest(http.MethodPost, c.BrokerURL+"/par", strings.NewReader(c.pushParams().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(teststack.SPID, teststack.SPSecret)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Errorf("PAR with a client secret: %v %v", r, err)
	}

	// A request_uri is single use, and only for the client that pushed it.
	uri := c.push(t, c.pushParams(), c.key)
	foreign := c.browser()
	if resp, body := teststack.Get(t, foreign.Browser, c.BrokerURL+"/authorize?"+url.Values{"client_id": {"other"}, "request_uri": {uri}}.Encode()); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "S030") {
		t.Errorf("request_uri of another client: %d", resp.StatusCode)
	}
	uri = c.push(t, c.pushParams(), c.key)
	c.authorizeAndChoose(t, uri)
	again := c.browser()
	if resp, _ := teststack.Get(t, again.Browser, c.BrokerURL+"/authorize?"+url.Values{"client_id": {teststack.SPID}, "request_uri": {uri}}.Encode()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("request_uri used twice: %d", resp.StatusCode)
	}

	// No DPoP at the token endpoint; then a proof by another key than the
	// pushed request's: the code is bound to that key.
	fresh := &fapiClient{rig: c.browser(), key: c.key, verifier: c.verifier}
	code := fresh.login(t, c.key)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect}, "code_verifier": {c.verifier}}
	if st, _, out := c.post(t, "/token", form, ""); st != http.StatusBadRequest || out["error"] != "invalid_request" {
		t.Errorf("token without DPoP on +: %d %v", st, out)
	}
	if st, out := c.redeemDPoP(t, code, newDPoPKey(t)); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("token with another key than the pushed request's: %d %v", st, out)
	}
}

// Server nonces (fapi.dpop_nonce): a proof without one is answered
// use_dpop_nonce with a DPoP-Nonce, and the retry with it passes, at PAR,
// token and userinfo.
func TestFAPIDPoPNonce(t *testing.T) {
	on := true
	c := newFAPI(t, func(cfg *config.Config) { cfg.Broker.Platforms[0].FAPI.DPoPNonce = &on })
	st, hdr, out := c.post(t, "/par", c.pushParams(), c.proof(t, c.key, http.MethodPost, "/par", ""))
	if st != http.StatusBadRequest || out["error"] != "use_dpop_nonce" || hdr.Get("DPoP-Nonce") == "" {
		t.Fatalf("PAR without a nonce: %d %v %q", st, out, hdr.Get("DPoP-Nonce"))
	}
	code := c.login(t, c.key) // with the nonce learnt
	// The nonce retry resends the same client assertion, as some
	// libraries do: it was not spent by the first try.
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect}, "code_verifier": {c.verifier},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {c.assertion(t, teststack.SPID)}}
	send := func(nonce string) (int, map[string]any) {
		t.Helper()
		proof, err := dpop.NewProof(c.key, http.MethodPost, c.BrokerURL+"/token", "", nonce)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, c.BrokerURL+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		c.nonce = resp.Header.Get("DPoP-Nonce")
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if st, out := send(""); st != http.StatusBadRequest || out["error"] != "use_dpop_nonce" {
		t.Fatalf("token without a nonce: %d %v", st, out)
	}
	status, tok := send(c.nonce)
	if status != http.StatusOK {
		t.Fatalf("token retried with the nonce and the same assertion: %d %v", status, tok)
	}
	at := tok["access_token"].(string)
	stale := c.nonce
	c.nonce = ""
	if st, ch := c.userinfoWith(t, "DPoP "+at, c.proof(t, c.key, http.MethodGet, "/userinfo", at)); st != http.StatusUnauthorized || !strings.Contains(ch, `error="use_dpop_nonce"`) {
		t.Fatalf("userinfo without a nonce: %d %q", st, ch)
	}
	c.nonce = stale
	if st, ch := c.userinfoWith(t, "DPoP "+at, c.proof(t, c.key, http.MethodGet, "/userinfo", at)); st != http.StatusOK {
		t.Fatalf("userinfo with the nonce: %d %q", st, ch)
	}
}

// Discovery says what each platform requires; the standard platform keeps
// its plain profile for SPs that know none of FAPI.
func TestFAPIDiscovery(t *testing.T) {
	for name, c := range map[string]struct {
		opts    []teststack.Option
		par     bool
		methods string
		plus    bool
	}{
		"plus":     {nil, true, `["private_key_jwt"]`, true},
		"standard": {nil, false, `["client_secret_basic","client_secret_post","private_key_jwt"]`, false},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, nil, c.plus, append(c.opts, func(cfg *config.Config) {
				if c.plus {
					cfg.Broker.Platforms[0].FAPI = config.FAPI{}
				}
			})...)
			_, body := teststack.Get(t, http.DefaultClient, r.BrokerURL+"/.well-known/openid-configuration")
			var d map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &d); err != nil {
				t.Fatal(err)
			}
			if string(d["pushed_authorization_request_endpoint"]) != `"`+r.BrokerURL+`/par"` || string(d["require_pushed_authorization_requests"]) != map[bool]string{true: "true", false: "false"}[c.par] {
				t.Errorf("PAR metadata: %s %s", d["pushed_authorization_request_endpoint"], d["require_pushed_authorization_requests"])
			}
			if string(d["token_endpoint_auth_methods_supported"]) != c.methods {
				t.Errorf("auth methods %s, want %s", d["token_endpoint_auth_methods_supported"], c.methods)
			}
			if !strings.Contains(string(d["dpop_signing_alg_values_supported"]), `"ES256"`) {
				t.Errorf("dpop algs %s", d["dpop_signing_alg_values_supported"])
			}
		})
	}
}

// check-config refuses a client secret on "+" (private_key_jwt only).
func TestFAPIConfigRefusesSecretOnPlus(t *testing.T) {
	k, err := plusKeysOnce()
	if err != nil {
		t.Fatal(err)
	}
	s := teststack.New(t) // a valid config to start from
	cfg := *s.Config
	b := *cfg.Broker
	pl := b.Platforms[0]
	pl.Level, pl.ACRValues, pl.DefaultACR, pl.SSOLevels = "plus", []string{"eidas2", "eidas3"}, "eidas3", []string{"eidas2"}
	pl.IdentityProviders = []string{"laposte"}
	sp := pl.ServiceProviders[0]
	sp.JWKS, sp.TokenEndpointAuthMethods = config.InlineJWKS(k.jwks), nil
	pl.ServiceProviders = []config.SP{sp}
	b.Platforms = []config.Platform{pl}
	cfg.Broker = &b
	err = cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "client_secret: platform std takes private_key_jwt only") {
		t.Fatalf("a + SP with a secret: %v", err)
	}
}

// On "+", introspection of a DPoP-bound token says so (token_type DPoP,
// cnf.jkt = the key's thumbprint), signed and encrypted as "+" requires,
// so that a data provider checks the binding.
func TestFAPIIntrospectionCnf(t *testing.T) {
	c := newFAPI(t, withData(nil))
	params := c.pushParams()
	params.Set("scope", "openid identite_pivot dgfip_rfr")
	uri := c.push(t, params, c.key)
	u := c.Finish(t, c.IdPLogin(t, c.authorizeAndChoose(t, uri), "angela-dubois", nil))
	status, out := c.redeemDPoP(t, u.Query().Get("code"), c.key)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, out)
	}
	st, ct, body := introspect(t, c.Stack, out["access_token"].(string), nil)
	if st != http.StatusOK || ct != "application/token-introspection+jwt" {
		t.Fatalf("introspection on +: %d %s, want the JWT", st, ct)
	}
	jwe, err := jose.ParseEncrypted(body, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatalf("introspection on + is not encrypted: %v", err)
	}
	inner, err := jwe.Decrypt(dpEncKey.Key)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Answer map[string]any `json:"token_introspection"`
	}
	jws, err := jose.ParseSigned(string(inner), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims)
	jkt, _ := dpop.Thumbprint(c.key.Public())
	cnf, _ := claims.Answer["cnf"].(map[string]any)
	if claims.Answer["token_type"] != "DPoP" || cnf["jkt"] != jkt {
		t.Fatalf("introspection of a DPoP-bound token: %v, want cnf.jkt %s", claims.Answer, jkt)
	}
}
