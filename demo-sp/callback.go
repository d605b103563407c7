package demosp

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"

	"golang.org/x/oauth2"
)

// idClaims are the id_token claims the demo SP checks or shows.
type idClaims struct {
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime float64  `json:"auth_time"` // NumericDate may have a fraction
}

// callback finishes the login, on the platform the transaction was started
// on: both platforms share this URL, so the transaction, not the URL, says
// which issuer, client and rules apply. Each check is one the FranceConnect
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
		// The Back button after a login brings the broker's answer to a
		// spent transaction: someone already signed in here goes back to
		// their page, not to an error.
		if _, in := a.currentSession(r); in && q.Get("code") == "" {
			http.Redirect(w, r, "/me", http.StatusSeeOther)
			return
		}
		a.fail(w, r, errNoTransaction)
		return
	}
	if !equal(q.Get("state"), tx.State) {
		a.fail(w, r, errState)
		return
	}
	p, ok := a.platform(tx.Platform)
	if !ok {
		a.fail(w, r, errNoTransaction)
		return
	}

	d, err := a.discover(r, p)
	if err != nil {
		a.failUpstream(w, r, errUnavailable, err)
		return
	}
	// RFC 9207: the iss parameter defends against mix-up attacks, where a
	// response from another issuer (the other platform, say) is replayed to
	// this callback.
	iss, hasISS := q["iss"]
	if (hasISS && (len(iss) != 1 || iss[0] != p.issuer)) || (!hasISS && d.issRequired) {
		a.fail(w, r, errIssuer)
		return
	}

	if code := q.Get("error"); code != "" {
		a.failProvider(w, r, code)
		return
	}
	code := q.Get("code")
	if code == "" {
		a.fail(w, r, errNoCode)
		return
	}

	ctx := a.ctx(r)
	tok, err := a.exchange(ctx, p, d, code, tx.Verifier)
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
	idt, signedID, idJWE, err := a.verifyIDToken(ctx, p, d, rawID)
	if err != nil {
		a.failUpstream(w, r, cryptoPage(err, errIDToken), err)
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

	ui, err := a.userInfo(ctx, p, d, tok)
	if err != nil {
		a.failUpstream(w, r, cryptoPage(err, errUserInfo), err)
		return
	}
	// OIDC Core 5.3.2: a userinfo answer about someone else must be ignored,
	// or a substituted token could graft another identity onto this login.
	if ui.subject != idt.Subject {
		a.failUpstream(w, r, errUserInfo, errors.New("userinfo sub differs from the id_token sub"))
		return
	}

	// The token lives 60 s: the data providers are called now, and /me
	// shows what they answered, however late it is read.
	data := a.fetchData(r.Context(), p, tok)

	a.startSession(w, r, p, session{
		Platform:    p.id,
		IDToken:     signedID,
		Subject:     idt.Subject,
		ACR:         claims.ACR,
		AskedACR:    tx.ACR,
		AMR:         claims.AMR,
		AuthTime:    claims.AuthTime,
		Claims:      rawClaims,
		UserInfo:    ui.claims,
		IDTokenJWE:  idJWE,
		UserInfoJWE: ui.jwe,
		UserInfoJWT: ui.signed,
		Data:        data,
	})
	http.Redirect(w, r, "/me", http.StatusSeeOther)
}

// equal compares secrets in constant time; an empty value never matches, so
// a missing state cannot match a missing transaction.
func equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
