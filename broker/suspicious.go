package broker

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"

	"github.com/sesame-id/sesame/broker/acr"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/risk"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/web"
)

// The suspicious-context rule (docs/identity-checks.md): the request is
// assessed once, at /authorize, and its reasons ride in its session
// (sealed), so that the chooser, the choice, idp_hint and the callback
// all apply the same verdict without asking again. A failed trip can
// make the request suspicious on its way back to the chooser.

var (
	// errRiskBarred: a choice of an IdP the suspicious context greys out
	// (a forged form, or a stale page).
	errRiskBarred = web.Error{Code: "S020060", Status: http.StatusForbidden, Retry: true, BackURL: "/authorize/choose",
		MessageFR: "Pour votre sécurité, ce compte n'est pas proposé pour cette connexion. Choisissez un compte qui offre un niveau de sécurité renforcé (eIDAS substantiel ou élevé), ou réessayez plus tard.",
		MessageEN: "For your security, this account is not offered for this login. Choose an account that offers a higher security level (eIDAS substantial or high), or try again later."}
	// errRiskLevel: in a suspicious context, the IdP authenticated the
	// citizen below eidas2 (an IdP that can give eidas2 but did not).
	errRiskLevel = web.Error{Code: "S020061", Status: http.StatusForbidden, Retry: true, BackURL: "/authorize/choose",
		MessageFR: "Pour votre sécurité, cette connexion demande un niveau de sécurité renforcé (eIDAS substantiel) que ce compte n'a pas fourni. Choisissez un compte qui offre ce niveau.",
		MessageEN: "For your security, this login needs a higher security level (eIDAS substantial) than this account gave. Choose an account that offers that level."}
)

// newRiskRule builds a platform's rule from the broker's risk section:
// nil when the section is absent (the rule is off, and costs nothing).
// The failed-trips count lives in the platform's namespace, as its rate
// limits do, under a key derived from the sub secret.
func newRiskRule(c *config.Risk, kv store.Store, namespace string, secret []byte) (risk.All, error) {
	if c == nil {
		return nil, nil
	}
	var all risk.All
	if len(c.DenyNetworks) > 0 {
		d, err := risk.NewDenyNetworks(c.DenyNetworks)
		if err != nil {
			return nil, fmt.Errorf("broker.risk: %w", err)
		}
		all = append(all, d)
	}
	if f := c.FailedTrips; f != nil {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("sesame risk failed trips"))
		ft, err := risk.NewFailedTrips(kv, namespace, m.Sum(nil), f.Max, f.Window.D(config.DefaultFailedTripsWindow))
		if err != nil {
			return nil, fmt.Errorf("broker.risk: %w", err)
		}
		all = append(all, ft)
	}
	if w := c.WAFHeader; w != nil {
		all = append(all, risk.NewWAFHeader(w.Name, w.Values))
	}
	return all, nil
}

// riskSignals are the signals of r.
func (p *Platform) riskSignals(r *http.Request) risk.Signals {
	ip, _ := netip.ParseAddr(p.clientIP(r))
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	return risk.Signals{ClientIP: ip, Header: r.Header, ViaTrustedProxy: p.trusted(peer)}
}

// assessRisk is the verdict on an authorization request: its reasons,
// none when the rule is off or nothing fired. A rule that fails (the
// store is down) is logged and counts as not fired: the rule only ever
// makes logins stricter, and must not stop them.
func (p *Platform) assessRisk(r *http.Request) []string {
	if p.risk == nil {
		return nil
	}
	v, err := p.risk.Assess(r.Context(), p.riskSignals(r))
	if err != nil {
		p.log.WarnContext(r.Context(), "risk rule not fully applied", "err", err, "correlation_id", web.CorrelationID(r.Context()))
	}
	p.metrics.suspicious(p.cfg.ID, v.Reasons)
	return v.Reasons
}

// failedTrip counts a trip that failed at or after the IdP, when its
// code is one that counts, and adds the reasons of a rule it makes fire
// to the request's, before the session goes back to the chooser.
func (p *Platform) failedTrip(r *http.Request, sess *session.Session, code string) {
	if p.risk == nil || !countsAsFailedTrip(code) {
		return
	}
	v, err := p.risk.FailedTrip(r.Context(), p.riskSignals(r))
	if err != nil {
		p.log.WarnContext(r.Context(), "failed trip not counted", "err", err, "correlation_id", web.CorrelationID(r.Context()))
	}
	var added []string
	for _, reason := range v.Reasons {
		if !slices.Contains(sess.Risk, reason) {
			added = append(added, reason)
		}
	}
	sess.Risk = append(sess.Risk, added...)
	p.metrics.suspicious(p.cfg.ID, added)
}

// countsAsFailedTrip tells the failures that count toward failed_trips:
// an answer the broker refused (forged or broken tokens, IdP errors other
// than a cancel or an outage), an invalid identity, a level too low or
// not allowed, a login through an account its owner blocked. A cancel or
// refusal at the IdP (S020030) does not count: it is what honest
// citizens do most, and counting it would grey out the addresses many
// people share (mobile carriers' NAT, offices). Nor does an outage, of
// the IdP (S020026) or of our own stores (S020041): the citizen did
// nothing wrong.
func countsAsFailedTrip(code string) bool {
	switch code {
	case errIdPRejected.Code, errIdentityInvalid.Code, errACRTooLow.Code, errACRNotAllowed.Code,
		errIdPBlocked.Code, errRiskLevel.Code, oidcerr.UnmetAuthenticationRequirements:
		return true
	}
	return false
}

// barredByRisk reports whether the request's context greys out the IdP c:
// a suspicious context, and an IdP that cannot give eidas2.
func barredByRisk(sess *session.Session, c config.IdP) bool {
	return len(sess.Risk) > 0 && !acr.AtLeast(highest(c.ACRValues), risk.MinLevel)
}

// riskLevel is the lowest level a trip of the request may ask: eidas2
// in a suspicious context, nothing more otherwise.
func riskLevel(sess *session.Session) string {
	if len(sess.Risk) > 0 {
		return risk.MinLevel
	}
	return ""
}
