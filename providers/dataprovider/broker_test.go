package dataprovider_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/web"
	"github.com/sesame-id/sesame/providers"
	"github.com/sesame-id/sesame/providers/dataprovider"
)

// The providers' registrations at the fake brokers: the same ids, secrets
// and scopes a real broker would hold.
var registered = map[string]struct {
	secret string
	scopes []string
}{
	"dp-dgfip": {"dp-dgfip-secret-0123456789abcdef0123456789", []string{"dgfip_rfr", "dgfip_nbpart"}},
	"dp-cnaf":  {"dp-cnaf-secret-0123456789abcdef01234567890", []string{"cnaf_quotient_familial", "cnaf_composition_familiale"}},
}

const introspectionJWT = "application/token-introspection+jwt"

// fakeBroker serves what a Sésame platform serves a data provider:
// discovery, /jwks and /introspect, whose answers are built with go-jose
// exactly per the contract (a JWS ES256 typ token-introspection+jwt,
// encrypted to the provider's key fetched from its jwks_uri), unless bad
// says how to get one thing wrong.
type fakeBroker struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string
	key    jose.JSONWebKey // signs the answers; published at /jwks
	// dpJWKS is each provider's jwks_uri, by client_id.
	dpJWKS map[string]string
	// now is the stack's clock, which tests move.
	now func() time.Time

	mu     sync.Mutex
	tokens map[string]grantSpec
	bad    badAnswer
	// discoveryIssuer, when set, is the issuer discovery claims.
	discoveryIssuer string
	discovery, jwks int // fetch counts
	introspections  int
}

// grantSpec is what the broker knows of one access token it issued.
type grantSpec struct {
	who   providers.Identity
	scope string // the token's scopes, space-separated
	jkt   string // DPoP-bound when set
	exp   time.Time
	// drop leaves a claim out of token_introspection.
	drop string
}

// badAnswer is one way for a broker's answer to be wrong.
type badAnswer struct {
	forgedSignature bool   // signed by a key not published, under the published kid
	unknownKid      bool   // signed by a key not published, under a kid not published
	aud, iss        string // outer JWT aud / iss instead of the right ones
	noTyp           bool
	iatAge          time.Duration
	jsonInactive    bool // inactive answered as plain JSON
	jsonActive      bool // active answered as plain, unsigned JSON
	rsa             bool // encrypt with RSA-OAEP-256 (not bad: the other alg)
	notEncrypted    bool // the bare JWS
	foreignKey      bool // encrypted to a key that is not the provider's
	tokenIss        string
	status          int  // answer this status with {"error":"invalid_client"}
	activeExpired   bool // say active past the token's exp
	dpopWithoutCnf  bool // token_type DPoP without cnf.jkt
}

func newFakeBroker(t *testing.T) *fakeBroker {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{t: t, tokens: map[string]grantSpec{}, dpJWKS: map[string]string{}, now: time.Now,
		key: jose.JSONWebKey{Key: priv, KeyID: "broker-" + rand.Text()[:8], Algorithm: string(jose.ES256), Use: "sig"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", b.serveDiscovery)
	mux.HandleFunc("GET /jwks", b.serveJWKS)
	mux.HandleFunc("POST /introspect", b.serveIntrospect)
	b.srv = httptest.NewServer(mux)
	b.issuer = b.srv.URL
	t.Cleanup(b.srv.Close)
	return b
}

func (b *fakeBroker) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	b.discovery++
	iss := b.issuer
	if b.discoveryIssuer != "" {
		iss = b.discoveryIssuer
	}
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": iss, "introspection_endpoint": b.issuer + "/introspect", "jwks_uri": b.issuer + "/jwks",
		"authorization_endpoint": b.issuer + "/authorize", "token_endpoint": b.issuer + "/token",
	})
}

func (b *fakeBroker) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	b.jwks++
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{b.key.Public()}}
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// issue makes an access token and remembers what it grants.
func (b *fakeBroker) issue(g grantSpec) string {
	tok := "at-" + rand.Text()
	if g.exp.IsZero() {
		g.exp = b.now().Add(60 * time.Second)
	}
	b.mu.Lock()
	b.tokens[tok] = g
	b.mu.Unlock()
	return tok
}

func (b *fakeBroker) misbehave(bad badAnswer) {
	b.mu.Lock()
	b.bad = bad
	b.mu.Unlock()
}

func (b *fakeBroker) counts() (discovery, jwks, introspections int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.discovery, b.jwks, b.introspections
}

// rotate replaces the signing key, with a new kid, as a broker does.
func (b *fakeBroker) rotate() {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.t.Fatal(err)
	}
	b.mu.Lock()
	b.key = jose.JSONWebKey{Key: priv, KeyID: "broker-" + rand.Text()[:8], Algorithm: string(jose.ES256), Use: "sig"}
	b.mu.Unlock()
}

func (b *fakeBroker) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.introspections++
	bad, key := b.bad, b.key
	b.mu.Unlock()
	t := b.t
	// The request a provider must send (RFC 7662 §2.1, RFC 9701 §4).
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("introspection Content-Type %q", ct)
	}
	if a := r.Header.Get("Accept"); a != introspectionJWT {
		t.Errorf("introspection Accept %q, want %s", a, introspectionJWT)
	}
	if err := r.ParseForm(); err != nil || len(r.URL.Query()) != 0 {
		t.Errorf("introspection form: %v, query %q", err, r.URL.RawQuery)
	}
	user, pass, ok := r.BasicAuth()
	clientID, _ := url.QueryUnescape(user)
	secret, _ := url.QueryUnescape(pass)
	reg, known := registered[clientID]
	if !ok || !known || secret != reg.secret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "Client authentication failed."})
		return
	}
	if bad.status != 0 {
		writeJSON(w, bad.status, map[string]string{"error": "invalid_client"})
		return
	}
	b.mu.Lock()
	g, found := b.tokens[r.PostForm.Get("token")]
	b.mu.Unlock()
	active := found && (b.now().Before(g.exp) || bad.activeExpired)
	if bad.jsonInactive && !active {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	ti := map[string]any{"active": false}
	if active {
		ti = b.introspection(g, clientID, reg.scopes)
		if bad.tokenIss != "" {
			ti["iss"] = bad.tokenIss
		}
		if bad.dpopWithoutCnf {
			ti["token_type"] = "DPoP"
		}
	}
	if bad.jsonActive {
		writeJSON(w, http.StatusOK, ti)
		return
	}
	claims := map[string]any{"iss": b.issuer, "aud": clientID, "iat": b.now().Add(-bad.iatAge).Unix(), "token_introspection": ti}
	if bad.aud != "" {
		claims["aud"] = bad.aud
	}
	if bad.iss != "" {
		claims["iss"] = bad.iss
	}
	signWith := key
	if bad.forgedSignature || bad.unknownKid {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		signWith = jose.JSONWebKey{Key: priv, KeyID: key.KeyID}
		if bad.unknownKid {
			signWith.KeyID = "not-published"
		}
	}
	opts := (&jose.SignerOptions{}).WithHeader("kid", signWith.KeyID)
	if !bad.noTyp {
		opts = opts.WithType("token-introspection+jwt")
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signWith.Key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	body := jws
	if !bad.notEncrypted {
		body = b.encrypt(jws, clientID, bad)
	}
	w.Header().Set("Content-Type", introspectionJWT)
	_, _ = w.Write([]byte(body))
}

// introspection is token_introspection for an active token, per the
// contract: the token's scopes ∩ the provider's, a sub pairwise for the
// provider, cnf.jkt for a DPoP-bound token, and the pivot identity.
func (b *fakeBroker) introspection(g grantSpec, clientID string, dpScopes []string) map[string]any {
	var scopes []string
	for _, s := range strings.Fields(g.scope) {
		for _, d := range dpScopes {
			if s == d {
				scopes = append(scopes, s)
			}
		}
	}
	ti := map[string]any{
		"active": true, "scope": strings.Join(scopes, " "), "client_id": "sp-demo", "aud": "sp-demo",
		"sub": "sub-" + clientID + "-" + g.who.ID, "acr": "eidas1", "iat": b.now().Add(-5 * time.Second).Unix(),
		"exp": g.exp.Unix(), "jti": rand.Text(), "iss": b.issuer, "token_type": "Bearer",
		"given_name": g.who.GivenName, "family_name": g.who.FamilyName, "birthdate": g.who.Birthdate,
		"gender": g.who.Gender, "birthplace": g.who.Birthplace, "birthcountry": g.who.Birthcountry,
	}
	if g.jkt != "" {
		ti["token_type"] = "DPoP"
		ti["cnf"] = map[string]string{"jkt": g.jkt}
	}
	delete(ti, g.drop)
	return ti
}

// encrypt wraps the JWS for the provider's first enc key of the wanted
// alg, fetched from its jwks_uri as a broker does.
func (b *fakeBroker) encrypt(jws, clientID string, bad badAnswer) string {
	t := b.t
	resp, err := http.Get(b.dpJWKS[clientID])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	alg := jose.ECDH_ES
	if bad.rsa {
		alg = jose.RSA_OAEP_256
	}
	var to *jose.JSONWebKey
	for i, k := range set.Keys {
		if k.Use == "enc" && k.Algorithm == string(alg) {
			to = &set.Keys[i]
			break
		}
	}
	if to == nil {
		t.Fatalf("%s publishes no %s key: %+v", clientID, alg, set)
	}
	rcpt := jose.Recipient{Algorithm: alg, Key: to.Key, KeyID: to.KeyID}
	if bad.foreignKey {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		rcpt.Key = &other.PublicKey
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, rcpt, (&jose.EncrypterOptions{}).WithContentType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := enc.Encrypt([]byte(jws))
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// stack is the two mock data providers on one listener, and the fake
// brokers whose tokens they accept.
type stack struct {
	t       *testing.T
	url     string
	brokers []*fakeBroker
	logs    *syncBuffer
	// offset moves the providers' clock.
	mu     sync.Mutex
	offset time.Duration
}

// keysFile is one private JWK set for every test provider: generating
// the RSA key is most of a provider's start-up time.
var keysFile = sync.OnceValues(func() (string, error) {
	set, err := dataprovider.GenerateKeys()
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(set)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "dataprovider-test-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "keys.json")
	return path, os.WriteFile(path, raw, 0o600)
})

func TestMain(m *testing.M) {
	// The stacks log to their own buffers; what logs to the default
	// logger (the providers of TestWithTheBroker) is not looked at.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	code := m.Run()
	if p, err := keysFile(); err == nil {
		os.RemoveAll(filepath.Dir(p))
	}
	os.Exit(code)
}

// newStack starts the providers dgfip and cnaf, accepting the tokens of
// n fake brokers (in that order); edit changes their config.
func newStack(t *testing.T, n int, edit ...func(*config.MockDataProvider)) *stack {
	t.Helper()
	keys, err := keysFile()
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, logs: &syncBuffer{}}
	var issuers []string
	for range n {
		b := newFakeBroker(t)
		b.now = s.now
		s.brokers = append(s.brokers, b)
		issuers = append(issuers, b.issuer)
	}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	var cfgs []config.MockDataProvider
	for _, id := range []string{"dgfip", "cnaf"} {
		c := config.MockDataProvider{ID: id, Issuers: issuers, ClientID: "dp-" + id, ClientSecret: registered["dp-"+id].secret, Keys: keys}
		for _, e := range edit {
			e(&c)
		}
		cfgs = append(cfgs, c)
		for _, b := range s.brokers {
			b.dpJWKS[c.ClientID] = srv.URL + "/dp/" + id + "/jwks"
		}
	}
	dps, err := dataprovider.New(cfgs, dataprovider.Options{
		BaseURL: srv.URL,
		Log:     slog.New(slog.NewJSONHandler(s.logs, nil)),
		Now:     s.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h = web.WithCorrelationID(dps)
	return s
}

// now is the clock of the providers and the brokers.
func (s *stack) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Add(s.offset)
}

func (s *stack) advance(d time.Duration) {
	s.mu.Lock()
	s.offset += d
	s.mu.Unlock()
}

// answer is one API response.
type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	return m
}

// get calls path with the given Authorization header (empty: none) and
// extra headers.
func (s *stack) get(path, authorization string, extra ...string) answer {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Add(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return answer{resp.StatusCode, resp.Header, buf.String()}
}

// logLines are the "dataprovider: call" lines written so far.
func (s *stack) logLines() []map[string]any {
	s.t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			s.t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "dataprovider: call" {
			out = append(out, m)
		}
	}
	return out
}

// lastLog is the line of the last call; every call writes exactly one,
// which holds no identity attribute of who.
func (s *stack) lastLog(calls int, who providers.Identity) map[string]any {
	s.t.Helper()
	lines := s.logLines()
	if len(lines) != calls {
		s.t.Fatalf("%d log lines for %d calls:\n%s", len(lines), calls, s.logs.String())
	}
	raw := s.logs.String()
	for _, v := range []string{who.GivenName, who.FamilyName, who.Birthdate, "sub-dp-"} {
		if v != "" && strings.Contains(raw, v) {
			s.t.Errorf("the log holds an identity attribute %q:\n%s", v, raw)
		}
	}
	return lines[len(lines)-1]
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// identities are the built-in test identities, by id.
var identities = sync.OnceValue(func() map[string]providers.Identity {
	f, err := os.Open("../identities.csv")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	list, err := providers.LoadIdentities(f)
	if err != nil {
		panic(err)
	}
	out := map[string]providers.Identity{}
	for _, id := range list {
		out[id.ID] = id
	}
	return out
})

func who(t *testing.T, id string) providers.Identity {
	t.Helper()
	p, ok := identities()[id]
	if !ok {
		t.Fatalf("no test identity %q in identities.csv", id)
	}
	return p
}
