// Package upstream is the broker acting as a relying party toward one
// identity provider. It is built on go-oidc's discovery and ID token
// verifier and on x/oauth2; no JOSE is hand-written here.
package upstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/broker/acr"
	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/circuit"
)

// Errors the broker maps to pages and codes.
var (
	// ErrUnavailable: discovery, the token call or userinfo failed or
	// timed out; another IdP may work.
	ErrUnavailable = errors.New("upstream: identity provider unavailable")
	// ErrRejected: the IdP answered, but what it sent fails a check
	// (signature, iss, aud, nonce, sub mismatch…).
	ErrRejected = errors.New("upstream: identity provider response rejected")
)

// wellKnown is the discovery path go-oidc appends to a base URL.
const wellKnown = "/.well-known/openid-configuration"

// maxBody bounds what we read from an IdP, so a huge or endless body
// costs bounded memory.
const maxBody = 1 << 20

// Provider is one upstream IdP.
type Provider struct {
	cfg         config.IdP
	redirectURL string
	postLogout  string
	client      *http.Client
	leeway      time.Duration

	mu       sync.Mutex
	op       *oidc.Provider
	meta     metadata
	verifier *oidc.IDTokenVerifier
	failedAt time.Time
	backoff  time.Duration
	// failReason is why the last discovery failed, in words fit for
	// /readyz: never the IdP's own text.
	failReason string
	// probedAt is when Status last started a background check, and
	// probeReason why the discovery document, once discovery succeeded,
	// could not be fetched at the last check ("" when it could).
	probedAt    time.Time
	probeReason string
	// checking is set while Status's background check runs, so that
	// probes arriving together start one.
	checking atomic.Bool

	circuit *circuit.Breaker
}

// metadata is what we read from discovery beyond go-oidc's fields.
type metadata struct {
	EndSession  string   `json:"end_session_endpoint"`
	IssParam    bool     `json:"authorization_response_iss_parameter_supported"`
	Algs        []string `json:"id_token_signing_alg_values_supported"`
	AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
}

// New prepares a provider; discovery happens on first use and is retried
// with backoff, so the broker starts even when an IdP is down.
func New(cfg config.IdP, redirectURL, postLogoutURL string, leeway time.Duration) *Provider {
	timeout := cfg.Timeout.D(6 * time.Second)
	return &Provider{
		cfg:         cfg,
		circuit:     circuit.New(cfg.CircuitFailures, cfg.CircuitCooldown.D(0), cfg.CircuitProbeTimeout.D(0)),
		redirectURL: redirectURL,
		postLogout:  postLogoutURL,
		leeway:      leeway,
		client: &http.Client{
			Timeout:   timeout,
			Transport: limitedTransport{idpTransport},
			// An IdP's token or userinfo endpoint has no business
			// redirecting us elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Config returns the IdP's registry entry.
func (p *Provider) Config() config.IdP { return p.cfg }

func (p *Provider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, p.client)
}

// discover returns the provider, fetching discovery when needed. After a
// failure it waits (1 s doubling to 1 min) before trying again, so a dead
// IdP does not slow every login on the chooser.
func (p *Provider) discover(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, metadata, error) {
	return p.discoverAs(ctx, false)
}

// discoverAs is discover; a probe's failure (see Status) is recorded for
// /readyz but does not start the backoff, which would refuse logins for
// a probe's sake (a broker probed before its IdPs are up, say).
func (p *Provider) discoverAs(ctx context.Context, probe bool) (*oidc.Provider, *oidc.IDTokenVerifier, metadata, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.op != nil {
		return p.op, p.verifier, p.meta, nil
	}
	if !probe && !p.failedAt.IsZero() && time.Since(p.failedAt) < p.backoff {
		return nil, nil, metadata{}, fmt.Errorf("%w: discovery of %s failed recently", ErrUnavailable, p.cfg.ID)
	}
	// With a separate discovery URL, go-oidc fetches from its base and
	// still requires the document's issuer to be the configured one.
	dctx, base := p.ctx(ctx), p.cfg.Issuer
	if p.cfg.DiscoveryURL != "" {
		dctx = oidc.InsecureIssuerURLContext(dctx, p.cfg.Issuer)
		base = strings.TrimSuffix(p.cfg.DiscoveryURL, wellKnown)
	}
	op, err := oidc.NewProvider(dctx, base)
	if err != nil {
		p.failReason = discoveryReason(err)
		if !probe {
			p.failedAt = time.Now()
			p.backoff = min(max(2*p.backoff, time.Second), time.Minute)
		}
		return nil, nil, metadata{}, fmt.Errorf("%w: discovery of %s: %w", ErrUnavailable, p.cfg.ID, err)
	}
	var meta metadata
	if err := op.Claims(&meta); err != nil {
		p.failReason = "invalid discovery document"
		return nil, nil, metadata{}, fmt.Errorf("%w: discovery of %s: %w", ErrRejected, p.cfg.ID, err)
	}
	// Accept only asymmetric algorithms the IdP advertises: never none,
	// never HS256 (which would let the public key act as a MAC secret).
	algs := []string{}
	for _, a := range meta.Algs {
		if slices.Contains([]string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{oidc.RS256}
	}
	p.op, p.meta = op, meta
	p.verifier = op.Verifier(&oidc.Config{
		ClientID:             p.cfg.ClientID,
		SupportedSigningAlgs: algs,
		Now:                  func() time.Time { return time.Now().Add(-p.leeway) },
	})
	p.failedAt, p.backoff, p.failReason = time.Time{}, 0, ""
	return p.op, p.verifier, p.meta, nil
}

// statusEvery is how often Status checks an IdP in the background: a
// probe every few seconds from each orchestrator costs the IdP one
// request per replica per statusEvery at most.
const statusEvery = 10 * time.Second

// Status is the IdP's health as /readyz reports it: "ok", or why not
// ("discovery failing: timeout"), or that its circuit is open or it is
// switched off in config. It never waits for the IdP: every statusEvery
// at most it starts a check in the background (discovery, or once
// discovered a fetch of the discovery document, which shows an IdP gone
// down since) and reports the last check's outcome, "discovery pending"
// before the first. So a probe neither slows readiness nor holds up a
// login waiting on the same discovery, and its failures never delay a
// login (see discoverAs).
func (p *Provider) Status() string {
	switch {
	case !p.cfg.IsActive():
		return "switched off"
	case p.circuit.Open():
		return "circuit open after repeated outages"
	}
	if !p.mu.TryLock() {
		return "discovery pending"
	}
	discovered, reason := p.op != nil, p.failReason
	if discovered {
		reason = p.probeReason
	}
	if time.Since(p.probedAt) >= statusEvery && p.checking.CompareAndSwap(false, true) {
		p.probedAt = time.Now()
		go p.check(discovered)
	}
	p.mu.Unlock()
	switch {
	case reason != "":
		return "discovery failing: " + reason
	case discovered:
		return "ok"
	}
	return "discovery pending"
}

// check is Status's background check.
func (p *Provider) check(discovered bool) {
	defer p.checking.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), p.client.Timeout)
	defer cancel()
	if !discovered {
		_, _, _, _ = p.discoverAs(ctx, true)
		return
	}
	reason := ""
	u := p.cfg.DiscoveryURL
	if u == "" {
		u = strings.TrimSuffix(p.cfg.Issuer, "/") + wellKnown
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = p.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				reason = "HTTP " + strconv.Itoa(resp.StatusCode)
			}
		}
	}
	if err != nil {
		reason = discoveryReason(err)
	}
	p.mu.Lock()
	p.probeReason = reason
	p.mu.Unlock()
}

// discoveryReason sorts a discovery error into words that carry no
// upstream text (go-oidc quotes the IdP's body in its errors).
func discoveryReason(err error) string {
	var ne net.Error
	var mismatch *oidc.IssuerMismatchError
	var opErr *net.OpError
	var urlErr *url.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &mismatch):
		return "issuer mismatch"
	case errors.As(err, &opErr) || errors.As(err, &urlErr):
		// Refused, reset, dropped, no such host: no HTTP answer.
		return "unreachable"
	}
	// go-oidc's "<status>: <body>" for a non-200 answer.
	if code, _, ok := strings.Cut(err.Error(), " "); ok && len(code) == 3 && code[0] >= '1' && code[0] <= '5' {
		if _, err := strconv.Atoi(code); err == nil {
			return "HTTP " + code
		}
	}
	return "invalid discovery document"
}

func (p *Provider) oauth2Config(op *oidc.Provider, meta metadata) *oauth2.Config {
	// A fixed auth style: left to auto-detect, x/oauth2 retries a failed
	// (or timed-out) token call with the other style, spending the
	// single-use code on a request that can only fail.
	ep := op.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") && slices.Contains(meta.AuthMethods, "client_secret_post") {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.cfg.ClientSecret,
		Endpoint:     ep,
		RedirectURL:  p.redirectURL,
		Scopes:       p.cfg.Scopes,
	}
}

// AuthCodeURL builds the authorization request for one trip. prompt=login
// always: the citizen authenticates at the IdP for this login, so the IdP's
// own SSO never stands in for the level asked.
func (p *Provider) AuthCodeURL(ctx context.Context, state, nonce, verifier, acrValues string) (string, error) {
	if !p.circuit.Allow() {
		return "", fmt.Errorf("%w: %s is switched off after repeated outages", ErrUnavailable, p.cfg.ID)
	}
	// Discovery failures are not counted: discovery has its own backoff.
	op, _, meta, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	return p.oauth2Config(op, meta).AuthCodeURL(state,
		oidc.Nonce(nonce),
		oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("acr_values", acrValues),
		oauth2.SetAuthURLParam("prompt", "login"),
	), nil
}

// Issuer returns the IdP's configured issuer.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// CheckIssuer applies RFC 9207 on the callback: a present iss must be the
// IdP's, and an IdP that advertises the parameter must send it. It runs
// before any token call, as the mix-up defence.
func (p *Provider) CheckIssuer(ctx context.Context, iss string) error {
	_, _, meta, err := p.discover(ctx)
	if err != nil {
		return err
	}
	switch {
	case iss != "" && iss != p.cfg.Issuer:
		return fmt.Errorf("%w: callback iss does not match %s", ErrRejected, p.cfg.ID)
	case iss == "" && meta.IssParam:
		return fmt.Errorf("%w: callback iss missing although %s advertises it", ErrRejected, p.cfg.ID)
	}
	return nil
}

// Result is a verified login at the IdP.
type Result struct {
	Subject  string
	ACR      string
	AMR      []string
	AuthTime time.Time
	Identity identity.Identity
	IDToken  string
	// SID is the IdP's session id (the id_token's sid), which its
	// back-channel logout tokens name.
	SID string
}

// idClaims are the id_token claims we read beyond go-oidc's.
type idClaims struct {
	Nonce    string   `json:"nonce"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time"`
	IssuedAt int64    `json:"iat"`
	AZP      string   `json:"azp"`
	SID      string   `json:"sid"`
}

// userClaims are the identity claims, from userinfo or the id_token.
type userClaims struct {
	Subject string `json:"sub"`
	identity.Pivot
	Email             string `json:"email"`
	PreferredUsername string `json:"preferred_username"`
}

// Exchange redeems the code with the trip's PKCE verifier, verifies the
// id_token (signature, iss, aud, exp, iat, nonce, azp, at_hash) and fetches
// userinfo, whose sub must be the id_token's.
func (p *Provider) Exchange(ctx context.Context, code, verifier, nonce string) (*Result, error) {
	res, err := p.exchange(ctx, code, verifier, nonce)
	// Only an outage counts: an IdP that answers, even wrongly, is up.
	p.circuit.Record(errors.Is(err, ErrUnavailable))
	return res, err
}

// Available reports whether the IdP's circuit is closed (or ready for a
// probe): the chooser greys out an IdP that is not.
func (p *Provider) Available() bool { return !p.circuit.Open() }

func (p *Provider) exchange(ctx context.Context, code, verifier, nonce string) (*Result, error) {
	op, v, meta, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	ctx = p.ctx(ctx)
	tok, err := p.oauth2Config(op, meta).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return nil, fmt.Errorf("%w: token endpoint of %s refused the code: %s", ErrRejected, p.cfg.ID, re.ErrorCode)
		}
		return nil, fmt.Errorf("%w: token endpoint of %s: %w", ErrUnavailable, p.cfg.ID, err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, fmt.Errorf("%w: %s sent no id_token", ErrRejected, p.cfg.ID)
	}
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		// go-oidc reports an unreachable JWKS only through its message;
		// that is an outage, not a forged token.
		if strings.Contains(err.Error(), "fetching keys") {
			return nil, fmt.Errorf("%w: jwks of %s: %w", ErrUnavailable, p.cfg.ID, err)
		}
		return nil, fmt.Errorf("%w: id_token of %s: %w", ErrRejected, p.cfg.ID, err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: id_token claims of %s: %w", ErrRejected, p.cfg.ID, err)
	}
	if err := p.checkIDToken(idt, &c, nonce, tok.AccessToken); err != nil {
		return nil, err
	}

	var u userClaims
	if err := idt.Claims(&u); err != nil {
		return nil, fmt.Errorf("%w: id_token claims of %s: %w", ErrRejected, p.cfg.ID, err)
	}
	if op.UserInfoEndpoint() != "" {
		info, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, fmt.Errorf("%w: userinfo of %s: %w", ErrUnavailable, p.cfg.ID, err)
		}
		if info.Subject != idt.Subject {
			return nil, fmt.Errorf("%w: userinfo sub of %s differs from the id_token's", ErrRejected, p.cfg.ID)
		}
		if err := info.Claims(&u); err != nil {
			return nil, fmt.Errorf("%w: userinfo claims of %s: %w", ErrRejected, p.cfg.ID, err)
		}
		// A signed userinfo names its OP and RP (Core 5.3.2); go-oidc
		// checks only its signature.
		var to struct {
			Iss string       `json:"iss"`
			Aud oidcAudience `json:"aud"`
		}
		if err := info.Claims(&to); err != nil || to.Iss != "" && to.Iss != p.cfg.Issuer ||
			to.Aud != nil && !slices.Contains(to.Aud, p.cfg.ClientID) {
			return nil, fmt.Errorf("%w: userinfo of %s names another issuer or audience", ErrRejected, p.cfg.ID)
		}
	}
	res := &Result{
		Subject:  idt.Subject,
		ACR:      c.ACR,
		AMR:      c.AMR,
		AuthTime: time.Unix(c.AuthTime, 0).UTC(),
		IDToken:  raw,
		SID:      c.SID,
		Identity: identity.Identity{Pivot: u.Pivot, Email: u.Email, PreferredUsername: u.PreferredUsername},
	}
	if c.AuthTime == 0 {
		res.AuthTime = time.Now().UTC()
	}
	return res, nil
}

// checkIDToken adds what go-oidc leaves to the caller (Core §3.1.3.7).
func (p *Provider) checkIDToken(idt *oidc.IDToken, c *idClaims, nonce, accessToken string) error {
	switch {
	case idt.Subject == "" || len(idt.Subject) > 255:
		return fmt.Errorf("%w: id_token of %s has a missing or over-long sub", ErrRejected, p.cfg.ID)
	case c.Nonce != nonce:
		return fmt.Errorf("%w: id_token nonce of %s does not match", ErrRejected, p.cfg.ID)
	case c.IssuedAt == 0:
		return fmt.Errorf("%w: id_token of %s has no iat", ErrRejected, p.cfg.ID)
	case c.IssuedAt > time.Now().Add(p.leeway).Unix():
		return fmt.Errorf("%w: id_token of %s was issued in the future", ErrRejected, p.cfg.ID)
	case len(idt.Audience) > 1 || c.AZP != "" && c.AZP != p.cfg.ClientID:
		// Core 3.1.3.7: we trust no audience but ourselves, so any other
		// audience is a stranger; a present azp must be us.
		return fmt.Errorf("%w: id_token of %s names another audience or azp", ErrRejected, p.cfg.ID)
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(accessToken); err != nil {
			return fmt.Errorf("%w: at_hash of %s: %w", ErrRejected, p.cfg.ID, err)
		}
	}
	return nil
}

// backchannelEvent marks a logout token (Back-Channel Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogoutToken bounds what we parse of a logout token.
const maxLogoutToken = 16 << 10

// LogoutToken is a verified back-channel logout token of this IdP.
type LogoutToken struct {
	Subject, SID, JTI string
	Expiry            time.Time
}

// VerifyLogoutToken validates a logout token as Back-Channel Logout 1.0
// §2.6 says: signed by this IdP (go-oidc's verifier: signature, iss, aud,
// exp), explicitly typed or plain JWT, with iat, a jti, a sub or a sid,
// the back-channel event as a JSON object, and no nonce (so an id_token
// can never pass for one). Replay (the jti) is the caller's to record.
func (p *Provider) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	if raw == "" || len(raw) > maxLogoutToken {
		return nil, fmt.Errorf("%w: logout token missing or too long", ErrRejected)
	}
	_, v, _, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkLogoutTyp(raw); err != nil {
		return nil, err
	}
	tok, err := v.Verify(p.ctx(ctx), raw)
	if err != nil {
		if strings.Contains(err.Error(), "fetching keys") {
			return nil, fmt.Errorf("%w: jwks of %s: %w", ErrUnavailable, p.cfg.ID, err)
		}
		return nil, fmt.Errorf("%w: logout token of %s: %w", ErrRejected, p.cfg.ID, err)
	}
	var c struct {
		SID      string                     `json:"sid"`
		JTI      string                     `json:"jti"`
		IssuedAt int64                      `json:"iat"`
		Nonce    *json.RawMessage           `json:"nonce"`
		Events   map[string]json.RawMessage `json:"events"`
		AZP      string                     `json:"azp"`
	}
	if err := tok.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: logout token claims of %s: %w", ErrRejected, p.cfg.ID, err)
	}
	ev, ok := c.Events[backchannelEvent]
	switch {
	case !ok || len(ev) == 0 || ev[0] != '{':
		return nil, fmt.Errorf("%w: logout token of %s has no back-channel logout event", ErrRejected, p.cfg.ID)
	case c.Nonce != nil:
		return nil, fmt.Errorf("%w: logout token of %s carries a nonce", ErrRejected, p.cfg.ID)
	case c.IssuedAt == 0 || c.IssuedAt > time.Now().Add(p.leeway).Unix():
		return nil, fmt.Errorf("%w: logout token of %s has no iat or one in the future", ErrRejected, p.cfg.ID)
	case c.JTI == "" || len(c.JTI) > 256:
		return nil, fmt.Errorf("%w: logout token of %s has no jti", ErrRejected, p.cfg.ID)
	case tok.Subject == "" && c.SID == "":
		return nil, fmt.Errorf("%w: logout token of %s names neither sub nor sid", ErrRejected, p.cfg.ID)
	case len(tok.Subject) > 255 || len(c.SID) > 255:
		return nil, fmt.Errorf("%w: logout token of %s has an over-long sub or sid", ErrRejected, p.cfg.ID)
	case len(tok.Audience) > 1 || c.AZP != "" && c.AZP != p.cfg.ClientID:
		return nil, fmt.Errorf("%w: logout token of %s names another audience or azp", ErrRejected, p.cfg.ID)
	}
	return &LogoutToken{Subject: tok.Subject, SID: c.SID, JTI: c.JTI, Expiry: tok.Expiry}, nil
}

// checkLogoutTyp refuses a token typed as anything but a logout token or
// a plain JWT (§2.4 recommends "logout+jwt"; older IdPs send none).
func checkLogoutTyp(raw string) error {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return fmt.Errorf("%w: logout token is not a JWS", ErrRejected)
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		Typ string `json:"typ"`
	}
	if err != nil || json.Unmarshal(b, &h) != nil {
		return fmt.Errorf("%w: logout token header unreadable", ErrRejected)
	}
	switch strings.ToLower(h.Typ) {
	case "", "jwt", "logout+jwt", "application/logout+jwt":
		return nil
	}
	return fmt.Errorf("%w: logout token typed %q", ErrRejected, h.Typ)
}

// Level translates the acr the IdP asserted into Sésame's level, through
// the IdP's acr_map and acr_if_missing; ok is false when it means nothing.
func (p *Provider) Level(asserted string) (string, bool) {
	if asserted == "" {
		asserted = p.cfg.ACRIfMissing
	}
	if mapped, ok := p.cfg.ACRMap[asserted]; ok {
		asserted = mapped
	}
	return acr.Normalize(asserted)
}

// oidcAudience is aud, a string or an array of strings.
type oidcAudience []string

func (a *oidcAudience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = oidcAudience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// EndSessionURL builds RP-initiated logout at the IdP, or reports false when
// the IdP has no end_session endpoint (or is unreachable: logout must not
// wait on a dead IdP).
func (p *Provider) EndSessionURL(ctx context.Context, idTokenHint, state string) (string, bool) {
	_, _, meta, err := p.discover(ctx)
	if err != nil || meta.EndSession == "" {
		return "", false
	}
	u, err := url.Parse(meta.EndSession)
	if err != nil {
		return "", false
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("post_logout_redirect_uri", p.postLogout)
	q.Set("state", state)
	u.RawQuery = q.Encode()
	return u.String(), true
}

// idpTransport is the one connection pool to all IdPs. http.DefaultTransport
// keeps only 2 idle connections per host: under load, every login beyond
// two in flight at one IdP opened a new TCP connection for its token call
// and closed it after. This one keeps enough for a busy broker's share of
// an IdP, and is shared so that two platforms calling one IdP share it too.
var idpTransport = newIDPTransport()

func newIDPTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// limitedTransport caps response bodies, so an IdP sending megabytes or
// dripping bytes costs bounded memory (time is bounded by the client).
type limitedTransport struct{ next http.RoundTripper }

func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxBody}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("upstream: response body over 1 MiB")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
