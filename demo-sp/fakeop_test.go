package demosp

import (
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
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/internal/dpop"
	"github.com/sesame-id/sesame/internal/keys"
)

// fakeOP is a minimal OpenID provider for the unit tests: it lets each test
// make the provider misbehave in one precise way (a lower acr, another
// nonce, another sub in userinfo), which a well-behaved mock IdP cannot do.
// It signs with internal/keys, so the demo SP's checks run against real
// signatures.
type fakeOP struct {
	t      *testing.T
	srv    *httptest.Server
	signer *keys.Set
	alg    jose.SignatureAlgorithm

	mu sync.Mutex
	// Set by the test before the flow.
	issRequired  bool   // advertise RFC 9207 support
	noISS        bool   // leave iss out of the authorization response
	wrongISS     string // send this iss instead of the real one
	acr          string // acr put in the id_token; "" means the one asked
	nonce        string // nonce put in the id_token; "" means the one sent
	userinfoSub  string // sub answered by userinfo; "" means the real one
	signUserinfo bool   // answer userinfo as application/jwt
	userinfoAud  string // aud of a signed userinfo; "" means demo-sp
	badATHash    bool   // put the at_hash of another access token
	noEndSession bool
	grantedScope string // scope of the token response; "" leaves it out (all asked were granted)

	// The "+" platform's behaviour (see plusMode), each also settable alone.
	clientID string // the client expected at /token; "" means demo-sp
	pkjwt    bool   // require private_key_jwt instead of client_secret_post
	encrypt  bool   // encrypt the id_token and a signed userinfo
	spJWKS   string // the SP's jwks_uri, fetched at each use as a broker would
	encAlg   jose.KeyAlgorithm
	// Misbehaviours on top of encryption.
	plainIDToken    bool              // send the id_token as a bare JWS
	plainUserinfo   bool              // send a signed userinfo as a bare JWS
	jsonUserinfo    bool              // answer userinfo as application/json whatever the mode
	foreignKey      string            // "kid": encrypt to a stranger's key and kid; "samekid": to a stranger's key under the SP's kid
	wrongKeyAlg     jose.KeyAlgorithm // encrypt to the SP's key for encAlg, but with this alg
	encryptUnsigned bool              // put the bare JSON claims inside the id_token's JWE
	userinfoNoISS   bool              // leave iss out of a signed userinfo

	// PAR (RFC 9126) and DPoP (RFC 9449), as the broker's "+" platform has
	// them; plusMode sets par, requirePAR and dpop.
	par        bool     // advertise and serve /par
	requirePAR bool     // /authorize takes a request_uri only
	dpop       bool     // advertise DPoP and require a proof at /par, /token and /userinfo
	dpopAlgs   []string // advertise these DPoP algorithms without requiring proofs (dpop: ES256)
	// nonceAt names the endpoints ("par", "token", "userinfo") that want a
	// server nonce in the proof; staleNonce makes every nonce stale there.
	nonceAt     map[string]bool
	staleNonce  bool
	bearerToken bool   // answer token_type Bearer even to a DPoP proof
	parError    string // refuse every PAR request with this OAuth error

	// Recorded from the flow.
	lastAuthorize      url.Values // the authorization parameters, resolved from request_uri
	lastAuthorizeQuery url.Values // the query /authorize was actually called with
	codes              map[string]url.Values
	lastToken          url.Values  // the last token request's form
	assertions         []assertion // the token endpoint's client assertions, checked
	parAssertions      []assertion // the PAR endpoint's client assertions, checked
	assertionErr       error       // why the last refused assertion was refused
	jtis               map[string]bool
	parForms           []url.Values          // every PAR request's form
	requestURIs        map[string]url.Values // pushed parameters, by request_uri, single use
	nonces             *dpop.Nonces
	proofs             map[string][]string // every DPoP header received, by endpoint, refused ones too
	proofErr           error               // why the last refused proof was refused
	challenges         map[string]int      // use_dpop_nonce answers, by endpoint
	dpopJTIs           map[string]bool
	tokenJKT           map[string]string // access token -> the jkt it is bound to ("" for bearer)
	userinfoAuth       []string          // the Authorization header of every userinfo request
	sawDPoP            int               // requests that came with a DPoP header, checked or not
}

// assertion is a client assertion as the fake OP received and checked it.
type assertion struct {
	Header jose.Header
	Claims jwt.Claims
}

// plusMode makes the fake behave as the "+" platform: client demo-sp-plus
// authenticated with private_key_jwt, id_token and userinfo signed then
// encrypted to the SP's keys published at spJWKS.
func (op *fakeOP) plusMode(spJWKS string, alg jose.KeyAlgorithm) {
	op.set(func(op *fakeOP) {
		op.clientID, op.pkjwt, op.encrypt, op.signUserinfo = "demo-sp-plus", true, true, true
		op.spJWKS, op.encAlg = spJWKS, alg
		op.par, op.requirePAR, op.dpop = true, true, true
	})
}

func (op *fakeOP) client() string {
	if op.clientID == "" {
		return "demo-sp"
	}
	return op.clientID
}

const fakeSub = "3f6a2c1b9d8e7f60"

func newFakeOP(t *testing.T, alg jose.SignatureAlgorithm) *fakeOP {
	t.Helper()
	signer, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	nonces, err := dpop.NewNonces([]byte(randomString(32)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{
		t: t, signer: signer, alg: alg, codes: map[string]url.Values{}, jtis: map[string]bool{},
		requestURIs: map[string]url.Values{}, nonces: nonces, proofs: map[string][]string{},
		challenges: map[string]int{}, dpopJTIs: map[string]bool{}, tokenJKT: map[string]string{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.Handle("GET /jwks", keys.JWKSHandler(signer))
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /par", op.pushed)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", op.userinfo)
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

func (op *fakeOP) issuer() string { return op.srv.URL }

func (op *fakeOP) set(f func(op *fakeOP)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	f(op)
}

func (op *fakeOP) discovery(w http.ResponseWriter, _ *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	d := map[string]any{
		"issuer":                                         op.issuer(),
		"authorization_endpoint":                         op.issuer() + "/authorize",
		"token_endpoint":                                 op.issuer() + "/token",
		"userinfo_endpoint":                              op.issuer() + "/userinfo",
		"jwks_uri":                                       op.issuer() + "/jwks",
		"response_types_supported":                       []string{"code"},
		"subject_types_supported":                        []string{"pairwise"},
		"id_token_signing_alg_values_supported":          []string{string(op.alg)},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_post"},
		"authorization_response_iss_parameter_supported": op.issRequired,
	}
	if op.pkjwt {
		d["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"}
		d["token_endpoint_auth_signing_alg_values_supported"] = []string{"ES256"}
	}
	if op.par {
		d["pushed_authorization_request_endpoint"] = op.issuer() + "/par"
		d["require_pushed_authorization_requests"] = op.requirePAR
	}
	switch {
	case op.dpopAlgs != nil:
		d["dpop_signing_alg_values_supported"] = op.dpopAlgs
	case op.dpop:
		d["dpop_signing_alg_values_supported"] = []string{"ES256"}
	}
	if op.encrypt {
		d["id_token_encryption_alg_values_supported"] = []string{"ECDH-ES", "RSA-OAEP", "RSA-OAEP-256"}
		d["id_token_encryption_enc_values_supported"] = []string{"A256GCM"}
	}
	if !op.noEndSession {
		d["end_session_endpoint"] = op.issuer() + "/session/end"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}

// authorize logs the citizen in at once and answers with a code.
func (op *fakeOP) authorize(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	q := r.URL.Query()
	op.lastAuthorizeQuery = q
	if uri := q.Get("request_uri"); uri != "" || op.requirePAR {
		pushed, ok := op.requestURIs[uri]
		delete(op.requestURIs, uri)
		if !ok || q.Get("client_id") != pushed.Get("client_id") {
			http.Error(w, "a pushed authorization request is required, and this request_uri is unknown", http.StatusBadRequest)
			return
		}
		q = pushed
	}
	op.lastAuthorize = q
	code := randomString(16)
	op.codes[code] = q
	back := url.Values{"code": {code}, "state": {q.Get("state")}}
	switch {
	case op.wrongISS != "":
		back.Set("iss", op.wrongISS)
	case !op.noISS:
		back.Set("iss", op.issuer())
	}
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusSeeOther)
}

// pushed is the PAR endpoint (RFC 9126 §2): the client authenticates as
// at the token endpoint (the assertion's aud is the issuer), and a DPoP
// proof binds the future code to its key (RFC 9449 §10).
func (op *fakeOP) pushed(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.countDPoP(r)
	_ = r.ParseForm()
	op.parForms = append(op.parForms, r.PostForm)
	a, ok := op.authenticated(r, op.issuer())
	if !ok {
		parError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	op.parAssertions = append(op.parAssertions, a)
	jkt := ""
	if op.dpop {
		p, ok := op.checkProof(w, r, "par", http.MethodPost, "")
		if !ok {
			return
		}
		jkt = p.JKT
	}
	if op.parError != "" {
		parError(w, http.StatusBadRequest, op.parError)
		return
	}
	if r.PostForm.Has("request_uri") || r.PostForm.Get("response_type") != "code" {
		parError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	params := url.Values{}
	for k, v := range r.PostForm {
		if k != "client_assertion" && k != "client_assertion_type" {
			params[k] = v
		}
	}
	params.Set("dpop_jkt", jkt) // RFC 9449 §10's name for the binding
	uri := "urn:ietf:params:oauth:request_uri:" + randomString(16)
	op.requestURIs[uri] = params
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"request_uri": uri, "expires_in": 60})
}

// pushedParams returns the parameters pushed for the request_uri of an
// authorization URL's query, which must hold nothing else but client_id.
func (op *fakeOP) pushedParams(t *testing.T, q url.Values) url.Values {
	t.Helper()
	op.mu.Lock()
	defer op.mu.Unlock()
	if len(q) != 2 || q.Get("client_id") == "" {
		t.Errorf("the authorization URL holds more than client_id and request_uri: %v", q)
	}
	pushed, ok := op.requestURIs[q.Get("request_uri")]
	if !ok {
		t.Errorf("request_uri %q was not pushed", q.Get("request_uri"))
	}
	return pushed
}

func (op *fakeOP) countDPoP(r *http.Request) {
	if r.Header.Get(dpop.HeaderName) != "" {
		op.sawDPoP++
	}
}

func parError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "refused by the fake OP"})
}

// checkProof checks the request's DPoP proof as the broker will: one DPoP
// header, internal/dpop.Verify for this endpoint's method and URL (with
// ath for an access token), a nonce where nonceAt asks for one, and a jti
// never seen before. A refusal is answered here: 400 with an OAuth error
// at PAR and token, 401 with WWW-Authenticate at userinfo, and a fresh
// DPoP-Nonce for use_dpop_nonce.
func (op *fakeOP) checkProof(w http.ResponseWriter, r *http.Request, endpoint, method, accessToken string) (*dpop.Proof, bool) {
	raw, present, err := dpop.FromHeader(r.Header)
	op.proofs[endpoint] = append(op.proofs[endpoint], raw)
	var p *dpop.Proof
	switch {
	case err != nil:
	case !present:
		err = fmt.Errorf("%w: no DPoP header", dpop.ErrInvalidProof)
	default:
		c := dpop.Check{Method: method, URL: op.issuer() + "/" + endpoint, AccessToken: accessToken}
		if op.nonceAt[endpoint] {
			c.Nonce = func(n string) bool { return !op.staleNonce && op.nonces.Valid(n, time.Now()) }
		}
		if p, err = dpop.Verify(raw, c); err == nil && op.dpopJTIs[p.JTI] {
			err = fmt.Errorf("%w: jti replayed", dpop.ErrInvalidProof)
		}
	}
	if err == nil {
		op.dpopJTIs[p.JTI] = true
		return p, true
	}
	code := "invalid_dpop_proof"
	if errors.Is(err, dpop.ErrUseNonce) {
		code = "use_dpop_nonce"
		op.challenges[endpoint]++
		w.Header().Set(dpop.NonceHeader, op.nonces.Issue(time.Now()))
	} else {
		op.proofErr = err
	}
	if endpoint == "userinfo" {
		w.Header().Set("WWW-Authenticate", `DPoP error="`+code+`", algs="ES256"`)
		w.WriteHeader(http.StatusUnauthorized)
	} else {
		tokenError(w, code)
	}
	return nil, false
}

// token redeems a code. The client is authenticated first, then its DPoP
// proof, and only then is the code spent: a use_dpop_nonce answer leaves
// the code usable, but not the assertion, whose jti is spent, so the
// client's second try must come with a new one.
func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.countDPoP(r)
	_ = r.ParseForm()
	op.lastToken = r.PostForm
	a, ok := op.authenticated(r, op.issuer()+"/token")
	if !ok {
		tokenError(w, "invalid_client")
		return
	}
	if op.pkjwt {
		op.assertions = append(op.assertions, a)
	}
	jkt := ""
	if op.dpop {
		p, ok := op.checkProof(w, r, "token", http.MethodPost, "")
		if !ok {
			return
		}
		jkt = p.JKT
	}
	req, ok := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !ok:
		tokenError(w, "invalid_grant")
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != req.Get("code_challenge") || req.Get("code_challenge_method") != "S256":
		tokenError(w, "invalid_grant")
		return
	case req.Has("dpop_jkt") && req.Get("dpop_jkt") != jkt:
		// RFC 9449 §10: a code bound at PAR is redeemed with that key only.
		tokenError(w, "invalid_grant")
		return
	}
	acr, nonce := req.Get("acr_values"), req.Get("nonce")
	if op.acr != "" {
		acr = op.acr
	}
	if op.nonce != "" {
		nonce = op.nonce
	}
	now := time.Now().Unix()
	at := "at-" + randomString(16)
	hashed := at
	if op.badATHash {
		hashed = "another-access-token"
	}
	atHash, err := keys.HalfHash(op.alg, hashed)
	if err != nil {
		op.t.Error(err)
	}
	claims := map[string]any{
		"iss": op.issuer(), "aud": op.client(), "sub": fakeSub, "iat": now, "exp": now + 60,
		"nonce": nonce, "acr": acr, "amr": []string{"pwd"}, "auth_time": now, "at_hash": atHash,
	}
	idt, err := op.signer.SignJWT(op.alg, "", claims)
	if err != nil {
		op.t.Error(err)
	}
	if op.encryptUnsigned {
		raw, _ := json.Marshal(claims)
		idt = string(raw)
	}
	if op.encrypt && !op.plainIDToken {
		idt = op.encryptTo(idt)
	}
	w.Header().Set("Content-Type", "application/json")
	tokenType := "Bearer"
	if jkt != "" && !op.bearerToken {
		tokenType = "DPoP"
	}
	op.tokenJKT[at] = jkt
	resp := map[string]any{
		"access_token": at, "token_type": tokenType, "expires_in": 60, "id_token": idt,
	}
	if op.grantedScope != "" {
		resp["scope"] = op.grantedScope
	}
	_ = json.NewEncoder(w).Encode(resp)
}

// authenticated checks the client at the token or PAR endpoint:
// client_secret_post, or with pkjwt a private_key_jwt assertion for aud
// and nothing else.
func (op *fakeOP) authenticated(r *http.Request, aud string) (assertion, bool) {
	f := r.PostForm
	if f.Get("client_id") != op.client() {
		return assertion{}, false
	}
	if !op.pkjwt {
		return assertion{}, f.Get("client_secret") == "secret"
	}
	if f.Has("client_secret") || r.Header.Get("Authorization") != "" {
		op.assertionErr = errors.New("a secret was sent along with the assertion")
		return assertion{}, false
	}
	if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		op.assertionErr = fmt.Errorf("client_assertion_type %q", f.Get("client_assertion_type"))
		return assertion{}, false
	}
	a, err := op.checkAssertionFor(f.Get("client_assertion"), aud, time.Now())
	if err != nil {
		op.assertionErr = err
		return assertion{}, false
	}
	return a, true
}

// checkAssertion checks an assertion for the token endpoint.
func (op *fakeOP) checkAssertion(raw string, now time.Time) (assertion, error) {
	return op.checkAssertionFor(raw, op.issuer()+"/token", now)
}

// checkAssertionFor is what a broker checks of a private_key_jwt (RFC 7523
// §3, OIDC Core §9): ES256 signature by a key the SP publishes, with its
// kid; iss = sub = client_id; aud = the endpoint's (the token endpoint, or
// the issuer at PAR); a live exp at most 60 s after iat; a jti never seen
// before.
func (op *fakeOP) checkAssertionFor(raw, aud string, now time.Time) (assertion, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return assertion{}, fmt.Errorf("assertion: %w", err)
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return assertion{}, errors.New("assertion has no kid")
	}
	set, err := op.fetchSPKeys()
	if err != nil {
		return assertion{}, err
	}
	ks := set.Key(h.KeyID)
	if len(ks) != 1 || ks[0].Use != "sig" {
		return assertion{}, fmt.Errorf("kid %q is not one signing key of the SP", h.KeyID)
	}
	var c jwt.Claims
	if err := tok.Claims(ks[0].Key, &c); err != nil {
		return assertion{}, fmt.Errorf("assertion signature: %w", err)
	}
	switch {
	case c.Issuer != op.client() || c.Subject != op.client():
		return assertion{}, fmt.Errorf("iss %q sub %q, want both %q", c.Issuer, c.Subject, op.client())
	case len(c.Audience) != 1 || c.Audience[0] != aud:
		return assertion{}, fmt.Errorf("aud %v, want %s", c.Audience, aud)
	case c.Expiry == nil || c.IssuedAt == nil || !now.Before(c.Expiry.Time()):
		return assertion{}, errors.New("assertion without iat or exp, or expired")
	case c.Expiry.Time().Sub(c.IssuedAt.Time()) > time.Minute || c.IssuedAt.Time().After(now.Add(5*time.Second)):
		return assertion{}, errors.New("assertion lives over 60 s or is issued in the future")
	case c.ID == "" || op.jtis[c.ID]:
		return assertion{}, fmt.Errorf("jti %q empty or replayed", c.ID)
	}
	op.jtis[c.ID] = true
	return assertion{Header: h, Claims: c}, nil
}

// fetchSPKeys reads the SP's published keys, as a broker does with jwks_uri.
func (op *fakeOP) fetchSPKeys() (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if op.spJWKS == "" {
		return set, errors.New("the fake OP does not know the SP's jwks_uri")
	}
	resp, err := http.Get(op.spJWKS)
	if err != nil {
		return set, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("SP jwks: %s", resp.Status)
	}
	return set, json.Unmarshal(body, &set)
}

// encryptTo wraps a token in a compact JWE for the SP's key of encAlg (or, to
// misbehave, for a stranger's key or with another alg), as the "+" platform
// does: cty JWT, enc A256GCM.
func (op *fakeOP) encryptTo(payload string) string {
	set, err := op.fetchSPKeys()
	if err != nil {
		op.t.Error(err)
		return payload
	}
	var key *jose.JSONWebKey
	for i, k := range set.Keys {
		if k.Use == "enc" && k.Algorithm == string(op.encAlg) {
			key = &set.Keys[i]
			break
		}
	}
	if key == nil {
		op.t.Errorf("the SP publishes no %s key", op.encAlg)
		return payload
	}
	alg, kid, pub := op.encAlg, key.KeyID, key.Key
	if op.wrongKeyAlg != "" {
		alg = op.wrongKeyAlg
	}
	if op.foreignKey != "" {
		stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			op.t.Fatal(err)
		}
		pub = &stranger.PublicKey
		if op.foreignKey == "kid" {
			kid = "stranger-key"
		}
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: alg, Key: pub, KeyID: kid},
		(&jose.EncrypterOptions{}).WithContentType("JWT").WithType("JWT"))
	if err != nil {
		op.t.Error(err)
		return payload
	}
	obj, err := enc.Encrypt([]byte(payload))
	if err != nil {
		op.t.Error(err)
		return payload
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		op.t.Error(err)
	}
	return out
}

func tokenError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func (op *fakeOP) userinfo(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.countDPoP(r)
	op.userinfoAuth = append(op.userinfoAuth, r.Header.Get("Authorization"))
	if op.dpop {
		// RFC 9449 §7: a DPoP token, under the DPoP scheme, with a proof
		// by the key it is bound to and the hash of the token.
		scheme, at, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		jkt, known := op.tokenJKT[at]
		if !strings.EqualFold(scheme, "DPoP") || !known || jkt == "" {
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		p, ok := op.checkProof(w, r, "userinfo", http.MethodGet, at)
		if !ok {
			return
		}
		if p.JKT != jkt {
			op.proofErr = errors.New("userinfo proof by another key than the token's")
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	sub := fakeSub
	if op.userinfoSub != "" {
		sub = op.userinfoSub
	}
	claims := map[string]any{
		"sub": sub, "given_name": "Angela Claire Louise", "family_name": "DUBOIS",
		"birthdate": "1962-08-24", "gender": "female", "birthplace": "75107", "birthcountry": "99100",
		"email": "angela.dubois@example.fr",
	}
	if op.signUserinfo && !op.jsonUserinfo {
		claims["iss"], claims["aud"] = op.issuer(), op.client()
		if op.userinfoAud != "" {
			claims["aud"] = op.userinfoAud
		}
		if op.userinfoNoISS {
			delete(claims, "iss")
		}
		tok, err := op.signer.SignJWT(op.alg, "", claims)
		if err != nil {
			op.t.Error(err)
		}
		if op.encrypt && !op.plainUserinfo {
			tok = op.encryptTo(tok)
		}
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte(tok))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(claims)
}
