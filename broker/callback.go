package broker

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/sesame-id/sesame/broker/acr"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/broker/upstream"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/web"
)

// callback is step 4: the IdP sends the browser back. Every check runs
// before the identity is trusted, in the order of RFC 9700 and Core 3.1.3.7.
func (p *Platform) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	// Taking the session (not reading it) makes the callback single use:
	// of two parallel callbacks, on any replicas, only one gets it.
	sess, ok := p.takeStep(w, r, session.StepUpstream)
	if !ok {
		return
	}
	// The state is bound to this browser's session: another browser's
	// state, a forged one or a stale one is refused, and the session is
	// put back untouched so the real callback can still come.
	trip := sess.Trip
	if trip == nil || subtle.ConstantTimeCompare([]byte(session.Digest(q.Get("state"))), []byte(trip.State)) != 1 || time.Since(trip.Created) > p.tripTTL() {
		if err := p.sessions.Save(ctx, sess); err != nil {
			p.log.WarnContext(ctx, "restore session", "err", err)
		}
		p.stale(w, r, sess, errBadState, nil)
		return
	}
	sess.Trip = nil
	up, ok := p.reg(ctx).idp(trip.IdP)
	if !ok {
		p.stale(w, r, sess, errBadState, nil)
		return
	}
	finisher, ok := up.(upstream.Finisher)
	if !ok {
		p.stale(w, r, sess, errBadState, nil)
		return
	}
	start := time.Now()
	res, err := finisher.Finish(ctx, q, upstream.Trip{State: q.Get("state"), Nonce: trip.Nonce, Verifier: trip.Verifier, ACR: trip.ACR})
	p.metrics.exchange(trip.IdP, time.Since(start))
	if code, denied := upstream.IsDenied(err); denied {
		// The IdP's own words are not shown: its error_description is
		// untrusted text.
		p.keepChoosing(w, r, sess, idpErrorPage(code), errors.New("idp returned error "+safeCode(code)))
		return
	} else if err != nil {
		p.keepChoosing(w, r, sess, upstreamError(err), err)
		return
	}
	level, known := up.Level(res.ACR)
	switch {
	case known && acr.AtLeast(level, sess.Request.ACR) && !acr.AtLeast(level, riskLevel(sess)):
		// Enough for the SP, not for the suspicious context: the
		// citizen picks an account that gives eidas2.
		p.rejectLogin(w, r, sess, errRiskLevel, errors.New("idp returned acr "+level+" in a suspicious context"))
		return
	case !known || !acr.AtLeast(level, trip.ACR) || !acr.AtLeast(level, sess.Request.ACR):
		if sess.Request.ACREssential {
			p.endWithError(w, r, sess, oidcerr.New(oidcerr.UnmetAuthenticationRequirements, "the identity provider did not authenticate at the level required"))
			return
		}
		p.rejectLogin(w, r, sess, errACRTooLow, errors.New("idp returned acr "+safeCode(res.ACR)+" for "+trip.ACR))
		return
	case !slices.Contains(up.Config().ACRValues, level):
		// An IdP claiming more than it may is a failed authentication,
		// which an essential acr turns into an answer to the SP.
		if sess.Request.ACREssential {
			p.endWithError(w, r, sess, oidcerr.New(oidcerr.UnmetAuthenticationRequirements, "the identity provider asserted a level it may not give"))
			return
		}
		p.rejectLogin(w, r, sess, errACRNotAllowed, errors.New("idp returned acr "+level+" outside its allowed list"))
		return
	}
	if err := res.Identity.Validate(); err != nil {
		p.rejectLogin(w, r, sess, errIdentityInvalid, err)
		return
	}
	// Who the person is, at the civil registry, before anything is
	// derived from the identity.
	rnipp, ok := p.checkCivilRegistry(w, r, sess, up.Config(), &res.Identity, level)
	if !ok {
		return
	}
	// The citizen's choice in the citizen space, which needs the
	// identity to find their account: a blocked account goes no further.
	acct := p.account(res.Identity)
	if ok, err := p.allowed(ctx, acct, trip.IdP); err != nil {
		p.rejectLogin(w, r, sess, errPreferencesDown, err)
		return
	} else if !ok {
		p.record(r, audit.Event{Name: audit.IdPBlocked, Step: audit.IdPBlockedStep, Outcome: errIdPBlocked.Code, LoginID: sess.LoginID,
			SP: sess.Request.ClientID, IdP: trip.IdP, ACRAsked: sess.Request.ACR, ACR: level, Account: acct})
		p.rejectLogin(w, r, sess, p.blockedPage(), nil)
		return
	}

	sess.Login = &session.Login{
		IdP: trip.IdP, Identity: res.Identity, ACR: level, AMR: res.AMR,
		AuthTime: res.AuthTime, UpstreamIDToken: res.IDToken, CivilRegistry: rnipp,
	}
	sess.Step, sess.Reused = session.StepAuthenticated, false
	// Rotated, with the index by which the IdP's back-channel logout
	// finds this session, in one round trip.
	index := func(s *session.Session) []store.Entry {
		return p.sessions.UpstreamIndex(s, trip.IdP, res.SID, res.Subject)
	}
	if err := p.sessions.Rotate(ctx, sess, index); err != nil {
		p.fail(w, r, storeError(err), err)
		return
	}
	p.metrics.login(p.cfg.ID, trip.IdP, "ok")
	p.record(r, audit.Event{Name: audit.IdPReturned, Step: audit.IdPReturnedStep, Outcome: "ok", LoginID: sess.LoginID,
		SP: sess.Request.ClientID, IdP: trip.IdP, ACRAsked: sess.Request.ACR, ACR: level, Account: acct})
	if rnipp != "" {
		p.recordCivilRegistry(r, sess, trip.IdP, level, acct, rnipp, "ok")
	}
	p.record(r, audit.Event{Name: audit.IdentityVerified, Step: audit.IdentityVerifiedStep, Outcome: "ok", LoginID: sess.LoginID,
		SP: sess.Request.ClientID, IdP: trip.IdP, ACR: level, Account: acct, CivilRegistry: rnipp})
	p.setCookie(w, sess.ID)
	redirect(w, r, "/authorize/consent")
}

// takeStep is requireStep for the callback: it takes the session out of
// the store, and puts it back when the step is not the expected one.
func (p *Platform) takeStep(w http.ResponseWriter, r *http.Request, step session.Step) (*session.Session, bool) {
	c, err := r.Cookie(p.cfg.Cookie)
	if err != nil {
		p.stale(w, r, p.pendingRequest(r), errSessionExpired, nil)
		return nil, false
	}
	sess, err := p.sessions.Take(r.Context(), c.Value)
	noteLang(r, sess)
	switch {
	case errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrCorrupt):
		p.stale(w, r, p.pendingRequest(r), errSessionExpired, nil)
		return nil, false
	case err != nil:
		p.fail(w, r, storeError(err), err)
		return nil, false
	case sess.Step != step || sess.Request == nil:
		if err := p.sessions.Save(r.Context(), sess); err != nil {
			p.log.WarnContext(r.Context(), "restore session", "err", err)
		}
		p.stale(w, r, sess, errBadStep, nil)
		return nil, false
	}
	return sess, true
}

// rejectLogin refuses an authentication on a page with a code, and puts
// the session back at the chooser so "Retour" lets the citizen try again.
func (p *Platform) rejectLogin(w http.ResponseWriter, r *http.Request, sess *session.Session, e web.Error, cause error) {
	p.metrics.login(p.cfg.ID, sess.IdP, e.Code)
	p.recordIdPRefusal(r, sess, e.Code)
	p.failedTrip(r, sess, e.Code)
	sess.Step, sess.Login = session.StepAuthorize, nil
	if err := p.sessions.Save(r.Context(), sess); err != nil {
		p.fail(w, r, storeError(err), err)
		return
	}
	p.fail(w, r, e, cause)
}

// endWithError ends the request at the SP with an OAuth error.
func (p *Platform) endWithError(w http.ResponseWriter, r *http.Request, sess *session.Session, e *oidcerr.Error) {
	p.metrics.login(p.cfg.ID, sess.IdP, e.Code)
	p.recordIdPRefusal(r, sess, e.Code)
	p.failedTrip(r, sess, e.Code)
	req := sess.Request
	sess.Lang = loginLang(sess)
	sess.Request, sess.Step = nil, session.StepDone
	sess.Served = &session.Served{ClientID: req.ClientID, RedirectURI: req.RedirectURI, State: req.State}
	if sess.Login == nil {
		_ = p.sessions.Destroy(r.Context(), sess.ID)
		p.clearCookie(w)
	} else if err := p.sessions.Save(r.Context(), sess); err != nil {
		p.log.WarnContext(r.Context(), "save session", "err", err)
	}
	redirect(w, r, e.RedirectURL(req.RedirectURI, req.State, p.cfg.Issuer))
}

func upstreamError(err error) web.Error {
	if errors.Is(err, upstream.ErrUnavailable) {
		return errIdPUnavailable
	}
	return errIdPRejected
}

var errIdPDenied = web.Error{Code: "S020030", Status: http.StatusOK,
	MessageFR: "La connexion auprès du fournisseur d'identité a été annulée ou refusée. Vous pouvez réessayer ou choisir un autre fournisseur d'identité.",
	MessageEN: "The login at the identity provider was cancelled or refused. You can try again or choose another identity provider."}

// idpErrorPage maps an IdP's error code to our banner.
func idpErrorPage(code string) web.Error {
	switch code {
	case oidcerr.AccessDenied, oidcerr.LoginRequired, oidcerr.ConsentRequired, oidcerr.InteractionRequired:
		return errIdPDenied
	case oidcerr.TemporarilyUnavailable, oidcerr.ServerError:
		return errIdPUnavailable
	}
	return errIdPRejected
}

// safeCode keeps an upstream error code fit for our logs.
func safeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c == ':' || c == '/' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return "(invalid)"
		}
	}
	return s
}

// bannerText finds the sentence for a chooser banner code.
func bannerText(code string, lang string) string {
	for _, e := range []web.Error{errIdPDenied, errIdPUnavailable, errIdPRejected} {
		if e.Code == code {
			if lang == "en" {
				return e.MessageEN
			}
			return e.MessageFR
		}
	}
	return ""
}
