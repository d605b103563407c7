package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/sesame-id/sesame/config"
)

// Upstream is an identity provider as the login flow sees it, whatever
// its kind (an OIDC IdP, the eIDAS bridge): its registration, whether it
// can be chosen now, and how its asserted levels read in Sésame's terms.
// What else it can do is told by the capability interfaces below, which
// the flow looks for with a type assertion, as Dex's connectors do.
type Upstream interface {
	Config() config.IdP
	// Available reports whether the upstream may be chosen now (its
	// circuit breaker is closed or ready for a probe).
	Available() bool
	// Level translates an asserted level into Sésame's acr; ok is false
	// when it means nothing.
	Level(asserted string) (level string, ok bool)
	// Status is the upstream's health for /readyz: "ok" or a reason fit
	// to show.
	Status() string
}

// Trip is what the flow made for one trip to an upstream: one-time
// values bound to the browser's session, and the level to ask for.
type Trip struct {
	// State comes back on the callback; the flow checks it against the
	// session before Finish runs.
	State string
	// Nonce binds the upstream's answer to this trip (an OIDC nonce, an
	// eIDAS request id).
	Nonce string
	// Verifier is the PKCE code verifier, for kinds that use PKCE.
	Verifier string
	// ACR is the level asked for.
	ACR string
	// Lang is the language of the citizen's pages ("fr", "en"), which
	// the upstream's own pages should use too (ui_locales for OIDC).
	Lang string
}

// Starter starts a trip: it returns where to send the browser.
type Starter interface {
	Start(ctx context.Context, t Trip) (target string, err error)
}

// Finisher finishes a trip from the callback's query, once the flow has
// checked its state: it returns the verified login or an error (a
// *DeniedError, or one wrapping ErrUnavailable or ErrRejected).
type Finisher interface {
	Finish(ctx context.Context, callback url.Values, t Trip) (*Result, error)
}

// SessionEnder can end the citizen's session at the upstream
// (RP-initiated logout).
type SessionEnder interface {
	// EndSessionURL is where to send the browser to log out, or false
	// when the upstream has no logout (or cannot be reached).
	EndSessionURL(ctx context.Context, idTokenHint, state string) (string, bool)
}

// BackChannel verifies the upstream's back-channel logout tokens.
type BackChannel interface {
	VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error)
}

// DeniedError is an upstream's answer that the login did not happen (an
// OAuth error code on the callback, a cancelled eIDAS authentication).
// Code is the OAuth error code it amounts to; the upstream's own text is
// never kept.
type DeniedError struct{ Code string }

func (e *DeniedError) Error() string { return "upstream: login refused with " + e.Code }

// The OIDC provider is the first kind.
var (
	_ Upstream     = (*Provider)(nil)
	_ Starter      = (*Provider)(nil)
	_ Finisher     = (*Provider)(nil)
	_ SessionEnder = (*Provider)(nil)
	_ BackChannel  = (*Provider)(nil)
)

// Start implements Starter: the authorization request, with PKCE, nonce
// and acr_values.
func (p *Provider) Start(ctx context.Context, t Trip) (string, error) {
	u, err := p.AuthCodeURL(ctx, t.State, t.Nonce, t.Verifier, t.ACR)
	if err != nil || t.Lang == "" {
		return u, err
	}
	// The IdP's login page in the language of the citizen's other pages
	// (OIDC Core 3.1.2.1 ui_locales).
	return u + "&ui_locales=" + url.QueryEscape(t.Lang), nil
}

// Finish implements Finisher: the mix-up defence (RFC 9207) before any
// token call, exactly one of code and error, then the code exchange.
func (p *Provider) Finish(ctx context.Context, q url.Values, t Trip) (*Result, error) {
	if err := p.CheckIssuer(ctx, q.Get("iss")); err != nil {
		return nil, err
	}
	code, upErr := q.Get("code"), q.Get("error")
	switch {
	case code != "" && upErr != "", code == "" && upErr == "":
		return nil, fmt.Errorf("%w: callback must carry exactly one of code and error", ErrRejected)
	case upErr != "":
		return nil, &DeniedError{Code: upErr}
	}
	return p.Exchange(ctx, code, t.Verifier, t.Nonce)
}

// IsDenied reports whether err is an upstream's refusal, and its code.
func IsDenied(err error) (string, bool) {
	var d *DeniedError
	if errors.As(err, &d) {
		return d.Code, true
	}
	return "", false
}
