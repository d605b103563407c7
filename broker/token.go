package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/keys"
)

// token is step 6: the SP redeems its code.
func (p *Platform) token(w http.ResponseWriter, r *http.Request) {
	sp, form, proof, ok := p.clientCall(w, r, "/token", func(e *oidcerr.Error) { p.tokenError(w, r, e) })
	if !ok {
		return
	}
	// Counted after authentication: only the client itself spends its
	// budget, a stranger naming it cannot.
	if ok, left := p.limit(r.Context(), "token", sp.ClientID, p.cfg.RateLimits.TokenPerClient); !ok {
		p.tooManyTokens(w, r, "too many token requests for this client", left)
		return
	}
	// The proof's jti was spent before the code, so a replayed proof
	// costs no code.
	jkt := ""
	switch {
	case proof != nil:
		jkt = proof.JKT
	case p.cfg.RequiresDPoP():
		p.tokenError(w, r, oidcerr.New(oidcerr.InvalidRequest, "this platform binds access tokens to a DPoP key: send a DPoP proof"))
		return
	}
	if gt := form.Get("grant_type"); gt != "authorization_code" {
		if gt == "" {
			p.tokenError(w, r, oidcerr.New(oidcerr.InvalidRequest, "grant_type is required"))
			return
		}
		p.tokenError(w, r, oidcerr.New(oidcerr.UnsupportedGrantType, "only authorization_code is supported"))
		return
	}
	code := form.Get("code")
	if code == "" || len(code) > 128 {
		p.tokenError(w, r, oidcerr.New(oidcerr.InvalidRequest, "code is missing or invalid"))
		return
	}
	// The code is read, checked, then spent on its token in one write; a
	// check that fails spends it too.
	var g grant
	raw, spentOn, err := p.sessions.Code(r.Context(), code, &g)
	if err != nil {
		if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrCorrupt) {
			p.revokeReplayed(r, code, spentOn)
			p.tokenError(w, r, errCodeUsed())
			return
		}
		p.tokenError(w, r, storeOAuthError(err))
		return
	}
	oerr := checkGrant(&g, sp, form)
	// A code bound to a DPoP key at PAR (or by dpop_jkt) is redeemed
	// with that key only; the token is bound to the proof's key.
	if oerr == nil && g.JKT != "" && g.JKT != jkt {
		oerr = oidcerr.New(oidcerr.InvalidGrant, "the DPoP key differs from the one the authorization request was bound to")
	}
	if oerr != nil {
		if err := p.sessions.DropCode(r.Context(), code); err != nil {
			p.log.WarnContext(r.Context(), "spend a refused code", "err", err)
		}
		p.tokenError(w, r, oerr)
		return
	}
	g.JKT = jkt
	tokenType := "Bearer"
	if jkt != "" {
		tokenType = "DPoP"
	}

	atTTL := p.accessTokenTTL()
	now := time.Now().UTC().Truncate(time.Second)
	g.IssuedAt, g.Expiry, g.JTI = now, now.Add(atTTL), session.NewID()[:22]
	// The token, and the code spent on it: its key then names the token,
	// so that a replay of the code revokes it (RFC 6749 §4.1.2). One
	// round trip, one write; of parallel redemptions one wins.
	accessToken, rec, err := p.sessions.NewToken(g.SID, g.ClientID, &g, atTTL)
	var won bool
	if err == nil {
		won, err = p.sessions.SpendCode(r.Context(), code, raw, session.TokenRef(accessToken), atTTL, rec)
	}
	if err != nil {
		p.tokenError(w, r, storeOAuthError(err))
		return
	}
	if !won {
		// Another redemption of this code won meanwhile: a replay.
		_, spentOn, _ := p.sessions.Code(r.Context(), code, &grant{})
		p.revokeReplayed(r, code, spentOn)
		p.tokenError(w, r, errCodeUsed())
		return
	}
	idToken, err := p.idToken(r.Context(), sp, &g, accessToken)
	if err != nil {
		p.tokenError(w, r, oidcerr.New(oidcerr.ServerError, "internal error").WithCause(err))
		return
	}
	p.record(r, audit.Event{Name: audit.TokenIssued, Step: audit.TokenIssuedStep, Outcome: "ok", LoginID: g.LoginID,
		SP: g.ClientID, Scopes: g.Scopes, ACR: g.ACR, Account: p.account(g.Identity)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": accessToken,
		"token_type":   tokenType,
		"expires_in":   int(atTTL.Seconds()),
		"id_token":     idToken,
		"scope":        strings.Join(g.Scopes, " "),
	})
}

// authFailed answers a failed client authentication, after counting it
// against its source and against the client it named. A source over its
// limit is blocked for the rest of the window; failures for one client
// over its limit get 429 and a warning, but never stop the client's own
// requests, which authenticate.
func (p *Platform) authFailed(w http.ResponseWriter, r *http.Request, ip string, oerr *oidcerr.Error) {
	limits := p.cfg.RateLimits
	if ok, left := p.limit(r.Context(), "tokfail-ip", ip, limits.TokenFailuresPerIP); !ok {
		p.blocked.block(ip, left)
		p.tooManyTokens(w, r, "too many failed client authentications from this source", left)
		return
	}
	if id := claimedClient(r); id != "" {
		if ok, left := p.limit(r.Context(), "tokfail-client", id, limits.TokenFailuresPerClient); !ok {
			p.log.WarnContext(r.Context(), "many failed authentications for one client", "client_id", safeCode(id))
			p.tooManyTokens(w, r, "too many failed authentications for this client", left)
			return
		}
	}
	p.tokenError(w, r, oerr)
}

// claimedClient is the client_id a token request names (Basic or form),
// cut to at most 256 bytes. The form has been parsed by then.
func claimedClient(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		return trim(id)
	}
	return trim(r.PostForm.Get("client_id"))
}

func trim(s string) string {
	if len(s) > 256 {
		return s[:256]
	}
	return s
}

// secretEqual compares in constant time; hashing first makes the time
// independent of the lengths too.
func secretEqual(given, want string) bool {
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// checkGrant binds the code to the client, the redirect_uri and the PKCE
// challenge of the authorization request.
func checkGrant(g *grant, sp *config.SP, form url.Values) *oidcerr.Error {
	if g.ClientID != sp.ClientID {
		return oidcerr.New(oidcerr.InvalidGrant, "the code was issued to another client")
	}
	if form.Get("redirect_uri") != g.RedirectURI {
		return oidcerr.New(oidcerr.InvalidGrant, "redirect_uri differs from the authorization request")
	}
	verifier := form.Get("code_verifier")
	switch {
	case g.CodeChallenge == "" && verifier != "":
		return oidcerr.New(oidcerr.InvalidGrant, "code_verifier sent but no code_challenge was given")
	case g.CodeChallenge != "" && verifier == "":
		return oidcerr.New(oidcerr.InvalidGrant, "code_verifier is required")
	case g.CodeChallenge != "":
		sum := sha256.Sum256([]byte(verifier))
		if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.CodeChallenge)) != 1 {
			return oidcerr.New(oidcerr.InvalidGrant, "code_verifier does not match the code_challenge")
		}
	}
	return nil
}

// errCodeUsed answers a code that is unknown, expired or spent.
func errCodeUsed() *oidcerr.Error {
	return oidcerr.New(oidcerr.InvalidGrant, "the code is invalid, expired or already used")
}

// revokeReplayed revokes the access token a replayed code was spent on:
// spentOn, read from the code's key, or, for a code spent by a broker
// of an earlier version, the marker it wrote beside the code.
func (p *Platform) revokeReplayed(r *http.Request, code, spentOn string) {
	at := spentOn
	if at == "" {
		var err error
		if at, err = p.sessions.GetMarker(r.Context(), "spent", code); err != nil {
			return
		}
	}
	if err := p.sessions.DeleteToken(r.Context(), at); err != nil {
		p.log.WarnContext(r.Context(), "revoke token of replayed code", "err", err)
		return
	}
	p.log.WarnContext(r.Context(), "code replayed: its access token was revoked")
}

// accessTokenTTL is how long access tokens live on this platform.
func (p *Platform) accessTokenTTL() time.Duration { return p.cfg.AccessTokenTTL.D(60 * time.Second) }

func (p *Platform) tokenError(w http.ResponseWriter, r *http.Request, e *oidcerr.Error) {
	p.metrics.oauthError(p.cfg.ID, "token", e.Code)
	p.log.InfoContext(r.Context(), "token refused", "error", e.Code, "description", e.Description, "cause", e.Cause)
	e.WriteJSON(w)
}

// idClaims is our id_token.
type idClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	AuthTime int64    `json:"auth_time"`
	Nonce    string   `json:"nonce,omitempty"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr,omitempty"`
	AtHash   string   `json:"at_hash"`
	SID      string   `json:"sid,omitempty"`
	// Account and IdPID go to the citizen space only (see grant).
	Account string `json:"sesame_account,omitempty"`
	IdPID   string `json:"idp_id,omitempty"`
}

func (p *Platform) idToken(ctx context.Context, sp *config.SP, g *grant, accessToken string) (string, error) {
	alg := jose.SignatureAlgorithm(sp.IDTokenSignedResponseAlg)
	atHash, err := keys.HalfHash(alg, accessToken)
	if err != nil {
		return "", err
	}
	now := time.Now()
	c := idClaims{
		Issuer: p.cfg.Issuer, Subject: g.Sub, Audience: sp.ClientID,
		Expiry: now.Add(p.cfg.IDTokenTTL.D(60 * time.Second)).Unix(), IssuedAt: now.Unix(),
		AuthTime: g.AuthTime.Unix(), Nonce: g.Nonce, ACR: g.ACR, AtHash: atHash, SID: g.SID,
	}
	if g.Account != "" {
		c.Account, c.IdPID = g.Account, g.IdP
	}
	// amr only when the SP asked for it through the claims parameter, as
	// FranceConnect does.
	if slices.Contains(g.IDTokenClaims, "amr") {
		c.AMR = g.AMR
	}
	jws, err := p.signer.SignJWT(alg, "JWT", c)
	if err != nil {
		return "", err
	}
	return p.encryptFor(ctx, sp, jws, sp.IDTokenEncryptedResponseAlg, sp.IDTokenEncryptedResponseEnc)
}
