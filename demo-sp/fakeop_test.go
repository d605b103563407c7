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
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

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

	// Recorded from the flow.
	lastAuthorize url.Values
	codes         map[string]url.Values
	lastToken     url.Values  // the last token request's form
	assertions    []assertion // the client assertions received, checked
	assertionErr  error       // why the last refused assertion was refused
	jtis          map[string]bool
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
	op := &fakeOP{t: t, signer: signer, alg: alg, codes: map[string]url.Values{}, jtis: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.Handle("GET /jwks", keys.JWKSHandler(signer))
	mux.HandleFunc("GET /authorize", op.authorize)
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

func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
	_ = r.ParseForm()
	op.lastToken = r.PostForm
	req, ok := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !ok:
		tokenError(w, "invalid_grant")
		return
	case !op.authenticated(r):
		tokenError(w, "invalid_client")
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != req.Get("code_challenge") || req.Get("code_challenge_method") != "S256":
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
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": at, "token_type": "Bearer", "expires_in": 60, "id_token": idt,
	})
}

// authenticated checks the client at the token endpoint: client_secret_post,
// or with pkjwt a private_key_jwt assertion and nothing else.
func (op *fakeOP) authenticated(r *http.Request) bool {
	f := r.PostForm
	if f.Get("client_id") != op.client() {
		return false
	}
	if !op.pkjwt {
		return f.Get("client_secret") == "secret"
	}
	if f.Has("client_secret") || r.Header.Get("Authorization") != "" {
		op.assertionErr = errors.New("a secret was sent along with the assertion")
		return false
	}
	if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		op.assertionErr = fmt.Errorf("client_assertion_type %q", f.Get("client_assertion_type"))
		return false
	}
	a, err := op.checkAssertion(f.Get("client_assertion"), time.Now())
	if err != nil {
		op.assertionErr = err
		return false
	}
	op.assertions = append(op.assertions, a)
	return true
}

// checkAssertion is what a broker checks of a private_key_jwt (RFC 7523 §3,
// OIDC Core §9): ES256 signature by a key the SP publishes, with its kid;
// iss = sub = client_id; aud = the token endpoint; a live exp at most 60 s
// after iat; a jti never seen before.
func (op *fakeOP) checkAssertion(raw string, now time.Time) (assertion, error) {
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
	case len(c.Audience) != 1 || c.Audience[0] != op.issuer()+"/token":
		return assertion{}, fmt.Errorf("aud %v, want the token endpoint", c.Audience)
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

func (op *fakeOP) userinfo(w http.ResponseWriter, _ *http.Request) {
	op.mu.Lock()
	defer op.mu.Unlock()
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
