package upstream_test

// These tests put the upstream package in front of a hostile identity
// provider: a real HTTP server with real discovery, a real JWKS and tokens
// with real signatures. Each test turns on one fault; nothing in the code
// under test is stubbed.

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/broker/upstream"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/keys"
)

const (
	clientID     = "sesame-broker"
	clientSecret = "s3cret"
	redirectURL  = "https://broker.example/idp/callback"
	postLogout   = "https://broker.example/idp/logged-out"
	leeway       = 30 * time.Second

	code        = "code-5f0c1e"
	verifier    = "pkce-verifier-0123456789abcdefghijklmnopqrstuvwxyz"
	nonce       = "nonce-8d3a"
	accessToken = "at-2b9e77"
	subject     = "citizen-42"
)

// Keys are made once: RSA generation is the slowest part of these tests.
var (
	idpKeys      = sync.OnceValue(func() *keys.Set { return mustKeys(jose.ES256, jose.RS256) })
	attackerKeys = sync.OnceValue(func() *keys.Set { return mustKeys(jose.ES256, jose.RS256) })
)

func mustKeys(algs ...jose.SignatureAlgorithm) *keys.Set {
	s, err := keys.Generate(algs...)
	if err != nil {
		panic(err)
	}
	return s
}

// hostileIdP is an OIDC provider that behaves until a test sets a fault.
type hostileIdP struct {
	srv    *httptest.Server
	issuer string

	// Discovery.
	algs            []string // id_token_signing_alg_values_supported
	issParam        bool     // authorization_response_iss_parameter_supported
	endSession      bool     // advertise end_session_endpoint
	discoveryIssuer string   // issuer named by discovery; default its own URL

	// The token response: an id_token minted from claims at the token call,
	// or idToken verbatim when set.
	claims  map[string]any
	idToken string

	// Faults; a test sets one.
	tokenStatus      int               // token endpoint answers this status…
	tokenBody        string            // …with this body
	tokenHang        time.Duration     // token endpoint answers only after this
	tokenRedirect    string            // token endpoint answers 307 to this path
	noIDToken        bool              // token response without id_token
	userinfoSub      string            // userinfo names this sub
	userinfoStatus   int               // userinfo answers this status…
	userinfoType     string            // …this Content-Type…
	userinfoBody     string            // …and this body instead of the identity
	userinfoSize     int               // valid userinfo JSON padded to this size
	userinfoDrip     bool              // userinfo drips one byte every 50 ms
	userinfoRedirect string            // userinfo answers 302 to this path
	jwksDown         atomic.Bool       // jwks_uri answers 503
	jwksExtra        []jose.JSONWebKey // also published at jwks_uri

	mu      sync.Mutex
	keys    *keys.Set // published at jwks_uri
	hits    map[string]int
	gotForm url.Values // the last token request
}

// newHostileIdP starts a well-behaved IdP; tests then set one fault.
func newHostileIdP(t *testing.T) *hostileIdP {
	t.Helper()
	h := newStoppedIdP(t)
	h.srv.Start()
	return h
}

// newStoppedIdP prepares an IdP whose address is known but which does not
// listen yet.
func newStoppedIdP(t *testing.T) *hostileIdP {
	t.Helper()
	h := &hostileIdP{
		algs: []string{"ES256", "RS256"},
		keys: idpKeys(),
		hits: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", h.discovery)
	mux.HandleFunc("GET /jwks", h.jwks)
	mux.HandleFunc("GET /attacker/jwks", h.attackerJWKS)
	mux.HandleFunc("/attacker/", func(w http.ResponseWriter, r *http.Request) {
		h.hit("attacker")
		writeJSON(w, http.StatusOK, map[string]any{"access_token": "x", "token_type": "Bearer", "sub": subject})
	})
	mux.HandleFunc("POST /token", h.token)
	mux.HandleFunc("GET /userinfo", h.userinfo)
	h.srv = httptest.NewUnstartedServer(mux)
	h.issuer = "http://" + h.srv.Listener.Addr().String()
	t.Cleanup(h.srv.Close)

	now := time.Now()
	h.claims = map[string]any{
		"iss":       h.issuer,
		"aud":       clientID,
		"sub":       subject,
		"nonce":     nonce,
		"iat":       now.Unix(),
		"exp":       now.Add(5 * time.Minute).Unix(),
		"auth_time": now.Add(-20 * time.Second).Unix(),
		"acr":       "eidas2",
		"amr":       []string{"pwd", "otp"},
		"at_hash":   halfHash(jose.ES256, accessToken),
	}
	return h
}

// provider is the code under test, pointed at this IdP.
func (h *hostileIdP) provider(timeout time.Duration) *upstream.Provider {
	return upstream.New(config.IdP{
		ID:           "hostile",
		Issuer:       h.issuer,
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Scopes:       []string{"openid", "profile", "email"},
		Timeout:      config.Duration(timeout),
	}, redirectURL, postLogout, leeway)
}

// login runs a whole code exchange against the IdP.
func (h *hostileIdP) login(t *testing.T) (*upstream.Result, error) {
	t.Helper()
	return h.provider(2*time.Second).Exchange(context.Background(), code, verifier, nonce)
}

func (h *hostileIdP) hit(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hits[name]++
}

func (h *hostileIdP) count(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[name]
}

func (h *hostileIdP) setKeys(s *keys.Set) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys = s
}

func (h *hostileIdP) discovery(w http.ResponseWriter, r *http.Request) {
	h.hit("discovery")
	iss := h.discoveryIssuer
	if iss == "" {
		iss = h.issuer
	}
	d := map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                h.issuer + "/authorize",
		"token_endpoint":                        h.issuer + "/token",
		"userinfo_endpoint":                     h.issuer + "/userinfo",
		"jwks_uri":                              h.issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": h.algs,
		"authorization_response_iss_parameter_supported": h.issParam,
	}
	if h.endSession {
		d["end_session_endpoint"] = h.issuer + "/logout"
	}
	writeJSON(w, http.StatusOK, d)
}

func (h *hostileIdP) jwks(w http.ResponseWriter, r *http.Request) {
	h.hit("jwks")
	if h.jwksDown.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	h.mu.Lock()
	set := h.keys.PublicJWKS()
	h.mu.Unlock()
	set.Keys = append(set.Keys, h.jwksExtra...)
	writeJSON(w, http.StatusOK, set)
}

// attackerJWKS is what a jku or x5u header points at; the broker must never
// fetch it.
func (h *hostileIdP) attackerJWKS(w http.ResponseWriter, r *http.Request) {
	h.hit("attacker")
	writeJSON(w, http.StatusOK, attackerKeys().PublicJWKS())
}

func (h *hostileIdP) token(w http.ResponseWriter, r *http.Request) {
	h.hit("token")
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	h.mu.Lock()
	h.gotForm = r.PostForm
	h.mu.Unlock()
	if h.tokenHang > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(h.tokenHang):
		}
	}
	if h.tokenRedirect != "" {
		http.Redirect(w, r, h.issuer+h.tokenRedirect, http.StatusTemporaryRedirect)
		return
	}
	if h.tokenStatus != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(h.tokenStatus)
		_, _ = io.WriteString(w, h.tokenBody)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != clientID || secret != clientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "authorization_code" || f.Get("code") != code ||
		f.Get("code_verifier") != verifier || f.Get("redirect_uri") != redirectURL {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	resp := map[string]any{"access_token": accessToken, "token_type": "Bearer", "expires_in": 60}
	if !h.noIDToken {
		resp["id_token"] = h.idToken
		if h.idToken == "" {
			resp["id_token"] = h.mint(h.claims, mintOpts{})
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// identity is what the userinfo endpoint says of the citizen.
func (h *hostileIdP) identity() map[string]any {
	sub := subject
	if h.userinfoSub != "" {
		sub = h.userinfoSub
	}
	return map[string]any{
		"sub": sub, "given_name": "Angela Claire Louise", "family_name": "DUBOIS",
		"birthdate": "1962-08-24", "gender": "female", "birthplace": "75107",
		"birthcountry": "99100", "email": "angela@example.fr",
	}
}

func (h *hostileIdP) userinfo(w http.ResponseWriter, r *http.Request) {
	h.hit("userinfo")
	if r.Header.Get("Authorization") != "Bearer "+accessToken {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch {
	case h.userinfoRedirect != "":
		http.Redirect(w, r, h.issuer+h.userinfoRedirect, http.StatusFound)
	case h.userinfoDrip:
		w.Header().Set("Content-Type", "application/json")
		for {
			if _, err := io.WriteString(w, " "); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	case h.userinfoSize > 0:
		// Valid JSON with the right sub: only the size is wrong, so a
		// broker without a cap would accept it.
		w.Header().Set("Content-Type", "application/json")
		head, _ := json.Marshal(h.identity())
		_, _ = w.Write(head[:len(head)-1])
		_, _ = io.WriteString(w, `,"pad":"`)
		chunk := []byte(strings.Repeat("a", 64<<10))
		for n := len(head) + 9; n < h.userinfoSize; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `"}`)
	case h.userinfoBody != "" || h.userinfoStatus != 0:
		ct := h.userinfoType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(orDefault(h.userinfoStatus, http.StatusOK))
		_, _ = io.WriteString(w, h.userinfoBody)
	default:
		writeJSON(w, http.StatusOK, h.identity())
	}
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// mintOpts bends how a token is signed; the zero value signs with the
// IdP's published ES256 key and its kid.
type mintOpts struct {
	alg      jose.SignatureAlgorithm // default ES256
	signer   *keys.Set               // default the IdP's published keys
	kid      string                  // default the signing key's kid
	headers  map[jose.HeaderKey]any  // extra JOSE headers (jku, x5u…)
	embedJWK bool                    // embed the signing key as a jwk header
	hmacKey  []byte                  // sign HS256 with these bytes
}

// mint signs claims as a compact JWS with a real signature.
func (h *hostileIdP) mint(claims map[string]any, o mintOpts) string {
	if o.alg == "" {
		o.alg = jose.ES256
	}
	if o.signer == nil {
		h.mu.Lock()
		o.signer = h.keys
		h.mu.Unlock()
	}
	var key any
	kid := o.kid
	if o.hmacKey != nil {
		key = o.hmacKey
	} else {
		for _, k := range o.signer.PrivateJWKS().Keys {
			if k.Algorithm == string(o.alg) {
				key = k.Key
				if kid == "" {
					kid = k.KeyID
				}
				break
			}
		}
	}
	opts := (&jose.SignerOptions{EmbedJWK: o.embedJWK}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	for k, v := range o.headers {
		opts = opts.WithHeader(k, v)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: o.alg, Key: key}, opts)
	if err != nil {
		panic(err)
	}
	out, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		panic(err)
	}
	return out
}

// unsigned builds an alg "none" token, which go-jose refuses to make.
func unsigned(claims map[string]any, kid string) string {
	head, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	body, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(head) + "." + enc(body) + "."
}

func halfHash(alg jose.SignatureAlgorithm, v string) string {
	s, err := keys.HalfHash(alg, v)
	if err != nil {
		panic(err)
	}
	return s
}

func publishedKey(alg jose.SignatureAlgorithm) jose.JSONWebKey {
	for _, k := range idpKeys().PublicJWKS().Keys {
		if k.Algorithm == string(alg) {
			return k
		}
	}
	panic("no key for " + alg)
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// --- Exchange -------------------------------------------------------------

func TestExchangeBaseline(t *testing.T) {
	t.Parallel()
	h := newHostileIdP(t)
	res, err := h.login(t)
	if err != nil {
		t.Fatalf("a correct IdP must pass: %v", err)
	}
	if res.Subject != subject || res.ACR != "eidas2" || strings.Join(res.AMR, ",") != "pwd,otp" {
		t.Errorf("claims: sub %q acr %q amr %v", res.Subject, res.ACR, res.AMR)
	}
	if want := time.Unix(h.claims["auth_time"].(int64), 0).UTC(); !res.AuthTime.Equal(want) {
		t.Errorf("auth_time %v, want %v", res.AuthTime, want)
	}
	id := res.Identity
	if id.GivenName != "Angela Claire Louise" || id.FamilyName != "DUBOIS" || id.Birthdate != "1962-08-24" ||
		id.Gender != "female" || id.Birthplace != "75107" || id.Birthcountry != "99100" || id.Email != "angela@example.fr" {
		t.Errorf("identity %+v", id)
	}
	if err := id.Validate(); err != nil {
		t.Errorf("identity does not validate: %v", err)
	}
	if res.IDToken == "" || strings.Count(res.IDToken, ".") != 2 {
		t.Errorf("IDToken %q", res.IDToken)
	}
	// The broker sent the trip's PKCE verifier and redirect_uri.
	h.mu.Lock()
	form := h.gotForm
	h.mu.Unlock()
	if form.Get("code_verifier") != verifier || form.Get("redirect_uri") != redirectURL {
		t.Errorf("token request %v", form)
	}
	if h.count("userinfo") != 1 {
		t.Errorf("userinfo called %d times, want 1", h.count("userinfo"))
	}
}

// Variants a correct broker must accept: they pin down that the rejections
// below come from the fault, not from strictness.
func TestExchangeAcceptsLegitimateVariants(t *testing.T) {
	t.Parallel()
	cases := map[string]func(h *hostileIdP){
		"RS256 token": func(h *hostileIdP) {
			h.idToken = h.mint(h.claims, mintOpts{alg: jose.RS256})
		},
		"aud as a one-element array, azp us": func(h *hostileIdP) {
			h.claims["aud"] = []string{clientID}
			h.claims["azp"] = clientID
		},
		"iat in the future within leeway": func(h *hostileIdP) {
			h.claims["iat"] = time.Now().Add(leeway / 2).Unix()
		},
		"expired within leeway": func(h *hostileIdP) {
			h.claims["exp"] = time.Now().Add(-leeway / 2).Unix()
		},
		"no at_hash": func(h *hostileIdP) { delete(h.claims, "at_hash") },
		"255-character sub": func(h *hostileIdP) {
			h.claims["sub"] = strings.Repeat("s", 255)
			h.userinfoSub = strings.Repeat("s", 255)
		},
		"signed userinfo with right iss and aud": func(h *hostileIdP) {
			c := h.identity()
			c["iss"], c["aud"] = h.issuer, clientID
			h.userinfoType, h.userinfoBody = "application/jwt", h.mint(c, mintOpts{})
		},
	}
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHostileIdP(t)
			set(h)
			if _, err := h.login(t); err != nil {
				t.Fatalf("want success, got %v", err)
			}
		})
	}
}

func TestExchangeRejectsForgedSignatures(t *testing.T) {
	t.Parallel()
	es := publishedKey(jose.ES256)
	pubDER, err := x509.MarshalPKIXPublicKey(es.Key)
	if err != nil {
		t.Fatal(err)
	}
	pubJSON, err := es.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(h *hostileIdP){
		"alg none": func(h *hostileIdP) {
			h.algs = []string{"none", "ES256"} // even when the IdP advertises it
			h.idToken = unsigned(h.claims, es.KeyID)
		},
		"HS256 keyed with the public key (DER)": func(h *hostileIdP) {
			h.algs = []string{"HS256", "ES256"}
			h.idToken = h.mint(h.claims, mintOpts{alg: jose.HS256, kid: es.KeyID, hmacKey: pubDER})
		},
		"HS256 keyed with the public JWK": func(h *hostileIdP) {
			h.algs = []string{"HS256", "ES256"}
			h.idToken = h.mint(h.claims, mintOpts{alg: jose.HS256, kid: es.KeyID, hmacKey: pubJSON})
		},
		// A symmetric key in a public JWKS lets anyone forge tokens. With
		// no alg member, go-oidc loads it: only our alg list stops HS256.
		"HS256 with a symmetric key the JWKS publishes": func(h *hostileIdP) {
			secret := []byte("0123456789abcdef0123456789abcdef")
			h.algs = []string{"HS256", "ES256"}
			h.jwksExtra = []jose.JSONWebKey{{Key: secret, KeyID: "oct-1", Use: "sig"}}
			delete(h.claims, "at_hash") // optional, and it would trip on HS256
			h.idToken = h.mint(h.claims, mintOpts{alg: jose.HS256, kid: "oct-1", hmacKey: secret})
		},
		"signed by an unpublished key": func(h *hostileIdP) {
			h.idToken = h.mint(h.claims, mintOpts{signer: attackerKeys()})
		},
		"unpublished key under a published kid": func(h *hostileIdP) {
			h.idToken = h.mint(h.claims, mintOpts{signer: attackerKeys(), kid: es.KeyID})
		},
		"kid ../../x": func(h *hostileIdP) {
			h.idToken = h.mint(h.claims, mintOpts{kid: "../../x"})
		},
		"jku to the attacker's JWKS": func(h *hostileIdP) {
			h.idToken = h.mint(h.claims, mintOpts{signer: attackerKeys(),
				headers: map[jose.HeaderKey]any{"jku": h.issuer + "/attacker/jwks"}})
		},
		"x5u to the attacker's key": func(h *hostileIdP) {
			h.idToken = h.mint(h.claims, mintOpts{signer: attackerKeys(),
				headers: map[jose.HeaderKey]any{"x5u": h.issuer + "/attacker/jwks"}})
		},
		"embedded jwk of the attacker": func(h *hostileIdP) {
			h.idToken = h.mint(h.claims, mintOpts{signer: attackerKeys(), kid: "-", embedJWK: true})
		},
		"embedded jwk under a published kid": func(h *hostileIdP) {
			h.idToken = h.mint(h.claims, mintOpts{signer: attackerKeys(), kid: es.KeyID, embedJWK: true})
		},
		"RS256 when discovery advertises only ES256": func(h *hostileIdP) {
			h.algs = []string{"ES256"}
			h.idToken = h.mint(h.claims, mintOpts{alg: jose.RS256})
		},
		"tampered payload": func(h *hostileIdP) {
			tok := h.mint(h.claims, mintOpts{})
			parts := strings.Split(tok, ".")
			c := maps.Clone(h.claims)
			c["sub"] = "someone-else"
			body, _ := json.Marshal(c)
			h.idToken = parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2]
		},
	}
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHostileIdP(t)
			set(h)
			_, err := h.login(t)
			wantErr(t, err, upstream.ErrRejected)
			t.Log(err)
			if n := h.count("attacker"); n != 0 {
				t.Errorf("the broker fetched the attacker's key set %d times", n)
			}
		})
	}
}

func TestExchangeRejectsBadClaims(t *testing.T) {
	t.Parallel()
	now := time.Now()
	cases := map[string]func(h *hostileIdP){
		"wrong iss":               func(h *hostileIdP) { h.claims["iss"] = "https://other-idp.example" },
		"iss with trailing slash": func(h *hostileIdP) { h.claims["iss"] = h.issuer + "/" },
		"wrong aud":               func(h *hostileIdP) { h.claims["aud"] = "another-client" },
		"no aud":                  func(h *hostileIdP) { delete(h.claims, "aud") },
		"aud us and a stranger, no azp": func(h *hostileIdP) {
			h.claims["aud"] = []string{clientID, "stranger"}
		},
		"aud us and a stranger, azp stranger": func(h *hostileIdP) {
			h.claims["aud"] = []string{clientID, "stranger"}
			h.claims["azp"] = "stranger"
		},
		// Core 3.1.3.7 step 3: reject additional audiences the client does
		// not trust; the broker trusts none. azp naming us does not make
		// the stranger trusted.
		"aud us and a stranger, azp us": func(h *hostileIdP) {
			h.claims["aud"] = []string{clientID, "stranger"}
			h.claims["azp"] = clientID
		},
		"aud us, azp a stranger": func(h *hostileIdP) { h.claims["azp"] = "stranger" },
		"expired beyond leeway": func(h *hostileIdP) {
			h.claims["exp"] = now.Add(-leeway - time.Minute).Unix()
		},
		"no exp": func(h *hostileIdP) { delete(h.claims, "exp") },
		"no iat": func(h *hostileIdP) { delete(h.claims, "iat") },
		"iat in the future beyond leeway": func(h *hostileIdP) {
			h.claims["iat"] = now.Add(leeway + time.Minute).Unix()
		},
		"wrong nonce": func(h *hostileIdP) { h.claims["nonce"] = "nonce-of-another-trip" },
		"no nonce":    func(h *hostileIdP) { delete(h.claims, "nonce") },
		"missing sub": func(h *hostileIdP) { delete(h.claims, "sub") },
		"300-character sub": func(h *hostileIdP) {
			h.claims["sub"] = strings.Repeat("s", 300)
			h.userinfoSub = strings.Repeat("s", 300)
		},
		"bad at_hash": func(h *hostileIdP) { h.claims["at_hash"] = halfHash(jose.ES256, "another-access-token") },
	}
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHostileIdP(t)
			set(h)
			_, err := h.login(t)
			wantErr(t, err, upstream.ErrRejected)
			t.Log(err)
		})
	}
}

func TestExchangeUserinfoFaults(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		set  func(h *hostileIdP)
		want error
	}{
		"sub differs": {func(h *hostileIdP) { h.userinfoSub = "citizen-43" }, upstream.ErrRejected},
		"no sub":      {func(h *hostileIdP) { h.userinfoBody = `{"given_name":"Angela"}` }, upstream.ErrRejected},
		"500": {func(h *hostileIdP) {
			h.userinfoStatus, h.userinfoBody = http.StatusInternalServerError, "oops"
		}, upstream.ErrUnavailable},
		"HTML": {func(h *hostileIdP) {
			h.userinfoType, h.userinfoBody = "text/html", "<!doctype html><title>Maintenance</title>"
		}, upstream.ErrUnavailable},
		"invalid JSON": {func(h *hostileIdP) {
			h.userinfoBody = `{"sub":"` + subject + `","given_name":`
		}, upstream.ErrUnavailable},
		"drips bytes": {func(h *hostileIdP) { h.userinfoDrip = true }, upstream.ErrUnavailable},
		// Following it would hand the access token on.
		"302 elsewhere": {func(h *hostileIdP) { h.userinfoRedirect = "/attacker/userinfo" }, upstream.ErrUnavailable},
		// Core 5.3.2: a signed userinfo names the OP and the RP; go-oidc
		// checks only the signature.
		"signed, wrong iss": {func(h *hostileIdP) {
			c := h.identity()
			c["iss"], c["aud"] = "https://other-idp.example", clientID
			h.userinfoType, h.userinfoBody = "application/jwt", h.mint(c, mintOpts{})
		}, upstream.ErrRejected},
		"signed, wrong aud": {func(h *hostileIdP) {
			c := h.identity()
			c["iss"], c["aud"] = h.issuer, "another-client"
			h.userinfoType, h.userinfoBody = "application/jwt", h.mint(c, mintOpts{})
		}, upstream.ErrRejected},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHostileIdP(t)
			tc.set(h)
			p := h.provider(300 * time.Millisecond)
			start := time.Now()
			_, err := p.Exchange(context.Background(), code, verifier, nonce)
			wantErr(t, err, tc.want)
			t.Log(err)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			if h.count("attacker") != 0 {
				t.Error("the broker followed userinfo's redirect")
			}
		})
	}

	t.Run("signed by an unpublished key", func(t *testing.T) {
		t.Parallel()
		h := newHostileIdP(t)
		c := h.identity()
		c["iss"], c["aud"] = h.issuer, clientID
		h.userinfoType, h.userinfoBody = "application/jwt", h.mint(c, mintOpts{signer: attackerKeys()})
		if _, err := h.login(t); !errors.Is(err, upstream.ErrRejected) && !errors.Is(err, upstream.ErrUnavailable) {
			t.Fatalf("forged userinfo: got %v", err)
		}
	})
}

// Not parallel, so that the allocation count is this test's alone.
func TestExchangeUserinfoOverOneMiB(t *testing.T) {
	h := newHostileIdP(t)
	h.userinfoSize = 32 << 20
	p := h.provider(2 * time.Second)
	// Discovery first, so the count is the exchange's alone.
	if err := p.CheckIssuer(context.Background(), h.issuer); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := p.Exchange(context.Background(), code, verifier, nonce)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	wantErr(t, err, upstream.ErrUnavailable)
	if elapsed > time.Second {
		t.Errorf("a 32 MiB body took %v to refuse", elapsed)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 12<<20 {
		t.Errorf("refusing a 32 MiB body allocated %d MiB", alloc>>20)
	}
}

func TestExchangeTokenEndpointFaults(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		set  func(h *hostileIdP)
		want error
	}{
		"500": {func(h *hostileIdP) {
			h.tokenStatus, h.tokenBody = http.StatusInternalServerError, `{"error":"server_error"}`
		}, upstream.ErrUnavailable},
		"503 HTML": {func(h *hostileIdP) {
			h.tokenStatus, h.tokenBody = http.StatusServiceUnavailable, "<html>down</html>"
		}, upstream.ErrUnavailable},
		"400 invalid_grant": {func(h *hostileIdP) {
			h.tokenStatus, h.tokenBody = http.StatusBadRequest, `{"error":"invalid_grant"}`
		}, upstream.ErrRejected},
		"no id_token":        {func(h *hostileIdP) { h.noIDToken = true }, upstream.ErrRejected},
		"id_token not a JWT": {func(h *hostileIdP) { h.idToken = "not-a-jwt" }, upstream.ErrRejected},
		// Following it would re-POST the code, verifier and client secret.
		"307 elsewhere": {func(h *hostileIdP) { h.tokenRedirect = "/attacker/token" }, upstream.ErrRejected},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHostileIdP(t)
			tc.set(h)
			_, err := h.login(t)
			wantErr(t, err, tc.want)
			t.Log(err)
			if h.count("userinfo") != 0 {
				t.Error("userinfo was called after a failed token call")
			}
			if h.count("attacker") != 0 {
				t.Error("the broker followed the token endpoint's redirect")
			}
		})
	}

	t.Run("hangs longer than the IdP timeout", func(t *testing.T) {
		t.Parallel()
		h := newHostileIdP(t)
		h.tokenHang = 5 * time.Second
		p := h.provider(300 * time.Millisecond)
		// Discovery first, so the measure is the token call's alone.
		if _, err := p.AuthCodeURL(context.Background(), "s", "n", verifier, "eidas1"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := p.Exchange(context.Background(), code, verifier, nonce)
		wantErr(t, err, upstream.ErrUnavailable)
		if d := time.Since(start); d > time.Second {
			t.Errorf("a hanging token endpoint held the login %v", d)
		}
		// One call only: a retry (x/oauth2's auth-style probing) would
		// spend the single-use code and turn an outage into a rejection.
		if n := h.count("token"); n != 1 {
			t.Errorf("the token endpoint was called %d times", n)
		}
	})
}

// The IdP rotates: the new key costs exactly one JWKS refetch.
func TestExchangeKeyRotation(t *testing.T) {
	t.Parallel()
	h := newHostileIdP(t)
	p := h.provider(2 * time.Second)
	if _, err := p.Exchange(context.Background(), code, verifier, nonce); err != nil {
		t.Fatal(err)
	}
	before := h.count("jwks")
	h.setKeys(mustKeys(jose.ES256))
	if _, err := p.Exchange(context.Background(), code, verifier, nonce); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := h.count("jwks") - before; n != 1 {
		t.Errorf("rotation cost %d JWKS fetches, want 1", n)
	}
}

// A JWKS that is down fails the login; the next login, once it is back,
// works without a restart.
func TestExchangeJWKSDownThenBack(t *testing.T) {
	t.Parallel()
	h := newHostileIdP(t)
	h.jwksDown.Store(true)
	p := h.provider(2 * time.Second)
	_, err := p.Exchange(context.Background(), code, verifier, nonce)
	// An outage, not a forgery: the citizen is offered another IdP.
	if !errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, upstream.ErrRejected) {
		t.Fatalf("JWKS down: got %v, want ErrUnavailable", err)
	}
	h.jwksDown.Store(false)
	if _, err := p.Exchange(context.Background(), code, verifier, nonce); err != nil {
		t.Fatalf("JWKS back: %v", err)
	}
}

// --- Discovery ------------------------------------------------------------

func TestDiscoveryDeadAtStartThenRecovers(t *testing.T) {
	t.Parallel()
	h := newStoppedIdP(t)
	addr := h.srv.Listener.Addr().String()
	h.srv.Listener.Close() // nothing listens: connection refused
	p := h.provider(2 * time.Second)
	ctx := context.Background()

	failedAt := time.Now()
	_, err := p.AuthCodeURL(ctx, "s", "n", verifier, "eidas1")
	wantErr(t, err, upstream.ErrUnavailable)
	if _, ok := p.EndSessionURL(ctx, "hint", "s"); ok {
		t.Error("EndSessionURL with a dead IdP")
	}

	// The IdP comes up on its address.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not listen again on %s: %v", addr, err)
	}
	h.srv.Listener = l
	h.srv.Start()

	// Within the backoff the broker does not even try.
	_, err = p.AuthCodeURL(ctx, "s", "n", verifier, "eidas1")
	wantErr(t, err, upstream.ErrUnavailable)
	if n := h.count("discovery"); n != 0 {
		t.Errorf("discovery retried %d times within the backoff", n)
	}

	// After it, the same Provider recovers.
	for {
		_, err = p.AuthCodeURL(ctx, "s", "n", verifier, "eidas1")
		if err == nil || time.Since(failedAt) > 3*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no recovery 3 s after the IdP came up: %v", err)
	}
	if d := time.Since(failedAt); d < 900*time.Millisecond {
		t.Errorf("recovered after %v, before the 1 s backoff", d)
	}
	if _, err := p.Exchange(ctx, code, verifier, nonce); err != nil {
		t.Fatalf("login after recovery: %v", err)
	}
}

func TestDiscoveryNamingAnotherIssuer(t *testing.T) {
	t.Parallel()
	h := newHostileIdP(t)
	h.discoveryIssuer = "https://other-idp.example"
	_, err := h.provider(2*time.Second).AuthCodeURL(context.Background(), "s", "n", verifier, "eidas1")
	wantErr(t, err, upstream.ErrUnavailable)
}

// --- CheckIssuer (RFC 9207) -----------------------------------------------

func TestCheckIssuer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		advertised bool
		iss        func(h *hostileIdP) string
		want       error
	}{
		{"missing while advertised", true, func(*hostileIdP) string { return "" }, upstream.ErrRejected},
		{"another IdP's", true, func(*hostileIdP) string { return "https://other-idp.example" }, upstream.ErrRejected},
		{"another IdP's, not advertised", false, func(*hostileIdP) string { return "https://other-idp.example" }, upstream.ErrRejected},
		{"ours with a trailing slash", true, func(h *hostileIdP) string { return h.issuer + "/" }, upstream.ErrRejected},
		{"missing, not advertised", false, func(*hostileIdP) string { return "" }, nil},
		{"right", true, func(h *hostileIdP) string { return h.issuer }, nil},
		{"right, not advertised", false, func(h *hostileIdP) string { return h.issuer }, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHostileIdP(t)
			h.issParam = tc.advertised
			err := h.provider(2*time.Second).CheckIssuer(context.Background(), tc.iss(h))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want ok, got %v", err)
				}
				return
			}
			wantErr(t, err, tc.want)
		})
	}
}

// --- AuthCodeURL and EndSessionURL ----------------------------------------

func TestAuthCodeURL(t *testing.T) {
	t.Parallel()
	h := newHostileIdP(t)
	raw, err := h.provider(2*time.Second).AuthCodeURL(context.Background(), "state-1", "nonce-1", verifier, "eidas2")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != h.issuer+"/authorize" {
		t.Errorf("endpoint %s", got)
	}
	sum := sha256.Sum256([]byte(verifier))
	q := u.Query()
	want := map[string]string{
		"response_type":         "code",
		"client_id":             clientID,
		"redirect_uri":          redirectURL,
		"state":                 "state-1",
		"nonce":                 "nonce-1",
		"code_challenge":        base64.RawURLEncoding.EncodeToString(sum[:]),
		"code_challenge_method": "S256",
		"acr_values":            "eidas2",
		"prompt":                "login",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if !strings.Contains(" "+q.Get("scope")+" ", " openid ") {
		t.Errorf("scope %q lacks openid", q.Get("scope"))
	}
	if strings.Contains(raw, verifier) || q.Has("code_verifier") {
		t.Error("the PKCE verifier leaked into the front channel")
	}
}

func TestEndSessionURL(t *testing.T) {
	t.Parallel()
	t.Run("advertised", func(t *testing.T) {
		t.Parallel()
		h := newHostileIdP(t)
		h.endSession = true
		raw, ok := h.provider(2*time.Second).EndSessionURL(context.Background(), "the-id-token", "state-9")
		if !ok {
			t.Fatal("no end_session URL although discovery has one")
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if got := u.Scheme + "://" + u.Host + u.Path; got != h.issuer+"/logout" {
			t.Errorf("endpoint %s", got)
		}
		if q.Get("id_token_hint") != "the-id-token" || q.Get("post_logout_redirect_uri") != postLogout || q.Get("state") != "state-9" {
			t.Errorf("query %v", q)
		}
	})
	t.Run("not advertised", func(t *testing.T) {
		t.Parallel()
		h := newHostileIdP(t)
		if raw, ok := h.provider(2*time.Second).EndSessionURL(context.Background(), "the-id-token", "state-9"); ok || raw != "" {
			t.Fatalf("got %q, %v without end_session_endpoint", raw, ok)
		}
	})
}

// Logins in parallel at one IdP reuse their connections: the broker's
// pool keeps more idle connections per IdP than http.DefaultTransport's 2,
// which made every exchange beyond two in flight open a connection and
// close it after.
func TestExchangeReusesConnections(t *testing.T) {
	t.Parallel()
	h := newStoppedIdP(t)
	var opened atomic.Int32
	h.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	h.srv.Start()
	p := h.provider(5 * time.Second)
	const parallel, rounds = 8, 5
	for range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, parallel)
		for range parallel {
			wg.Go(func() {
				if _, err := p.Exchange(context.Background(), code, verifier, nonce); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// Each exchange holds one connection at a time (token, keys, then
	// userinfo): a pool of parallel connections serves every round.
	if n := opened.Load(); n > 2*parallel {
		t.Errorf("%d connections opened for %d exchanges, %d at a time: connections are not reused", n, parallel*rounds, parallel)
	}
}
