// Package audit is the seam of business events ("tracks", as
// FranceConnect calls them): every step of a flow emits one named,
// numbered Event to the sinks, which are JSON log lines today and the
// citizen's history store later. An event never holds an identity
// attribute in clear: the person is an account id, a keyed hash.
package audit

import (
	"context"
	"log/slog"
)

// Event names, with their step numbers in their flow. They are stable:
// operators and the citizen's space query them. The login's steps share
// one LoginID, from the authorization request to userinfo.
const (
	AuthorizeReceived     = "FC_AUTHORIZE_RECEIVED"
	AuthorizeReceivedStep = 1
	SSOReused             = "FC_SSO_REUSED"
	SSOReusedStep         = 2
	IdPChosen             = "FC_IDP_CHOSEN"
	IdPChosenStep         = 3
	IdPReturned           = "FC_IDP_RETURNED"
	IdPReturnedStep       = 4
	IdentityVerified      = "FC_IDENTITY_VERIFIED"
	IdentityVerifiedStep  = 5
	CodeIssued            = "FC_CODE_ISSUED"
	CodeIssuedStep        = 6
	TokenIssued           = "SP_TOKEN_ISSUED"
	TokenIssuedStep       = 7
	UserinfoServed        = "SP_USERINFO_SERVED"
	UserinfoServedStep    = 8
	LoggedOut             = "FC_LOGGED_OUT"
	LoggedOutStep         = 9
	// Refused is any step's refusal; Outcome holds the error code and
	// Step the step refused.
	Refused = "FC_REFUSED"
	// Introspection: a data provider asked about an access token.
	Introspection     = "DP_INTROSPECTION"
	IntrospectionStep = 40
	// Revocation: an SP revoked an access token (RFC 7009).
	Revocation     = "SP_REVOKED_TOKEN"
	RevocationStep = 41
	// IdPBlocked: the IdP authenticated the citizen, who had blocked
	// that account in the citizen space; the login was refused.
	IdPBlocked     = "FC_IDP_BLOCKED"
	IdPBlockedStep = 5
	// CivilRegistryChecked: the civil registry (RNIPP) was asked about
	// the IdP's identity (FranceConnect's FC_REQUESTED_RNIPP and
	// FC_RECEIVED_*_RNIPP, step 4.x); CivilRegistry holds its outcome,
	// Outcome "ok" or the page code of the refusal.
	CivilRegistryChecked     = "FC_RNIPP_CHECKED"
	CivilRegistryCheckedStep = 4
)

// Event is one business event.
type Event struct {
	Name string
	Step int
	// Outcome is "ok", "inactive", or the error code of a refusal.
	Outcome  string
	Platform string
	// SP and DataProvider are client_ids; IdP an IdP id.
	SP, DataProvider, IdP string
	// LoginID joins the events of one login, from the authorization
	// request to userinfo; it names no one.
	LoginID string
	// Scopes and Claims are what was passed on.
	Scopes []string
	Claims []string
	// ACRAsked is the level the SP asked; ACR the level obtained.
	ACRAsked string
	ACR      string
	// Account identifies the person across IdPs and SPs without naming
	// them: a keyed hash of the pivot identity, never reversible.
	Account       string
	CorrelationID string
	ClientIP      string
	// Code is a connection's code (FC_CODE_ISSUED): the citizen reads it
	// in the e-mail of the connection and in their history, and quotes it
	// to report a connection that was not theirs.
	Code string
	// Risk are the reasons the request's context was found suspicious
	// (deny_network, failed_trips, waf); empty: it was not.
	Risk []string
	// CivilRegistry is the civil registry's outcome for the login
	// (found, corrected, not_found, deceased, or unavailable when the
	// registry could not answer); empty when it was not asked.
	CivilRegistry string
}

// Sink receives events. Record must not block the request for long: a
// slow sink queues or drops, and says so in its own logs.
type Sink interface {
	Record(ctx context.Context, e Event)
}

// Log writes each event as one log line, message "audit", with one
// attribute per field (JSON with slog's JSON handler).
type Log struct{ Logger *slog.Logger }

// Record implements Sink.
func (l Log) Record(ctx context.Context, e Event) {
	attrs := []slog.Attr{slog.String("event", e.Name), slog.Int("step", e.Step), slog.String("outcome", e.Outcome)}
	for _, f := range []struct{ k, v string }{
		{"platform", e.Platform}, {"login_id", e.LoginID}, {"sp", e.SP}, {"data_provider", e.DataProvider}, {"idp", e.IdP},
		{"acr_asked", e.ACRAsked}, {"acr", e.ACR}, {"account", e.Account}, {"correlation_id", e.CorrelationID}, {"client_ip", e.ClientIP}, {"code", e.Code},
	} {
		if f.v != "" {
			attrs = append(attrs, slog.String(f.k, f.v))
		}
	}
	if e.CivilRegistry != "" {
		attrs = append(attrs, slog.String("civil_registry", e.CivilRegistry))
	}
	if len(e.Scopes) > 0 {
		attrs = append(attrs, slog.Any("scopes", e.Scopes))
	}
	if len(e.Claims) > 0 {
		attrs = append(attrs, slog.Any("claims", e.Claims))
	}
	if len(e.Risk) > 0 {
		attrs = append(attrs, slog.Any("risk", e.Risk))
	}
	l.Logger.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

// Sinks sends each event to every sink in turn.
type Sinks []Sink

// Record implements Sink.
func (s Sinks) Record(ctx context.Context, e Event) {
	for _, k := range s {
		k.Record(ctx, e)
	}
}
