package loadgen

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/internal/dpop"
)

// jwtBearer is the client_assertion_type of private_key_jwt (RFC 7523).
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// target is what a generator needs to know of the stack: the platform's
// issuer, the SP registration it plays, the IdP and the identity it logs
// in with.
type target struct {
	plus        bool
	issuer      string
	idp         string
	idpIssuer   string
	identity    string
	clientID    string
	secret      string // standard: client_secret_basic
	redirectURI string
	acr         string
	keys        plusKeys // "+": private_key_jwt and JWE keys
}

// generator holds what every virtual user shares: the discovered
// endpoints, the go-oidc verifier with its cached key set, and the request
// parts that do not change from one login to the next.
type generator struct {
	t target
	// back is the client go-oidc fetches discovery and /jwks with.
	back     *http.Client
	ctx      context.Context
	verifier *oidc.IDTokenVerifier
	keySet   oidc.KeySet
	steps    []string

	authorizePrefix, chooseURL, consentURL, tokenURL, userinfoURL, parURL string
	callbackPrefix, idpAuthPrefix, redirectPrefix                         string
	basicAuth                                                             string
	// idpOrigin resolves the IdP's relative form action.
	idpOrigin string
	// forwardedFor sends each login from its own address in
	// X-Forwarded-For (198.18.0.0/15, the benchmarking range of RFC
	// 2544), so that an attached stack trusting loopback as its proxy
	// (config/dev.yaml) applies its per-IP limits per citizen; a broker
	// that trusts no proxy ignores it.
	forwardedFor bool
}

// newGenerator discovers the platform with go-oidc, as an SP does once at
// start, and precomputes the fixed parts of each request.
func newGenerator(ctx context.Context, t target) (*generator, error) {
	g := &generator{t: t, steps: stepsStandard}
	if t.plus {
		g.steps = stepsPlus
	}
	g.back = &http.Client{Timeout: 30 * time.Second}
	g.ctx = oidc.ClientContext(ctx, g.back)
	p, err := oidc.NewProvider(g.ctx, t.issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", t.issuer, err)
	}
	var meta struct {
		PAR string `json:"pushed_authorization_request_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", t.issuer, err)
	}
	g.keySet = oidc.NewRemoteKeySet(g.ctx, t.issuer+"/jwks")
	g.verifier = p.Verifier(&oidc.Config{ClientID: t.clientID, SupportedSigningAlgs: []string{oidc.ES256}})
	g.tokenURL, g.userinfoURL, g.parURL = p.Endpoint().TokenURL, p.UserInfoEndpoint(), meta.PAR
	if t.plus && g.parURL == "" {
		return nil, fmt.Errorf("%s has no pushed_authorization_request_endpoint: is it a \"+\" platform?", t.issuer)
	}
	q := url.Values{
		"client_id": {t.clientID}, "redirect_uri": {t.redirectURI}, "response_type": {"code"},
		"scope": {"openid identite_pivot email"}, "acr_values": {t.acr}, "code_challenge_method": {"S256"},
	}
	g.authorizePrefix = p.Endpoint().AuthURL + "?" + q.Encode()
	g.chooseURL = t.issuer + "/authorize/choose"
	g.consentURL = t.issuer + "/authorize/consent"
	g.callbackPrefix = t.issuer + "/idp/callback?"
	g.idpAuthPrefix = t.idpIssuer + "/authorize?"
	g.redirectPrefix = t.redirectURI + "?"
	g.basicAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(t.clientID)+":"+url.QueryEscape(t.secret)))
	if u, err := url.Parse(t.idpIssuer); err == nil {
		g.idpOrigin = u.Scheme + "://" + u.Host
	}
	return g, nil
}

// user is one virtual user: a browser (its own cookie jar, a new one for
// each login, so that every login is a new citizen with no SSO) and the
// SP's side of the same login.
type user struct {
	id  int
	n   int // logins started, for the X-Forwarded-For address
	xff string
	g   *generator
	// browser and sp are the connections of the citizen's browser and of
	// the SP's back end; jar is the browser's cookie jar.
	browser, sp *wire
	jar         *cookiejar.Jar
	buf         bytes.Buffer
	rec         *recorder
	dpop        jose.JSONWebKey
	sign        jose.Signer
}

func (g *generator) newUser(id, capacity int) (*user, error) {
	u := &user{id: id, g: g, rec: newRecorder(g.steps, capacity), browser: newWire(), sp: newWire()}
	if g.t.plus {
		// One DPoP key per user, as an SP keeps one per instance.
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("DPoP key: %w", err)
		}
		u.dpop = jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256)}
		u.sign, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: g.t.keys.Sign.Key},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", g.t.keys.Sign.KeyID))
		if err != nil {
			return nil, fmt.Errorf("client assertion signer: %w", err)
		}
	}
	return u, nil
}

// stepError is a failed step of a login.
type stepError struct {
	step, msg string
}

func (e *stepError) Error() string { return e.step + ": " + e.msg }

func failf(step, format string, args ...any) error {
	return &stepError{step: step, msg: fmt.Sprintf(format, args...)}
}

// do sends req as step on w (the browser's connections, with its cookies,
// or the SP's), reads the whole body into u.buf and records the time from
// send to last byte. want is the status expected; anything else fails the
// step, naming the Sésame error code the page shows, if any.
func (u *user) do(w *wire, step string, req *http.Request, want int) (*http.Response, error) {
	browser := w == u.browser
	if browser {
		req.Header.Set("Accept-Language", "fr-FR,fr;q=0.9")
		for _, c := range u.jar.Cookies(req.URL) {
			req.AddCookie(c)
		}
		if u.xff != "" {
			req.Header.Set("X-Forwarded-For", u.xff)
		}
	}
	u.buf.Reset()
	start := time.Now()
	resp, err := w.roundTrip(req, &u.buf)
	if err != nil {
		return nil, failf(step, "%s %s: %v", req.Method, req.URL.Path, err)
	}
	if browser {
		if rc := resp.Cookies(); len(rc) > 0 {
			u.jar.SetCookies(req.URL, rc)
		}
	}
	if resp.StatusCode != want {
		return nil, failf(step, "%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, errorDetail(u.buf.Bytes()))
	}
	u.rec.observe(step, time.Since(start))
	return resp, nil
}

func (u *user) get(step, target string, want int) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return nil, failf(step, "GET %s: %v", target, err)
	}
	return u.do(u.browser, step, req, want)
}

func (u *user) post(w *wire, step, target, form string, want int, header ...string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form))
	if err != nil {
		return nil, failf(step, "POST %s: %v", target, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return u.do(w, step, req, want)
}

// location is the answer's Location, resolved against origin when it is
// a path, checked to start with prefix.
func location(step string, resp *http.Response, origin, prefix string) (string, error) {
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = origin + loc
	}
	if !strings.HasPrefix(loc, prefix) {
		return "", failf(step, "redirects to %q, want %s…", loc, prefix)
	}
	return loc, nil
}

// login runs one complete login and records each step. It returns the
// failed step's error, or nil.
func (u *user) login() error {
	g, t := u.g, u.g.t
	jar, err := cookiejar.New(nil)
	if err != nil {
		return failf(StepAuthorize, "cookie jar: %v", err)
	}
	u.jar = jar
	if g.forwardedFor {
		// 198.18.0.0/15: user id in the high bits, the login's rank in
		// the low ones.
		a := uint32(u.id)<<10 | uint32(u.n)&0x3ff
		u.xff = fmt.Sprintf("198.%d.%d.%d", 18+(a>>16)&1, a>>8&0xff, a&0xff)
	}
	u.n++
	state, nonce, verifier := rand.Text(), rand.Text(), rand.Text()+rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])

	authURL := g.authorizePrefix + "&state=" + state + "&nonce=" + nonce + "&code_challenge=" + challenge
	if t.plus {
		if authURL, err = u.push(state, nonce, challenge); err != nil {
			return err
		}
	}
	resp, err := u.get(StepAuthorize, authURL, http.StatusSeeOther)
	if err != nil {
		return err
	}
	if _, err := location(StepAuthorize, resp, t.issuer, g.chooseURL); err != nil {
		return err
	}
	if _, err := u.get(StepChooser, g.chooseURL, http.StatusOK); err != nil {
		return err
	}
	csrf, ok := attrAfter(u.buf.Bytes(), csrfMarker)
	if !ok {
		return failf(StepChooser, "the chooser has no csrf field")
	}
	resp, err = u.post(u.browser, StepChoose, g.chooseURL, "csrf="+url.QueryEscape(csrf)+"&idp="+t.idp, http.StatusSeeOther)
	if err != nil {
		return err
	}
	idpAuth, err := location(StepChoose, resp, t.issuer, g.idpAuthPrefix)
	if err != nil {
		return err
	}
	if _, err := u.get(StepIdPPage, idpAuth, http.StatusOK); err != nil {
		return err
	}
	tx, ok1 := attrAfter(u.buf.Bytes(), txMarker)
	action, ok2 := attrAfter(u.buf.Bytes(), actionMarker)
	if !ok1 || !ok2 {
		return failf(StepIdPPage, "the IdP's login page has no tx field or form action")
	}
	if strings.HasPrefix(action, "/") {
		action = g.idpOrigin + action
	}
	resp, err = u.post(u.browser, StepIdPLogin, action, "tx="+url.QueryEscape(tx)+"&identity="+t.identity+"&action=login", http.StatusSeeOther)
	if err != nil {
		return err
	}
	cb, err := location(StepIdPLogin, resp, g.idpOrigin, g.callbackPrefix)
	if err != nil {
		return err
	}
	resp, err = u.get(StepCallback, cb, http.StatusSeeOther)
	if err != nil {
		return err
	}
	if _, err := location(StepCallback, resp, t.issuer, g.consentURL); err != nil {
		return err
	}
	if _, err := u.get(StepInfo, g.consentURL, http.StatusOK); err != nil {
		return err
	}
	if !bytes.Contains(u.buf.Bytes(), citizenMark) {
		return failf(StepInfo, "the information page does not greet the citizen (#citizen)")
	}
	if csrf, ok = attrAfter(u.buf.Bytes(), csrfMarker); !ok {
		return failf(StepInfo, "the information page has no csrf field")
	}
	resp, err = u.post(u.browser, StepConsent, g.consentURL, "csrf="+url.QueryEscape(csrf), http.StatusSeeOther)
	if err != nil {
		return err
	}
	final, err := location(StepConsent, resp, t.issuer, g.redirectPrefix)
	if err != nil {
		return err
	}
	fq, err := url.ParseQuery(final[len(g.redirectPrefix):])
	if err != nil {
		return failf(StepConsent, "authorization response %q: %v", final, err)
	}
	code := fq.Get("code")
	if code == "" || fq.Get("state") != state || fq.Get("iss") != t.issuer {
		return failf(StepConsent, "authorization response %q: want a code, state %s and iss %s", final, state, t.issuer)
	}
	return u.redeem(code, verifier, nonce)
}

// tokenAnswer is the token endpoint's JSON.
type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	TokenType   string `json:"token_type"`
}

// redeem is the SP's part: the code for tokens, the id_token verified
// (decrypted first on "+") against the broker's /jwks with go-oidc, then
// userinfo, whose sub must be the id_token's.
func (u *user) redeem(code, verifier, nonce string) error {
	g, t := u.g, u.g.t
	form := "grant_type=authorization_code&code=" + url.QueryEscape(code) +
		"&redirect_uri=" + url.QueryEscape(t.redirectURI) + "&code_verifier=" + verifier
	var header []string
	if t.plus {
		assertion, err := u.assertion()
		if err != nil {
			return failf(StepToken, "%v", err)
		}
		proof, err := dpop.NewProof(u.dpop, http.MethodPost, g.tokenURL, "", "")
		if err != nil {
			return failf(StepToken, "DPoP proof: %v", err)
		}
		form += "&client_id=" + url.QueryEscape(t.clientID) + "&client_assertion_type=" + url.QueryEscape(jwtBearer) + "&client_assertion=" + assertion
		header = []string{dpop.HeaderName, proof}
	} else {
		header = []string{"Authorization", g.basicAuth}
	}
	if _, err := u.post(u.sp, StepToken, g.tokenURL, form, http.StatusOK, header...); err != nil {
		return err
	}
	var tok tokenAnswer
	if err := json.Unmarshal(u.buf.Bytes(), &tok); err != nil || tok.AccessToken == "" || tok.IDToken == "" {
		return failf(StepToken, "token answer without access_token and id_token (%v)", err)
	}
	wantType := "Bearer"
	if t.plus {
		wantType = "DPoP"
	}
	if tok.TokenType != wantType {
		return failf(StepToken, "token_type %q, want %s", tok.TokenType, wantType)
	}

	start := time.Now()
	raw := tok.IDToken
	if t.plus {
		var err error
		if raw, err = u.decrypt(raw); err != nil {
			return failf(StepVerify, "id_token: %v", err)
		}
	}
	idt, err := g.verifier.Verify(g.ctx, raw)
	if err != nil {
		return failf(StepVerify, "go-oidc refuses the id_token: %v", err)
	}
	if idt.Nonce != nonce {
		return failf(StepVerify, "id_token nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		return failf(StepVerify, "id_token at_hash: %v", err)
	}
	verified := time.Since(start)

	req, err := http.NewRequest(http.MethodGet, g.userinfoURL, nil)
	if err != nil {
		return failf(StepUserinfo, "%v", err)
	}
	if t.plus {
		proof, err := dpop.NewProof(u.dpop, http.MethodGet, g.userinfoURL, tok.AccessToken, "")
		if err != nil {
			return failf(StepUserinfo, "DPoP proof: %v", err)
		}
		req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		req.Header.Set(dpop.HeaderName, proof)
	} else {
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}
	if _, err := u.do(u.sp, StepUserinfo, req, http.StatusOK); err != nil {
		return err
	}
	start = time.Now()
	payload := u.buf.Bytes()
	if t.plus {
		inner, err := u.decrypt(string(bytes.TrimSpace(payload)))
		if err != nil {
			return failf(StepVerify, "userinfo: %v", err)
		}
		if payload, err = g.keySet.VerifySignature(g.ctx, inner); err != nil {
			return failf(StepVerify, "userinfo signature: %v", err)
		}
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub != idt.Subject {
		return failf(StepUserinfo, "userinfo sub %q, want the id_token's %q (%v)", claims.Sub, idt.Subject, err)
	}
	u.rec.observe(StepVerify, verified+time.Since(start))
	return nil
}

// push sends the "+" authorization request to PAR (RFC 9126) with
// private_key_jwt and a DPoP proof, and returns the URL the browser gets:
// client_id and request_uri only.
func (u *user) push(state, nonce, challenge string) (string, error) {
	g, t := u.g, u.g.t
	assertion, err := u.assertion()
	if err != nil {
		return "", failf(StepPAR, "%v", err)
	}
	proof, err := dpop.NewProof(u.dpop, http.MethodPost, g.parURL, "", "")
	if err != nil {
		return "", failf(StepPAR, "DPoP proof: %v", err)
	}
	// The authorization request's fixed part, as a form.
	form := g.authorizePrefix[strings.IndexByte(g.authorizePrefix, '?')+1:] +
		"&state=" + state + "&nonce=" + nonce + "&code_challenge=" + challenge +
		"&client_assertion_type=" + url.QueryEscape(jwtBearer) + "&client_assertion=" + assertion
	if _, err := u.post(u.sp, StepPAR, g.parURL, form, http.StatusCreated, dpop.HeaderName, proof); err != nil {
		return "", err
	}
	var out struct {
		RequestURI string `json:"request_uri"`
	}
	if err := json.Unmarshal(u.buf.Bytes(), &out); err != nil || out.RequestURI == "" {
		return "", failf(StepPAR, "PAR answer without request_uri (%v)", err)
	}
	return t.issuer + "/authorize?client_id=" + url.QueryEscape(t.clientID) + "&request_uri=" + url.QueryEscape(out.RequestURI), nil
}

// assertion is a fresh private_key_jwt client assertion, audience the
// issuer.
func (u *user) assertion() (string, error) {
	now := time.Now()
	raw, err := jwt.Signed(u.sign).Claims(jwt.Claims{
		Issuer: u.g.t.clientID, Subject: u.g.t.clientID, Audience: jwt.Audience{u.g.t.issuer}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(60 * time.Second)),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("client assertion: %w", err)
	}
	return raw, nil
}

// decrypt opens a JWE the broker encrypted to the "+" SP's key and returns
// the signed JWT inside.
func (u *user) decrypt(raw string) (string, error) {
	obj, err := jose.ParseEncryptedCompact(raw, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return "", fmt.Errorf("not a JWE to the SP's ECDH-ES key: %w", err)
	}
	plain, err := obj.Decrypt(u.g.t.keys.Enc.Key)
	if err != nil {
		return "", fmt.Errorf("does not decrypt with the SP's key: %w", err)
	}
	return string(plain), nil
}
