// Package risk is the suspicious-context seam: small rules that look at
// the signals of a request (the client's address, its headers) and say
// whether its context is suspicious, and why. When a rule fires, the
// broker offers no login below eIDAS substantial for that request: the
// identity providers that can only give eidas1 are greyed out on the
// chooser, as FranceConnect does for its "connexions suspectes".
//
// A rule only ever makes a request stricter. It never refuses a login on
// its own: the citizen can still log in with an account that gives a
// stronger authentication.
package risk

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"

	"github.com/sesame-id/sesame/broker/acr"
)

// The reasons a verdict gives. They are stable codes: the audit trail
// and the metrics carry them, and operators query them.
const (
	// ReasonDenyNetwork: the client's address is in a denied network.
	ReasonDenyNetwork = "deny_network"
	// ReasonFailedTrips: too many trips to IdPs failed from the
	// client's address in the window.
	ReasonFailedTrips = "failed_trips"
	// ReasonWAF: the web application firewall in front of the broker
	// flagged the request in its header.
	ReasonWAF = "waf"
)

// MinLevel is the lowest level a suspicious context may log in with.
const MinLevel = acr.Substantial

// Signals are what a rule may look at.
type Signals struct {
	// ClientIP is the client's address, as the broker's per-IP limits
	// see it (X-Forwarded-For believed only from a trusted proxy). The
	// zero value means unknown; no address rule fires on it.
	ClientIP netip.Addr
	// Header is the request's headers.
	Header http.Header
	// ViaTrustedProxy reports whether the request reached the broker
	// from one of its trusted proxies, so that a header that proxy sets
	// may be believed.
	ViaTrustedProxy bool
}

// Verdict is what rules found about a request.
type Verdict struct {
	// Suspicious is true when at least one rule fired.
	Suspicious bool
	// Reasons are the codes of the rules that fired (Reason*), each once,
	// in the order of the rules.
	Reasons []string
}

// Fired is the verdict of rules that fired for reasons.
func Fired(reasons ...string) Verdict {
	var v Verdict
	return v.With(reasons...)
}

// With returns v with reasons added, each once.
func (v Verdict) With(reasons ...string) Verdict {
	out := Verdict{Reasons: slices.Clone(v.Reasons)}
	for _, r := range reasons {
		if r != "" && !slices.Contains(out.Reasons, r) {
			out.Reasons = append(out.Reasons, r)
		}
	}
	out.Suspicious = len(out.Reasons) > 0
	return out
}

// Assessor is one rule, or several (All).
type Assessor interface {
	// Assess says whether the context of a request is suspicious. On an
	// error (the store is down) it returns what it could still tell,
	// and the error, so that the caller logs it and goes on: a rule that
	// cannot run does not stop logins (fail open).
	Assess(ctx context.Context, s Signals) (Verdict, error)
}

// TripCounter is a rule that learns from the trips to IdPs that failed.
type TripCounter interface {
	// FailedTrip counts one failed trip from the client of s and
	// returns the rule's verdict once it is counted.
	FailedTrip(ctx context.Context, s Signals) (Verdict, error)
}

// All is every rule of a deployment: suspicious when any one fires.
type All []Assessor

// Assess runs every rule and merges their verdicts; the errors of the
// rules that failed are joined, and the verdict is that of the others.
func (a All) Assess(ctx context.Context, s Signals) (Verdict, error) {
	var v Verdict
	var errs []error
	for _, r := range a {
		rv, err := r.Assess(ctx, s)
		errs = append(errs, err)
		v = v.With(rv.Reasons...)
	}
	return v, errors.Join(errs...)
}

// FailedTrip counts a failed trip in every rule that counts them; with
// none, it does nothing (and makes no store round trip).
func (a All) FailedTrip(ctx context.Context, s Signals) (Verdict, error) {
	var v Verdict
	var errs []error
	for _, r := range a {
		if c, ok := r.(TripCounter); ok {
			rv, err := c.FailedTrip(ctx, s)
			errs = append(errs, err)
			v = v.With(rv.Reasons...)
		}
	}
	return v, errors.Join(errs...)
}
