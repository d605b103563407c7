package demosp

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"golang.org/x/oauth2"
)

// idClaims are the id_token claims the demo SP checks or shows.
type idClaims struct {
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime float64  `json:"auth_time"` // NumericDate may have a fraction
}

// callback finishes the login. Each check is one the FranceConnect
// documentation asks of integrators; they run in the order the protocol
// defines them, and the first that fails ends the flow on an explicit page.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()

	// Take-once: whatever happens next, this transaction cannot be replayed,
	// so a reload or a second callback fails cleanly instead of half-working.
	handle := cookieValue(r, txCookie)
	a.clearCookie(w, txCookie)
	tx, ok := a.txs.take(handle)
	if handle == "" || !ok || tx.Logout {
		a.fail(w, r, errNoTransaction)
		return
	}
	if !equal(q.Get("state"), tx.State) {
		a.fail(w, r, errState)
		return
	}

	d, err := a.discover(r)
	if err != nil {
		a.failUpstream(w, r, errUnavailable, err)
		return
	}
	// RFC 9207: the iss parameter defends against mix-up attacks, where a
	// response from another issuer is replayed to this callback.
	iss, hasISS := q["iss"]
	if (hasISS && (len(iss) != 1 || iss[0] != a.cfg.Issuer)) || (!hasISS && d.issRequired) {
		a.fail(w, r, errIssuer)
		return
	}

	if code := q.Get("error"); code != "" {
		a.failProvider(w, r, code, q.Get("error_description"))
		return
	}
	code := q.Get("code")
	if code == "" {
		a.fail(w, r, errNoCode)
		return
	}

	ctx := a.ctx(r)
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(tx.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			a.failUpstream(w, r, errInvalidGrant, err)
			return
		}
		a.failUpstream(w, r, errExchange, err)
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		a.failUpstream(w, r, errIDToken, errors.New("no id_token in the token response"))
		return
	}
	idt, err := d.verifier.Verify(ctx, rawID)
	if err != nil {
		a.failUpstream(w, r, errIDToken, err)
		return
	}
	if !equal(idt.Nonce, tx.Nonce) {
		a.fail(w, r, errNonce)
		return
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			a.failUpstream(w, r, errIDToken, err)
			return
		}
	}
	var claims idClaims
	var rawClaims json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		a.failUpstream(w, r, errIDToken, err)
		return
	}
	_ = idt.Claims(&rawClaims) // cannot fail once the line above did not
	if !acrSatisfies(claims.ACR, tx.ACR) {
		a.failACR(w, r, tx.ACR, claims.ACR)
		return
	}

	// UserInfo verifies a signed (application/jwt) answer against the
	// provider's JWKS itself, and decodes a plain JSON one.
	ui, err := d.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		a.failUpstream(w, r, errUserInfo, err)
		return
	}
	// OIDC Core 5.3.2: a userinfo answer about someone else must be ignored,
	// or a substituted token could graft another identity onto this login.
	if ui.Subject != idt.Subject {
		a.failUpstream(w, r, errUserInfo, errors.New("userinfo sub differs from the id_token sub"))
		return
	}
	var rawUserInfo json.RawMessage
	if err := ui.Claims(&rawUserInfo); err != nil {
		a.failUpstream(w, r, errUserInfo, err)
		return
	}
	if err := a.checkUserInfoAudience(rawUserInfo); err != nil {
		a.failUpstream(w, r, errUserInfo, err)
		return
	}

	a.startSession(w, r, session{
		IDToken:  rawID,
		Subject:  idt.Subject,
		ACR:      claims.ACR,
		AskedACR: tx.ACR,
		AMR:      claims.AMR,
		AuthTime: claims.AuthTime,
		Claims:   rawClaims,
		UserInfo: rawUserInfo,
	})
	http.Redirect(w, r, "/me", http.StatusSeeOther)
}

// equal compares secrets in constant time; an empty value never matches, so
// a missing state cannot match a missing transaction.
func equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// checkUserInfoAudience applies OIDC Core 5.3.2 to a signed userinfo: go-oidc
// checks its signature only, so iss and aud, when present, are checked here;
// a token meant for another client must not feed this one.
func (a *App) checkUserInfoAudience(raw json.RawMessage) error {
	var c struct {
		Issuer   *string         `json:"iss"`
		Audience json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return err
	}
	if c.Issuer != nil && *c.Issuer != a.cfg.Issuer {
		return errors.New("userinfo iss is not the issuer")
	}
	if len(c.Audience) == 0 {
		return nil
	}
	var one string
	var many []string
	if json.Unmarshal(c.Audience, &one) == nil {
		many = []string{one}
	} else if err := json.Unmarshal(c.Audience, &many); err != nil {
		return errors.New("userinfo aud is neither a string nor a list")
	}
	if !slices.Contains(many, a.cfg.ClientID) {
		return errors.New("userinfo aud does not name this client")
	}
	return nil
}
