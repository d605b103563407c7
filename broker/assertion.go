package broker

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/config"
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

// verifyAssertion authenticates an SP by private_key_jwt (RFC 7523 §2.2,
// OIDC Core §9): signed by one of its registered keys, iss = sub = the
// client, aud = our issuer or token endpoint, short-lived, and its jti used
// once (recorded in the store until it expires, so replicas share it).
func (p *Platform) verifyAssertion(r *http.Request, clientID, assertionType, raw string) (*config.SP, *oidcerr.Error) {
	fail := oidcerr.New(oidcerr.InvalidClient, "client authentication failed")
	if assertionType != jwtBearer {
		return nil, oidcerr.New(oidcerr.InvalidRequest, "client_assertion_type must be "+jwtBearer)
	}
	if raw == "" || len(raw) > 8192 {
		return nil, oidcerr.New(oidcerr.InvalidRequest, "client_assertion is missing or too long")
	}
	tok, err := jwt.ParseSigned(raw, assertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, fail.WithCause(err)
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, fail.WithCause(err)
	}
	sp, ok := p.Client(unverified.Issuer)
	if !ok || !sp.IsActive() || !slices.Contains(sp.TokenEndpointAuthMethods, "private_key_jwt") || (clientID != "" && clientID != sp.ClientID) {
		return nil, fail
	}
	keys, ok := p.spKeys[sp.ClientID]
	if !ok {
		return nil, fail
	}
	candidates, err := keys.Verification(r.Context(), tok.Headers[0].KeyID)
	if err != nil {
		return nil, fail.WithCause(err)
	}
	var c jwt.Claims
	verified := false
	for _, k := range candidates {
		if tok.Claims(k.Key, &c) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, fail.WithCause(errors.New("client_assertion signature does not verify"))
	}
	now := time.Now()
	switch {
	case c.Subject != sp.ClientID:
		return nil, fail.WithCause(errors.New("client_assertion sub is not the client"))
	case !slices.ContainsFunc(c.Audience, func(a string) bool {
		return a == p.cfg.Issuer || a == p.cfg.Issuer+"/token" || a == p.cfg.Issuer+"/par"
	}):
		return nil, fail.WithCause(errors.New("client_assertion aud is not this provider"))
	case c.Expiry == nil || c.ID == "" || len(c.ID) > 256:
		return nil, fail.WithCause(errors.New("client_assertion needs exp and jti"))
	case c.Expiry.Time().After(now.Add(maxAssertionLife)):
		return nil, fail.WithCause(errors.New("client_assertion lives too long"))
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Time: now}, assertionLeeway); err != nil {
		return nil, fail.WithCause(err)
	}
	fresh, err := p.sessions.AddMarker(r.Context(), "jti", sp.ClientID+"\x00"+c.ID, "1", time.Until(c.Expiry.Time())+assertionLeeway)
	if err != nil {
		return nil, storeOAuthError(err)
	}
	if !fresh {
		return nil, fail.WithCause(errors.New("client_assertion jti replayed"))
	}
	return sp, nil
}
