package demosp

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

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
	// Recorded from the flow.
	lastAuthorize url.Values
	codes         map[string]url.Values
}

const fakeSub = "3f6a2c1b9d8e7f60"

func newFakeOP(t *testing.T, alg jose.SignatureAlgorithm) *fakeOP {
	t.Helper()
	signer, err := keys.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{t: t, signer: signer, alg: alg, codes: map[string]url.Values{}}
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
	req, ok := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !ok:
		tokenError(w, "invalid_grant")
		return
	case r.PostForm.Get("client_id") != "demo-sp" || r.PostForm.Get("client_secret") != "secret":
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
	idt, err := op.signer.SignJWT(op.alg, "", map[string]any{
		"iss": op.issuer(), "aud": "demo-sp", "sub": fakeSub, "iat": now, "exp": now + 60,
		"nonce": nonce, "acr": acr, "amr": []string{"pwd"}, "auth_time": now, "at_hash": atHash,
	})
	if err != nil {
		op.t.Error(err)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": at, "token_type": "Bearer", "expires_in": 60, "id_token": idt,
	})
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
	if op.signUserinfo {
		claims["iss"], claims["aud"] = op.issuer(), "demo-sp"
		if op.userinfoAud != "" {
			claims["aud"] = op.userinfoAud
		}
		jwt, err := op.signer.SignJWT(op.alg, "", claims)
		if err != nil {
			op.t.Error(err)
		}
		w.Header().Set("Content-Type", "application/jwt")
		_, _ = w.Write([]byte(jwt))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(claims)
}
