package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/internal/web"
)

// The space is a relying party of the broker's standard platform, built on
// go-oidc and x/oauth2 as any SP's integration is: authorization code with
// PKCE S256, state and nonce, iss checked (RFC 9207), prompt=login always.

// loginACR is the level the space asks: the standard platform's.
const loginACR = "eidas1"

// authTimeLeeway is the clock skew allowed between the space and the
// broker when checking that the citizen authenticated after the login
// began.
const authTimeLeeway = 2 * time.Minute

// returnPages are the pages a login may return to (?retour=): an
// allow-list, so the parameter can never send anyone elsewhere.
var returnPages = []string{"/", "/historique", "/comptes"}

// brokerClient is the space's registration at the broker, and what it
// learned from the broker's discovery document.
type brokerClient struct {
	issuer, clientID, secret, redirect string
	scopes                             []string
	client                             *http.Client

	mu   sync.Mutex
	disc *discovery
}

// discovery is what the broker's metadata says.
type discovery struct {
	provider    *oidc.Provider
	oauth       *oauth2.Config
	verifier    *oidc.IDTokenVerifier
	endSession  string
	issRequired bool
}

// ctx carries the space's HTTP client to go-oidc and x/oauth2, which read
// it from the context; without it they would use http.DefaultClient,
// which has no timeout.
func (b *brokerClient) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, b.client)
}

// discover fetches the broker's metadata on first need and keeps it once
// it succeeded; a failure is not kept, so the next request tries again.
func (b *brokerClient) discover(ctx context.Context) (*discovery, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.disc != nil {
		return b.disc, nil
	}
	prov, err := oidc.NewProvider(b.ctx(ctx), b.issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", b.issuer, err)
	}
	var meta struct {
		EndSession  string   `json:"end_session_endpoint"`
		ISSResponse bool     `json:"authorization_response_iss_parameter_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := prov.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", b.issuer, err)
	}
	ep := prov.Endpoint()
	// x/oauth2's auto-detection retries a failed exchange with the other
	// method; a spent code cannot be retried, so pick the one the broker
	// says it takes.
	switch {
	case slices.Contains(meta.AuthMethods, "client_secret_basic"):
		ep.AuthStyle = oauth2.AuthStyleInHeader
	case slices.Contains(meta.AuthMethods, "client_secret_post"):
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	b.disc = &discovery{
		provider: prov,
		oauth: &oauth2.Config{ClientID: b.clientID, ClientSecret: b.secret, Endpoint: ep,
			RedirectURL: b.redirect, Scopes: b.scopes},
		verifier:    prov.Verifier(&oidc.Config{ClientID: b.clientID, SupportedSigningAlgs: []string{oidc.ES256, oidc.RS256}}),
		endSession:  meta.EndSession,
		issRequired: meta.ISSResponse,
	}
	return b.disc, nil
}

// issuerMatches is RFC 9207's check: a response from another issuer
// replayed to this callback (a mix-up attack) is refused.
func (d *discovery) issuerMatches(q url.Values, issuer string) bool {
	iss, has := q["iss"]
	if !has {
		return !d.issRequired
	}
	return len(iss) == 1 && iss[0] == issuer
}

// login starts a login at the broker. Its secrets (state, nonce, PKCE
// verifier) are sealed in a cookie of this browser, which the callback
// takes once.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	d, err := a.broker.discover(r.Context())
	if err != nil {
		a.failWith(w, r, errBrokerDown, err)
		return
	}
	now := a.now()
	tx := transaction{
		State: randomString(32), Nonce: randomString(32), Verifier: oauth2.GenerateVerifier(),
		Return: returnPath(r.URL.Query().Get("retour")), Started: now.Unix(), Expires: now.Add(txTTL).Unix(),
	}
	if err := a.writeSealed(w, txCookie, tx, txTTL); err != nil {
		a.failWith(w, r, web.ErrInternal, err)
		return
	}
	dest := d.oauth.AuthCodeURL(tx.State,
		oidc.Nonce(tx.Nonce),
		oauth2.S256ChallengeOption(tx.Verifier),
		// The citizen authenticates again to open their space, even with
		// a session at the broker: the space shows their whole trail.
		oauth2.SetAuthURLParam("prompt", "login"),
		oauth2.SetAuthURLParam("acr_values", loginACR),
		oauth2.SetAuthURLParam("ui_locales", langOf(r)),
	)
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// returnPath keeps p if it is one of returnPages.
func returnPath(p string) string {
	if slices.Contains(returnPages, p) {
		return p
	}
	return "/"
}

// idClaims are the id_token claims the space needs beyond go-oidc's.
type idClaims struct {
	Account  string `json:"sesame_account"`
	IdP      string `json:"idp_id"`
	AuthTime int64  `json:"auth_time"`
}

// userClaims are the userinfo claims the space shows or uses.
type userClaims struct {
	GivenName string `json:"given_name"`
	Email     string `json:"email"`
	Account   string `json:"sesame_account"`
}

// callback finishes the login. Each check is one the protocol asks of a
// relying party, in its order; the first that fails ends the login on an
// explicit page, and no session is made.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tx, ok := a.takeTransaction(w, r)
	if !ok {
		a.fail(w, r, errNoTransaction)
		return
	}
	if !equal(q.Get("state"), tx.State) {
		a.fail(w, r, errState)
		return
	}
	d, err := a.broker.discover(r.Context())
	if err != nil {
		a.failWith(w, r, errBrokerDown, err)
		return
	}
	if !d.issuerMatches(q, a.cfg.Issuer) {
		a.fail(w, r, errIssuer)
		return
	}
	if e := q.Get("error"); e != "" {
		a.log.InfoContext(r.Context(), "dashboard: the broker answered an error", "code", codeBrokerError,
			"error", e, "correlation_id", web.CorrelationID(r.Context()))
		a.fail(w, r, brokerError(e))
		return
	}
	code := q.Get("code")
	if code == "" {
		a.fail(w, r, errNoCode)
		return
	}
	ctx := a.broker.ctx(r.Context())
	tok, err := d.oauth.Exchange(ctx, code, oauth2.VerifierOption(tx.Verifier))
	if err != nil {
		a.failWith(w, r, errExchange, fmt.Errorf("code exchange: %w", err))
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := d.verifier.Verify(ctx, rawID)
	if err != nil {
		a.failWith(w, r, errIDToken, fmt.Errorf("id_token: %w", err))
		return
	}
	if !equal(idt.Nonce, tx.Nonce) {
		a.fail(w, r, errNonce)
		return
	}
	if err := verifyAtHash(idt, tok.AccessToken); err != nil {
		a.failWith(w, r, errIDToken, err)
		return
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		a.failWith(w, r, errIDToken, fmt.Errorf("id_token claims: %w", err))
		return
	}
	if c.Account == "" || c.IdP == "" {
		a.failWith(w, r, errClaims, errors.New("the id_token has no sesame_account or idp_id: is the SP registered with citizen_space: true?"))
		return
	}
	if time.Unix(c.AuthTime, 0).Before(time.Unix(tx.Started, 0).Add(-authTimeLeeway)) {
		a.failWith(w, r, errStaleLogin, fmt.Errorf("auth_time %d is before the login began (%d): prompt=login was not honoured", c.AuthTime, tx.Started))
		return
	}
	ui, err := d.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		a.failWith(w, r, errUserInfo, fmt.Errorf("userinfo: %w", err))
		return
	}
	var uc userClaims
	// OIDC Core 5.3.2: a userinfo answer about someone else must be
	// ignored, or a substituted token could graft another person's
	// details onto this history.
	if err := ui.Claims(&uc); err != nil || ui.Subject != idt.Subject || (uc.Account != "" && uc.Account != c.Account) {
		a.failWith(w, r, errUserInfo, fmt.Errorf("userinfo is not about the id_token's person (or unreadable: %v)", err))
		return
	}
	s := session{Account: c.Account, IdP: c.IdP, GivenName: uc.GivenName, Email: uc.Email, IDToken: rawID,
		CSRF: randomString(32), Expires: a.now().Add(sessionTTL).Unix()}
	if err := a.writeSealed(w, sessionCookie, s, sessionTTL); err != nil {
		a.failWith(w, r, web.ErrInternal, err)
		return
	}
	http.Redirect(w, r, tx.Return, http.StatusSeeOther)
}

// verifyAtHash checks the id_token's at_hash, when it has one, against
// the access token the same answer carried.
func verifyAtHash(idt *oidc.IDToken, accessToken string) error {
	if idt.AccessTokenHash == "" {
		return nil
	}
	if err := idt.VerifyAccessToken(accessToken); err != nil {
		return fmt.Errorf("id_token at_hash: %w", err)
	}
	return nil
}

// takeTransaction reads the login's cookie and clears it: whatever happens
// next, the transaction cannot be replayed, so a reload or a second
// callback fails cleanly.
func (a *App) takeTransaction(w http.ResponseWriter, r *http.Request) (transaction, bool) {
	var tx transaction
	ok := a.readSealed(r, txCookie, &tx)
	a.clearCookie(w, txCookie)
	if !ok || tx.State == "" || a.now().Unix() >= tx.Expires {
		return transaction{}, false
	}
	tx.Return = returnPath(tx.Return)
	return tx, true
}

// logout ends the session here first, then sends the browser to the
// broker's end_session_endpoint (RP-initiated logout), which comes back
// to the landing page: if the broker is down, the citizen is at least
// logged out of the space.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	s, ok := a.currentSession(r)
	if !ok {
		a.clearCookie(w, sessionCookie)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !a.checkForm(w, r, s.CSRF) {
		return
	}
	a.clearCookie(w, sessionCookie)
	d, err := a.broker.discover(r.Context())
	if err == nil && d.endSession == "" {
		err = errors.New("the broker advertises no end_session_endpoint")
	}
	var dest *url.URL
	if err == nil {
		dest, err = url.Parse(d.endSession)
	}
	if err != nil {
		a.log.WarnContext(r.Context(), "dashboard: logged out of the space only", "err", err,
			"correlation_id", web.CorrelationID(r.Context()))
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	q := dest.Query()
	q.Set("id_token_hint", s.IDToken)
	q.Set("post_logout_redirect_uri", a.cfg.BaseURL+"/")
	q.Set("client_id", a.cfg.ClientID)
	dest.RawQuery = q.Encode()
	http.Redirect(w, r, dest.String(), http.StatusSeeOther)
}
