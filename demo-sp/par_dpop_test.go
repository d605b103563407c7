package demosp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/internal/dpop"
)

// dpopJKT is the thumbprint of the "+" platform's DPoP key in app.
func dpopJKT(t *testing.T, app *App) string {
	t.Helper()
	tr, ok := app.plus.calls.Transport.(*dpopTransport)
	if !ok {
		t.Fatal("the \"+\" platform's client has no DPoP transport")
	}
	jkt, err := dpop.Thumbprint(tr.key)
	if err != nil {
		t.Fatal(err)
	}
	return jkt
}

// verifyProof checks a proof the fake OP received, with internal/dpop,
// for the given request; it returns the proof for its jkt and nonce.
func verifyProof(t *testing.T, raw, method, u, accessToken string) *dpop.Proof {
	t.Helper()
	p, err := dpop.Verify(raw, dpop.Check{Method: method, URL: u, AccessToken: accessToken})
	if err != nil {
		t.Fatalf("proof for %s %s: %v", method, u, err)
	}
	return p
}

// TestPlusPARAndDPoP follows a "+" login hop by hop: the authorization
// parameters go by PAR with the client's assertion and a DPoP proof, the
// browser carries only client_id and request_uri, and the token and
// userinfo calls carry proofs for their own method and URL, all by one
// key that /jwks does not publish.
func TestPlusPARAndDPoP(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	app, sp := startPlus(t, "http://127.0.0.1:1", op, jose.ECDH_ES)
	jkt := dpopJKT(t, app)
	b := newBrowser(t)

	login := b.post(sp.URL+"/login", url.Values{"platform": {"plus"}, "acr_values": {"eidas3"}})
	if login.status != http.StatusSeeOther || !strings.HasPrefix(login.location, op.issuer()+"/authorize?") {
		t.Fatalf("login: %d to %q\n%s", login.status, login.location, login.body)
	}
	loc, _ := url.Parse(login.location)
	q := loc.Query()
	if len(q) != 2 || q.Get("client_id") != "demo-sp-plus" || !strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:") {
		t.Errorf("the browser carries more than client_id and request_uri: %v", q)
	}

	op.mu.Lock()
	forms, parAssertions, parProofs := op.parForms, op.parAssertions, op.proofs["par"]
	op.mu.Unlock()
	if len(forms) != 1 || len(parAssertions) != 1 || len(parProofs) != 1 {
		t.Fatalf("PAR: %d request(s), %d good assertion(s), %d proof(s); refusal: %v", len(forms), len(parAssertions), len(parProofs), op.assertionErr)
	}
	f := forms[0]
	for k, want := range map[string]string{
		"response_type": "code", "client_id": "demo-sp-plus", "redirect_uri": sp.URL + "/callback",
		"scope": "openid identite_pivot email", "acr_values": "eidas3", "claims": amrClaims,
		"code_challenge_method": "S256", "client_assertion_type": assertionType,
	} {
		if f.Get(k) != want {
			t.Errorf("PAR %s = %q, want %q", k, f.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge", "client_assertion"} {
		if f.Get(k) == "" {
			t.Errorf("PAR has no %s", k)
		}
	}
	if f.Has("client_secret") {
		t.Error("a secret went to the PAR endpoint along with the assertion")
	}
	if aud := parAssertions[0].Claims.Audience; len(aud) != 1 || aud[0] != op.issuer() {
		t.Errorf("PAR assertion aud %v, want the issuer", aud)
	}
	if p := verifyProof(t, parProofs[0], http.MethodPost, op.issuer()+"/par", ""); p.JKT != jkt {
		t.Errorf("PAR proof by key %s, want the demo SP's %s", p.JKT, jkt)
	}
	if _, err := dpop.Verify(parProofs[0], dpop.Check{Method: http.MethodPost, URL: op.issuer() + "/token"}); !errors.Is(err, dpop.ErrInvalidProof) {
		t.Errorf("the PAR proof also passes for the token endpoint: %v", err)
	}

	auth := b.get(login.location)
	if auth.status != http.StatusSeeOther || !strings.HasPrefix(auth.location, sp.URL+"/callback?") {
		t.Fatalf("authorize: %d %q", auth.status, auth.location)
	}
	if cb := b.get(auth.location); cb.status != http.StatusSeeOther || cb.location != "/me" {
		t.Fatalf("callback: %d %q\n%s", cb.status, cb.location, cb.body)
	}

	op.mu.Lock()
	tokenProofs, userinfoProofs, auths := op.proofs["token"], op.proofs["userinfo"], op.userinfoAuth
	lastToken, proofErr := op.lastToken, op.proofErr
	op.mu.Unlock()
	if proofErr != nil {
		t.Errorf("the fake OP refused a proof: %v", proofErr)
	}
	if len(tokenProofs) != 1 || len(userinfoProofs) != 1 || len(auths) != 1 {
		t.Fatalf("%d token proof(s), %d userinfo proof(s), %d userinfo call(s)", len(tokenProofs), len(userinfoProofs), len(auths))
	}
	if p := verifyProof(t, tokenProofs[0], http.MethodPost, op.issuer()+"/token", ""); p.JKT != jkt {
		t.Errorf("token proof by key %s, want %s", p.JKT, jkt)
	}
	if lastToken.Get("grant_type") != "authorization_code" || lastToken.Get("client_assertion") == "" {
		t.Errorf("token request form: %v", lastToken)
	}
	at, ok := strings.CutPrefix(auths[0], "DPoP ")
	if !ok || !strings.HasPrefix(at, "at-") {
		t.Fatalf("userinfo Authorization %q, want DPoP and the access token", auths[0])
	}
	if p := verifyProof(t, userinfoProofs[0], http.MethodGet, op.issuer()+"/userinfo", at); p.JKT != jkt {
		t.Errorf("userinfo proof by key %s, want %s", p.JKT, jkt)
	}
	if _, err := dpop.Verify(userinfoProofs[0], dpop.Check{Method: http.MethodGet, URL: op.issuer() + "/userinfo", AccessToken: "at-other"}); !errors.Is(err, dpop.ErrInvalidProof) {
		t.Errorf("the userinfo proof's ath also fits another token: %v", err)
	}
	if me := b.get(sp.URL + "/me"); !strings.Contains(me.body, fakeSub) {
		t.Errorf("/me after the login:\n%s", me.body)
	}

	// The DPoP key is the process's own: not among the published keys, the
	// same for the next login, another in another demo SP.
	for _, k := range publishedKeys(t, sp.URL).Keys {
		if tp, _ := dpop.Thumbprint(k); tp == jkt {
			t.Errorf("the DPoP key is published in /jwks (kid %q)", k.KeyID)
		}
	}
	b2 := newBrowser(t)
	if p := b2.get(loginOn(t, b2, sp.URL, "plus", "eidas2")); p.status != http.StatusSeeOther || p.location != "/me" {
		t.Fatalf("second login: %d %q\n%s", p.status, p.location, p.body)
	}
	op.mu.Lock()
	second := op.proofs["par"][1]
	op.mu.Unlock()
	if p := verifyProof(t, second, http.MethodPost, op.issuer()+"/par", ""); p.JKT != jkt {
		t.Error("the second login used another DPoP key")
	}
	other, _ := startPlus(t, "http://127.0.0.1:1", newFakeOP(t, jose.ES256), jose.ECDH_ES)
	if dpopJKT(t, other) == jkt {
		t.Error("two demo SP processes share a DPoP key")
	}
}

// TestPlusDPoPNonce: where the platform asks for a nonce, the demo SP tries
// once more with it, and keeps the latest nonce for its next calls, so one
// challenge is enough for a whole login, and for the next login too.
func TestPlusDPoPNonce(t *testing.T) {
	for _, c := range []struct {
		name       string
		at         []string
		challenges map[string]int
		proofs     map[string]int // for the first login
	}{
		{"at the token endpoint", []string{"token"}, map[string]int{"token": 1}, map[string]int{"par": 1, "token": 2, "userinfo": 1}},
		{"at userinfo", []string{"userinfo"}, map[string]int{"userinfo": 1}, map[string]int{"par": 1, "token": 1, "userinfo": 2}},
		{"at PAR", []string{"par"}, map[string]int{"par": 1}, map[string]int{"par": 2, "token": 1, "userinfo": 1}},
		{"everywhere: learnt at PAR, kept for token and userinfo", []string{"par", "token", "userinfo"},
			map[string]int{"par": 1}, map[string]int{"par": 2, "token": 1, "userinfo": 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			op := newFakeOP(t, jose.ES256)
			_, sp := startPlus(t, "http://127.0.0.1:1", op, jose.ECDH_ES)
			op.set(func(op *fakeOP) {
				op.nonceAt = map[string]bool{}
				for _, e := range c.at {
					op.nonceAt[e] = true
				}
			})
			for i := range 2 {
				b := newBrowser(t)
				if p := b.get(loginOn(t, b, sp.URL, "plus", "eidas3")); p.status != http.StatusSeeOther || p.location != "/me" {
					t.Fatalf("login %d: %d %q\n%s", i+1, p.status, p.location, p.body)
				}
				op.mu.Lock()
				challenges, proofs := op.challenges, op.proofs
				op.mu.Unlock()
				for _, e := range []string{"par", "token", "userinfo"} {
					if challenges[e] != c.challenges[e] {
						t.Errorf("login %d: %d use_dpop_nonce answer(s) at %s, want %d", i+1, challenges[e], e, c.challenges[e])
					}
					if i == 0 && len(proofs[e]) != c.proofs[e] {
						t.Errorf("%d proof(s) at %s, want %d", len(proofs[e]), e, c.proofs[e])
					}
				}
			}
			// The challenged endpoint's first proof had no nonce, its
			// second the one the fake OP issued.
			op.mu.Lock()
			defer op.mu.Unlock()
			for e := range c.challenges {
				first := verifyProof(t, op.proofs[e][0], methodOf(e), op.issuer()+"/"+e, "")
				if first.Nonce != "" {
					t.Errorf("%s: the first proof already had a nonce", e)
				}
			}
			for e := range op.nonceAt {
				for _, raw := range op.proofs[e][1:] {
					if n := verifyProof(t, raw, methodOf(e), op.issuer()+"/"+e, "").Nonce; !op.nonces.Valid(n, time.Now()) {
						t.Errorf("%s: a later proof carries nonce %q, not the fake OP's", e, n)
					}
				}
			}
			if len(op.parAssertions) != c.proofs["par"]+1 || len(op.assertions) != c.proofs["token"]+1 {
				t.Errorf("%d PAR and %d token assertions accepted: a retry reused a spent one", len(op.parAssertions), len(op.assertions))
			}
		})
	}
}

// methodOf is the HTTP method of a fake OP endpoint.
func methodOf(endpoint string) string {
	if endpoint == "userinfo" {
		return http.MethodGet
	}
	return http.MethodPost
}

// TestPlusDPoPNonceRetriedOnce: a platform that keeps asking for a nonce
// gets exactly one more try, then the login fails on a clear page.
func TestPlusDPoPNonceRetriedOnce(t *testing.T) {
	for _, c := range []struct {
		endpoint string
		status   int
		code     string
	}{
		{"par", http.StatusBadRequest, "use_dpop_nonce"},
		{"token", http.StatusBadGateway, errExchange.Code},
		{"userinfo", http.StatusBadGateway, errUserInfo.Code},
	} {
		t.Run(c.endpoint, func(t *testing.T) {
			op := newFakeOP(t, jose.ES256)
			_, sp := startPlus(t, "http://127.0.0.1:1", op, jose.ECDH_ES)
			op.set(func(op *fakeOP) { op.nonceAt, op.staleNonce = map[string]bool{c.endpoint: true}, true })
			b := newBrowser(t)
			p := b.post(sp.URL+"/login", url.Values{"platform": {"plus"}})
			if c.endpoint != "par" {
				p, _ = b.follow(p, sp.URL+"/login")
			}
			wantError(t, p, c.status, c.code)
			op.mu.Lock()
			defer op.mu.Unlock()
			if n := len(op.proofs[c.endpoint]); n != 2 || op.challenges[c.endpoint] != 2 {
				t.Errorf("%d request(s) and %d challenge(s) at %s, want 2 and 2", n, op.challenges[c.endpoint], c.endpoint)
			}
			if b.cookie(sp.URL, sessionCookie) != nil {
				t.Error("a failed login opened a session")
			}
		})
	}
}

// TestPlusRefusesWeakerProvider: a "+" platform that does not advertise
// PAR, or DPoP with ES256, is refused before anything is sent, rather than
// silently logged in to without the protection the configuration asks for;
// and a bearer token answered to a DPoP request is refused.
func TestPlusRefusesWeakerProvider(t *testing.T) {
	for _, c := range []struct {
		name   string
		setup  func(op *fakeOP)
		status int
		code   string
	}{
		{"no PAR endpoint", func(op *fakeOP) { op.par, op.requirePAR = false, false }, http.StatusBadGateway, errProviderUnfit.Code},
		{"no DPoP", func(op *fakeOP) { op.dpop = false }, http.StatusBadGateway, errProviderUnfit.Code},
		{"DPoP without ES256", func(op *fakeOP) { op.dpopAlgs = []string{"PS256", "EdDSA"} }, http.StatusBadGateway, errProviderUnfit.Code},
		{"a bearer token for a DPoP request", func(op *fakeOP) { op.bearerToken = true }, http.StatusBadGateway, errExchange.Code},
		{"PAR refused", func(op *fakeOP) { op.parError = "invalid_request" }, http.StatusBadRequest, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			op := newFakeOP(t, jose.ES256)
			_, sp := startPlus(t, "http://127.0.0.1:1", op, jose.ECDH_ES)
			op.set(c.setup)
			b := newBrowser(t)
			p, _ := b.follow(b.post(sp.URL+"/login", url.Values{"platform": {"plus"}}), sp.URL+"/login")
			wantError(t, p, c.status, c.code)
			op.mu.Lock()
			defer op.mu.Unlock()
			if c.code == errProviderUnfit.Code && (len(op.parForms) != 0 || op.lastAuthorizeQuery != nil) {
				t.Error("the demo SP went on with a provider it refused")
			}
			if c.code == "invalid_request" && b.cookie(sp.URL, txCookie) != nil {
				t.Error("a refused PAR left a transaction cookie")
			}
			if c.code == errExchange.Code && len(op.userinfoAuth) != 0 {
				t.Error("userinfo was called with a bearer token")
			}
		})
	}
}

// TestStandardIgnoresPARAndDPoP: the standard platform's flow is the one it
// always was, even at a provider that offers PAR and DPoP: parameters in
// the browser's URL, no proof anywhere, a bearer token.
func TestStandardIgnoresPARAndDPoP(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	_, sp := startSP(t, op.issuer())
	op.set(func(op *fakeOP) { op.par, op.dpopAlgs = true, []string{"ES256"} })
	b := newBrowser(t)
	login := b.post(sp.URL+"/login", url.Values{"acr_values": {"eidas1"}})
	loc, _ := url.Parse(login.location)
	if q := loc.Query(); q.Has("request_uri") || q.Get("state") == "" || q.Get("code_challenge") == "" || q.Get("acr_values") != "eidas1" {
		t.Errorf("standard authorization URL: %v", q)
	}
	if p, _ := b.follow(login, sp.URL+"/login"); !strings.Contains(p.body, fakeSub) {
		t.Fatalf("standard login did not reach /me:\n%s", p.body)
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	if len(op.parForms) != 0 || len(op.proofs) != 0 || op.sawDPoP != 0 {
		t.Errorf("the standard platform used PAR or DPoP: %d PAR, %d DPoP header(s)", len(op.parForms), op.sawDPoP)
	}
	if len(op.userinfoAuth) != 1 || !strings.HasPrefix(op.userinfoAuth[0], "Bearer ") {
		t.Errorf("standard userinfo Authorization: %v", op.userinfoAuth)
	}
}
