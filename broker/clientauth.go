package broker

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/broker/clientkeys"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/dpop"
	"github.com/sesame-id/sesame/internal/store"
)

const (
	jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// maxAssertionLife bounds exp - now, so a leaked assertion is not a
	// long-lived credential.
	maxAssertionLife = 10 * time.Minute
	assertionLeeway  = 10 * time.Second
)

// assertionAlgs are the asymmetric algorithms accepted for private_key_jwt:
// never none, never HS256.
var assertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}

// party is whoever authenticates at a back-channel endpoint: an SP at
// /token, /par and /revoke, a data provider at /introspect.
type party struct {
	ID      string
	Secret  string
	Methods []string
	Active  bool
	Keys    *clientkeys.Keys
}

// parties finds a registered party by client_id.
type parties func(ctx context.Context, clientID string) (party, bool)

// spParty finds an SP.
func (p *Platform) spParty(ctx context.Context, id string) (party, bool) {
	reg := p.reg(ctx)
	sp, ok := reg.Client(id)
	if !ok {
		return party{}, false
	}
	return party{ID: sp.ClientID, Secret: sp.ClientSecret, Methods: sp.TokenEndpointAuthMethods, Active: sp.IsActive(), Keys: reg.spKeys[sp.ClientID]}, true
}

// authenticateClient authenticates an SP (see authenticate); on a
// platform that takes private_key_jwt only, a secret never passes.
func (p *Platform) authenticateClient(w http.ResponseWriter, r *http.Request) (*config.SP, url.Values, *oneTime, *oidcerr.Error) {
	id, method, form, jti, oerr := p.authenticate(w, r, p.spParty)
	if oerr != nil {
		return nil, nil, nil, oerr
	}
	if method != "private_key_jwt" && p.cfg.PrivateKeyJWTOnly() {
		return nil, nil, nil, oidcerr.New(oidcerr.InvalidClient, "this platform takes private_key_jwt only")
	}
	sp, _ := p.reg(r.Context()).Client(id)
	return sp, form, jti, nil
}

// oneTime is a marker a request must be the first to store (a client
// assertion's or a DPoP proof's jti), and the error when it is not.
type oneTime struct {
	entry    store.Entry
	replayed *oidcerr.Error
}

// spend stores a request's one-time markers in one round trip, refusing
// the request when one was used before.
func (p *Platform) spend(r *http.Request, markers ...*oneTime) *oidcerr.Error {
	var entries []store.Entry
	var kept []*oneTime
	for _, m := range markers {
		if m != nil {
			entries, kept = append(entries, m.entry), append(kept, m)
		}
	}
	if len(entries) == 0 {
		return nil
	}
	fresh, err := p.sessions.AddMarkers(r.Context(), entries...)
	if err != nil {
		return storeOAuthError(err)
	}
	for i, ok := range fresh {
		if !ok {
			return kept[i].replayed
		}
	}
	return nil
}

// authenticate reads the form and authenticates the caller with exactly
// one method: client_secret_basic, client_secret_post or private_key_jwt.
// It returns the caller's client_id and the method used, and, for
// private_key_jwt, the assertion's jti marker that the caller must spend
// (see spend) before trusting the caller.
func (p *Platform) authenticate(w http.ResponseWriter, r *http.Request, find parties) (string, string, url.Values, *oneTime, *oidcerr.Error) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return "", "", nil, nil, oidcerr.New(oidcerr.InvalidRequest, "the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return "", "", nil, nil, oidcerr.New(oidcerr.InvalidRequest, "the body is not a valid form or is too large")
	}
	form := r.PostForm
	for k, v := range form {
		if len(v) > 1 {
			return "", "", nil, nil, oidcerr.Newf(oidcerr.InvalidRequest, "parameter %s is repeated", safeCode(k))
		}
	}
	basicID, basicSecret, hasBasic := r.BasicAuth()
	postID, postSecret := form.Get("client_id"), form.Get("client_secret")
	assertion := form.Get("client_assertion")
	methods := 0
	for _, used := range []bool{hasBasic, postSecret != "", assertion != "" || form.Has("client_assertion_type")} {
		if used {
			methods++
		}
	}
	var id, secret, method string
	switch {
	case methods > 1:
		return "", "", nil, nil, oidcerr.New(oidcerr.InvalidRequest, "use one client authentication method, not two")
	case assertion != "" || form.Has("client_assertion_type"):
		id, jti, oerr := p.verifyAssertion(r, postID, form.Get("client_assertion_type"), assertion, find)
		return id, "private_key_jwt", form, jti, oerr
	case hasBasic:
		// RFC 6749 §2.3.1: Basic credentials are form-urlencoded first.
		var err1, err2 error
		id, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return "", "", nil, nil, oidcerr.New(oidcerr.InvalidClient, "client authentication failed")
		}
		method = "client_secret_basic"
		if postID != "" && postID != id {
			return "", "", nil, nil, oidcerr.New(oidcerr.InvalidRequest, "client_id differs from the authenticated client")
		}
	case postSecret != "":
		id, secret, method = postID, postSecret, "client_secret_post"
	default:
		return "", "", nil, nil, oidcerr.New(oidcerr.InvalidClient, "client authentication is required")
	}
	c, ok := find(r.Context(), id)
	if !ok || !c.Active || !slices.Contains(c.Methods, method) || c.Secret == "" || !secretEqual(secret, c.Secret) {
		return "", "", nil, nil, oidcerr.New(oidcerr.InvalidClient, "client authentication failed")
	}
	return c.ID, method, form, nil, nil
}

// verifyAssertion authenticates a caller by private_key_jwt (RFC 7523
// §2.2, OIDC Core §9): signed by one of its registered keys, iss = sub =
// the client, aud = our issuer or the endpoint's URL, short-lived, and its
// jti used once (recorded in the store until it expires, so replicas
// share it).
func (p *Platform) verifyAssertion(r *http.Request, clientID, assertionType, raw string, find parties) (string, *oneTime, *oidcerr.Error) {
	fail := oidcerr.New(oidcerr.InvalidClient, "client authentication failed")
	if assertionType != jwtBearer {
		return "", nil, oidcerr.New(oidcerr.InvalidRequest, "client_assertion_type must be "+jwtBearer)
	}
	if raw == "" || len(raw) > 8192 {
		return "", nil, oidcerr.New(oidcerr.InvalidRequest, "client_assertion is missing or too long")
	}
	tok, err := jwt.ParseSigned(raw, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return "", nil, fail.WithCause(err)
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return "", nil, fail.WithCause(err)
	}
	c, ok := find(r.Context(), unverified.Issuer)
	if !ok || !c.Active || !slices.Contains(c.Methods, "private_key_jwt") || (clientID != "" && clientID != c.ID) || c.Keys == nil {
		return "", nil, fail
	}
	candidates, err := c.Keys.Verification(r.Context(), tok.Headers[0].KeyID)
	if err != nil {
		return "", nil, fail.WithCause(err)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range candidates {
		if tok.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return "", nil, fail.WithCause(errors.New("client_assertion signature does not verify"))
	}
	now := time.Now()
	endpoint := p.cfg.Issuer + r.URL.Path
	switch {
	case claims.Subject != c.ID:
		return "", nil, fail.WithCause(errors.New("client_assertion sub is not the client"))
	case !slices.ContainsFunc(claims.Audience, func(a string) bool {
		return a == p.cfg.Issuer || a == p.cfg.Issuer+"/token" || a == p.cfg.Issuer+"/par" || a == endpoint
	}):
		return "", nil, fail.WithCause(errors.New("client_assertion aud is not this provider"))
	case claims.Expiry == nil || claims.ID == "" || len(claims.ID) > 256:
		return "", nil, fail.WithCause(errors.New("client_assertion needs exp and jti"))
	case claims.Expiry.Time().After(now.Add(maxAssertionLife)):
		return "", nil, fail.WithCause(errors.New("client_assertion lives too long"))
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Time: now}, assertionLeeway); err != nil {
		return "", nil, fail.WithCause(err)
	}
	jti := &oneTime{
		entry:    p.sessions.Marker("jti", c.ID+"\x00"+claims.ID, "1", time.Until(claims.Expiry.Time())+assertionLeeway),
		replayed: oidcerr.New(oidcerr.InvalidClient, "client authentication failed").WithCause(errors.New("client_assertion jti replayed")),
	}
	return c.ID, jti, nil
}

// clientCall opens an SP's back-channel call at path (token, PAR): a
// source over its failure limit is refused before any work; the DPoP
// proof, if any, is verified before the client's assertion is spent (a
// client told to use a nonce retries with it unspent) and its jti spent
// after; failures are counted. fail answers in the endpoint's own way.
func (p *Platform) clientCall(w http.ResponseWriter, r *http.Request, path string, fail func(*oidcerr.Error)) (*config.SP, url.Values, *dpop.Proof, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	ip := p.clientIP(r)
	if blocked, left := p.blocked.blocked(ip); blocked {
		p.tooManyTokens(w, r, "too many failed client authentications from this source", left)
		return nil, nil, nil, false
	}
	proof, oerr := p.checkDPoP(w, r, path, "")
	if oerr != nil {
		fail(oerr)
		return nil, nil, nil, false
	}
	sp, form, jti, oerr := p.authenticateClient(w, r)
	if oerr != nil {
		p.authFailed(w, r, ip, oerr)
		return nil, nil, nil, false
	}
	// The assertion's jti and the proof's, in one round trip.
	if oerr := p.spend(r, jti, p.dpopOnce(proof)); oerr != nil {
		if oerr.Code == oidcerr.InvalidClient {
			p.authFailed(w, r, ip, oerr)
		} else {
			fail(oerr)
		}
		return nil, nil, nil, false
	}
	return sp, form, proof, true
}
