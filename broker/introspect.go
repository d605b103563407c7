package broker

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/web"
)

// introspectionJWT is the media type of a JWT introspection answer
// (RFC 9701), also its typ header.
const introspectionJWT = "application/token-introspection+jwt"

// dpParty finds a data provider.
func (p *Platform) dpParty(ctx context.Context, id string) (party, bool) {
	reg := p.reg(ctx)
	dp, ok := reg.dps[id]
	if !ok {
		return party{}, false
	}
	return party{ID: dp.ClientID, Secret: dp.ClientSecret, Methods: dp.TokenEndpointAuthMethods, Active: dp.IsActive(), Keys: reg.dpKeys[dp.ClientID]}, true
}

// introspect is token introspection (RFC 7662) for data providers: who the
// token is for, to them (a sub pairwise for the provider), which of its
// scopes they serve, and the pivot identity those allow. One store round
// trip. The answer is JSON, or a signed and possibly encrypted JWT (RFC
// 9701) when the provider asks or registered it (always on "+").
func (p *Platform) introspect(w http.ResponseWriter, r *http.Request) {
	p.answerIntrospection(w, r, func(dp *config.DataProvider) bool {
		return dp.IntrospectionSignedResponseAlg != "" || acceptsIntrospectionJWT(r)
	})
}

// answerIntrospection authenticates the data provider, introspects the
// form's token, records the event and answers, as a JWT when asJWT says.
func (p *Platform) answerIntrospection(w http.ResponseWriter, r *http.Request, asJWT func(*config.DataProvider) bool) {
	dp, form, ok := p.dataProviderCall(w, r)
	if !ok {
		return
	}
	res, g, oerr := p.introspection(r.Context(), dp, form.Get("token"))
	if oerr != nil {
		p.introspectionError(w, r, dp, oerr)
		return
	}
	p.auditIntrospection(r, dp, g, res)
	p.writeIntrospection(w, r, dp, res, asJWT(dp))
}

// checktoken is FranceConnect's v2 checktoken, so that data providers
// written against FranceConnect work unchanged: a form of exactly token,
// client_id and client_secret, and always a JWT answer (see
// docs/data-providers.md for the differences).
func (p *Platform) checktoken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil || len(r.PostForm) != 3 || r.PostForm.Get("token") == "" ||
		r.PostForm.Get("client_id") == "" || r.PostForm.Get("client_secret") == "" || r.URL.RawQuery != "" {
		oidcerr.New(oidcerr.InvalidRequest, "Required parameter missing or invalid.").WriteJSON(w)
		return
	}
	p.answerIntrospection(w, r, func(*config.DataProvider) bool { return true })
}

// dataProviderCall authenticates a data provider's call and refuses a
// token in the query string (it would end up in logs).
func (p *Platform) dataProviderCall(w http.ResponseWriter, r *http.Request) (*config.DataProvider, url.Values, bool) {
	ip := p.clientIP(r)
	if blocked, left := p.blocked.blocked(ip); blocked {
		p.tooManyTokens(w, r, "too many failed client authentications from this source", left)
		return nil, nil, false
	}
	if r.URL.Query().Has("token") {
		p.introspectionError(w, r, nil, oidcerr.New(oidcerr.InvalidRequest, "send the token in the request body, never in the URL"))
		return nil, nil, false
	}
	id, _, form, jti, oerr := p.authenticate(w, r, p.dpParty)
	if oerr == nil {
		oerr = p.spend(r, jti)
	}
	if oerr != nil {
		p.record(r, audit.Event{Name: audit.Introspection, Step: audit.IntrospectionStep, Outcome: oerr.Code, DataProvider: trim(claimedClient(r))})
		p.authFailed(w, r, ip, oerr)
		return nil, nil, false
	}
	return p.reg(r.Context()).dps[id], form, true
}

// introspection is the answer about token for dp: {"active": false} and
// nothing else for a token that is unknown, expired, revoked, of another
// platform, or no access token at all.
func (p *Platform) introspection(ctx context.Context, dp *config.DataProvider, token string) (map[string]any, *grant, *oidcerr.Error) {
	if token == "" {
		return nil, nil, oidcerr.New(oidcerr.InvalidRequest, "token is required")
	}
	inactive := map[string]any{"active": false}
	if len(token) > 256 {
		return inactive, nil, nil
	}
	var g grant
	if err := p.sessions.Token(ctx, token, &g); err != nil {
		if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrCorrupt) {
			return inactive, nil, nil
		}
		return nil, nil, storeOAuthError(err)
	}
	if !g.Expiry.IsZero() && time.Now().After(g.Expiry) {
		return inactive, nil, nil
	}
	var scopes []string
	for _, s := range g.Scopes {
		if s != "openid" && slices.Contains(dp.Scopes, s) {
			scopes = append(scopes, s)
		}
	}
	res := map[string]any{
		"active": true, "scope": strings.Join(scopes, " "), "client_id": g.ClientID, "aud": g.ClientID,
		"sub": identity.Sub(p.subSecret, dp.Sector, g.Identity.Hash()), "acr": g.ACR, "iss": p.cfg.Issuer,
		"iat": g.IssuedAt.Unix(), "exp": g.Expiry.Unix(), "jti": g.JTI, "token_type": "Bearer",
	}
	if g.JKT != "" {
		res["token_type"] = "DPoP"
		res["cnf"] = map[string]string{"jkt": g.JKT}
	}
	// The pivot identity the provider's own identity scopes allow, to
	// reconcile the citizen with its records, once the token carries a
	// data scope it serves: the SP need not ask for the identity to get
	// the data (the identity goes to the administration that holds it,
	// not to the SP). Never the SP's sub, never more.
	if slices.ContainsFunc(scopes, func(s string) bool { return p.reg(ctx).dataScopes[s].Provider != "" }) {
		values := claimValues(g.Identity)
		for _, s := range dp.Scopes {
			for _, c := range scopeClaims[s] {
				if values[c] != "" || c == "birthplace" {
					res[c] = values[c]
				}
			}
		}
	}
	return res, &g, nil
}

// acceptsIntrospectionJWT reports whether the caller asked for the JWT
// answer of RFC 9701.
func acceptsIntrospectionJWT(r *http.Request) bool {
	for _, a := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, _ := strings.Cut(strings.TrimSpace(a), ";"); strings.EqualFold(strings.TrimSpace(mt), introspectionJWT) {
			return true
		}
	}
	return false
}

// introspectionClaims is the JWT answer's payload (RFC 9701 §5).
type introspectionClaims struct {
	Issuer   string         `json:"iss"`
	Audience string         `json:"aud"`
	IssuedAt int64          `json:"iat"`
	Answer   map[string]any `json:"token_introspection"`
}

// writeIntrospection answers in JSON, or as a JWT signed with the
// platform's key and encrypted to the provider's when it registered
// encryption.
func (p *Platform) writeIntrospection(w http.ResponseWriter, r *http.Request, dp *config.DataProvider, res map[string]any, asJWT bool) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if !asJWT {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
		return
	}
	alg := dp.IntrospectionSignedResponseAlg
	if alg == "" {
		alg = "ES256"
	}
	jws, err := p.signer.SignJWT(jose.SignatureAlgorithm(alg), "token-introspection+jwt", introspectionClaims{
		Issuer: p.cfg.Issuer, Audience: dp.ClientID, IssuedAt: time.Now().Unix(), Answer: res,
	})
	if err == nil {
		jws, err = encryptTo(r.Context(), p.reg(r.Context()).dpKeys[dp.ClientID], dp.ClientID, jws, dp.IntrospectionEncryptedResponseAlg, dp.IntrospectionEncryptedResponseEnc)
	}
	if err != nil {
		// The provider's keys cannot be had now (its jwks_uri is down):
		// not its request's fault, and nothing leaks unencrypted.
		p.introspectionError(w, r, dp, oidcerr.New(oidcerr.TemporarilyUnavailable, "the data provider's encryption key cannot be fetched now").WithCause(err))
		return
	}
	w.Header().Set("Content-Type", introspectionJWT)
	_, _ = w.Write([]byte(jws))
}

func (p *Platform) introspectionError(w http.ResponseWriter, r *http.Request, dp *config.DataProvider, e *oidcerr.Error) {
	ev := audit.Event{Name: audit.Introspection, Step: audit.IntrospectionStep, Outcome: e.Code}
	if dp != nil {
		ev.DataProvider = dp.ClientID
	}
	p.record(r, ev)
	p.metrics.oauthError(p.cfg.ID, "introspect", e.Code)
	p.log.InfoContext(r.Context(), "introspection refused", "error", e.Code, "description", e.Description, "cause", e.Cause)
	e.WriteJSON(w)
}

// auditIntrospection records who asked about whose token and what it was
// told; the person only as an account id.
func (p *Platform) auditIntrospection(r *http.Request, dp *config.DataProvider, g *grant, res map[string]any) {
	ev := audit.Event{Name: audit.Introspection, Step: audit.IntrospectionStep, Outcome: "inactive", DataProvider: dp.ClientID}
	if g != nil && res["active"] == true {
		ev.Outcome, ev.SP, ev.IdP, ev.ACR, ev.Account = "ok", g.ClientID, g.IdP, g.ACR, p.account(g.Identity)
		if s, _ := res["scope"].(string); s != "" {
			ev.Scopes = strings.Fields(s)
		}
	}
	p.record(r, ev)
}

// account is the person's audit id: a keyed hash of the pivot identity,
// the same at every IdP and SP, never reversible without the key.
func (p *Platform) account(id identity.Identity) string {
	m := hmac.New(sha256.New, p.subSecret)
	m.Write([]byte("sesame audit account\x00"))
	m.Write(id.Hash())
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// record sends an event to the audit sinks, with the request's context.
func (p *Platform) record(r *http.Request, e audit.Event) {
	e.Platform, e.CorrelationID, e.ClientIP = p.cfg.ID, web.CorrelationID(r.Context()), p.clientIP(r)
	p.audit.Record(r.Context(), e)
}

// revoke is token revocation (RFC 7009): an SP revokes one of its access
// tokens; introspection then says inactive and userinfo refuses it. The
// answer is 200 whatever the token was, so that it tells nothing.
func (p *Platform) revoke(w http.ResponseWriter, r *http.Request) {
	ip := p.clientIP(r)
	if blocked, left := p.blocked.blocked(ip); blocked {
		p.tooManyTokens(w, r, "too many failed client authentications from this source", left)
		return
	}
	sp, form, jti, oerr := p.authenticateClient(w, r)
	if oerr == nil {
		oerr = p.spend(r, jti)
	}
	if oerr != nil {
		p.authFailed(w, r, ip, oerr)
		return
	}
	token := form.Get("token")
	if token == "" {
		p.tokenError(w, r, oidcerr.New(oidcerr.InvalidRequest, "token is required"))
		return
	}
	outcome := "unknown"
	var g grant
	switch err := p.sessions.Token(r.Context(), token, &g); {
	case err == nil && g.ClientID == sp.ClientID:
		if err := p.sessions.DeleteToken(r.Context(), session.TokenRef(token)); err != nil {
			p.tokenError(w, r, storeOAuthError(err))
			return
		}
		outcome = "ok"
	case err != nil && !errors.Is(err, session.ErrNotFound) && !errors.Is(err, session.ErrCorrupt):
		p.tokenError(w, r, storeOAuthError(err))
		return
	case err == nil:
		outcome = "another_client"
	}
	p.record(r, audit.Event{Name: audit.Revocation, Step: audit.RevocationStep, Outcome: outcome, SP: sp.ClientID})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
