package broker

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"time"

	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/broker/acr"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/broker/upstream"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/web"
)

// tripTTL bounds how long a citizen may stay at the IdP's login page
// (platform setting trip_ttl, default 15 min).
func (p *Platform) tripTTL() time.Duration { return p.cfg.TripTTL.D(15 * time.Minute) }

// idpChoice is one line of the chooser.
type idpChoice struct {
	ID, Name string
	// Logo is the IdP's logo among the static assets.
	Logo string
	// Disabled IdPs are shown greyed out: switched off, or unable to
	// give the level asked; Reason says why, in the page's language.
	Disabled bool
	Reason   string
}

type chooserView struct {
	SPName string
	// ACR is the level asked, for tests (data-acr); Level says it in
	// words.
	ACR, Level string
	CSRF       string
	IdPs       []idpChoice
	Banner     string
	Cancel     string
	// Notice explains the IdPs the suspicious-context rule greys out.
	Notice string
}

// defaultLogo is the logo of an IdP configured without one.
const defaultLogo = "idp/default.svg"

// chooser is step 2: the IdPs this SP may use at this level.
func (p *Platform) chooser(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.atChooser(w, r)
	if !ok {
		return
	}
	reg := p.reg(r.Context())
	sp, _ := reg.Client(sess.Request.ClientID)
	lang := web.PreferredLang(r)
	v := chooserView{SPName: sp.Name, ACR: sess.Request.ACR, Level: p.t(r, levelKey(sess.Request.ACR)), CSRF: sess.CSRF,
		Banner: bannerText(sess.Banner, lang)}
	v.Cancel = accessDeniedURL(sess, p.cfg.Issuer)
	for _, up := range reg.idps {
		c := up.Config()
		if !c.IsDisplayed() || !idpAllowed(sp, c.ID) {
			continue
		}
		choice := idpChoice{ID: c.ID, Name: c.Name, Logo: c.LogoAsset()}
		if choice.Logo == "" {
			choice.Logo = defaultLogo
		}
		reason := ""
		switch {
		case !c.IsActive():
			reason = "reason.inactive"
		case !up.Available():
			// The circuit breaker took it off after outages in a row.
			reason = "reason.down"
		case !acr.AtLeast(highest(c.ACRValues), sess.Request.ACR):
			reason = "reason.level"
		case barredByRisk(sess, c):
			reason = "reason.risk"
			v.Notice = p.t(r, "notice.risk")
		}
		if reason != "" {
			choice.Disabled, choice.Reason = true, p.t(r, reason)
		}
		v.IdPs = append(v.IdPs, choice)
	}
	p.pages.Render(w, r, http.StatusOK, "chooser.html", web.Page{Title: p.t(r, "chooser.title"), Body: v})
}

// choose is step 3: the POSTed choice starts a trip to the IdP.
func (p *Platform) choose(w http.ResponseWriter, r *http.Request) {
	sess, ok := p.atChooser(w, r)
	if !ok {
		return
	}
	if !p.checkCSRF(w, r, sess) {
		return
	}
	reg := p.reg(r.Context())
	up, ok := reg.idp(r.PostForm.Get("idp"))
	sp, _ := reg.Client(sess.Request.ClientID)
	if !ok || !up.Config().IsActive() || !idpAllowed(sp, up.Config().ID) || !acr.AtLeast(highest(up.Config().ACRValues), sess.Request.ACR) {
		p.fail(w, r, errIdPUnknown, nil)
		return
	}
	if barredByRisk(sess, up.Config()) {
		p.record(r, audit.Event{Name: audit.Refused, Step: audit.IdPChosenStep, Outcome: errRiskBarred.Code, LoginID: sess.LoginID,
			SP: sess.Request.ClientID, IdP: up.Config().ID, ACRAsked: sess.Request.ACR, Risk: sess.Risk})
		p.fail(w, r, errRiskBarred, nil)
		return
	}
	p.startTrip(w, r, sess, up)
}

// startTrip sends the browser to an IdP with a fresh state, nonce and
// PKCE pair, recorded in this browser's session, which replaces the
// browser's previous one. The session moves on only if nobody else moved
// it since it was read (a double click, a replayed form), so one request
// makes one trip; the loser follows the winner's trip.
func (p *Platform) startTrip(w http.ResponseWriter, r *http.Request, sess *session.Session, up upstream.Upstream) {
	if ok, left := p.limit(r.Context(), "login", p.clientIP(r), p.cfg.RateLimits.LoginsPerIP); !ok {
		p.tooManyPages(w, r, left)
		return
	}
	c := up.Config()
	state, nonce, verifier := session.NewID(), session.NewID(), oauth2.GenerateVerifier()
	// Ask the IdP for at least the SP's level and never below the IdP's
	// own floor, nor, in a suspicious context, below eidas2.
	level := acr.Max(acr.Max(sess.Request.ACR, lowest(c.ACRValues)), riskLevel(sess))
	starter, ok := up.(upstream.Starter)
	if !ok {
		p.fail(w, r, errIdPUnknown, nil)
		return
	}
	target, err := starter.Start(r.Context(), upstream.Trip{State: state, Nonce: nonce, Verifier: verifier, ACR: level})
	if err != nil {
		p.keepChoosing(w, r, sess, errIdPUnavailable, err)
		return
	}
	sess.Trip = &session.Trip{State: session.Digest(state), URL: target, IdP: c.ID, Issuer: c.Issuer, Nonce: nonce, Verifier: verifier, ACR: level, Created: time.Now().UTC()}
	sess.Step, sess.IdP, sess.Banner = session.StepUpstream, c.ID, ""
	won, err := p.sessions.Advance(r.Context(), sess, nil, p.sessionCookie(r))
	if err != nil {
		p.fail(w, r, storeError(err), err)
		return
	}
	if !won {
		p.followTrip(w, r, sess.ID)
		return
	}
	p.record(r, audit.Event{Name: audit.IdPChosen, Step: audit.IdPChosenStep, Outcome: "ok", LoginID: sess.LoginID,
		SP: sess.Request.ClientID, IdP: c.ID, ACRAsked: sess.Request.ACR, Risk: sess.Risk})
	p.setCookie(w, sess.ID)
	p.clearPendingCookie(w)
	redirect(w, r, target)
}

// recordIdPRefusal records a login that went wrong at or after the IdP.
func (p *Platform) recordIdPRefusal(r *http.Request, sess *session.Session, code string) {
	ev := audit.Event{Name: audit.IdPReturned, Step: audit.IdPReturnedStep, Outcome: code, LoginID: sess.LoginID, IdP: sess.IdP, Risk: sess.Risk}
	if sess.Request != nil {
		ev.SP, ev.ACRAsked = sess.Request.ClientID, sess.Request.ACR
	}
	p.record(r, ev)
}

// followTrip answers the loser of a race on the choice: the browser goes
// where the winner sent it, since both requests came from it.
func (p *Platform) followTrip(w http.ResponseWriter, r *http.Request, id string) {
	sess, err := p.sessions.Load(r.Context(), id)
	switch {
	case err != nil:
		p.fail(w, r, storeError(err), err)
	case sess.Step == session.StepUpstream && sess.Trip != nil && sess.Trip.URL != "":
		p.setCookie(w, sess.ID)
		p.clearPendingCookie(w)
		redirect(w, r, sess.Trip.URL)
	default:
		p.stale(w, r, sess, errBadStep, nil)
	}
}

// atChooser finds the request waiting at the chooser: the pending cookie
// of a new request first, else a stored session sent back to the chooser
// (after an IdP error).
func (p *Platform) atChooser(w http.ResponseWriter, r *http.Request) (*session.Session, bool) {
	if sess := p.pendingRequest(r); sess != nil {
		return sess, true
	}
	return p.requireStep(w, r, session.StepAuthorize)
}

// keepChoosing returns to the chooser with a banner, so the citizen can
// pick another IdP instead of facing a dead end.
func (p *Platform) keepChoosing(w http.ResponseWriter, r *http.Request, sess *session.Session, e web.Error, cause error) {
	p.metrics.login(p.cfg.ID, sess.IdP, e.Code)
	p.recordIdPRefusal(r, sess, e.Code)
	p.failedTrip(r, sess, e.Code)
	p.log.WarnContext(r.Context(), "back to chooser", "code", e.Code, "err", cause, "correlation_id", web.CorrelationID(r.Context()))
	sess.Step, sess.Banner = session.StepAuthorize, e.Code
	if sess.Pending() {
		// A pending request stays in its cookie, banner included:
		// nothing was stored yet and nothing needs to be.
		if err := p.holdPending(w, r, sess); err != nil {
			p.fail(w, r, storeError(err), err)
			return
		}
		redirect(w, r, "/authorize/choose")
		return
	}
	if err := p.sessions.Save(r.Context(), sess); err != nil {
		p.fail(w, r, storeError(err), err)
		return
	}
	p.setCookie(w, sess.ID)
	redirect(w, r, "/authorize/choose")
}

// requireStep loads the session and checks the flow is at one of steps
// (every step but done needs a request under way); otherwise it answers
// with the right page and reports false.
func (p *Platform) requireStep(w http.ResponseWriter, r *http.Request, steps ...session.Step) (*session.Session, bool) {
	sess, err := p.loadSession(r)
	switch {
	case err != nil:
		p.fail(w, r, storeError(err), err)
		return nil, false
	case sess == nil:
		// A request waiting at the chooser still names its SP.
		if pending := p.pendingRequest(r); pending != nil {
			p.stale(w, r, pending, errBadStep, nil)
		} else {
			p.fail(w, r, errSessionExpired, nil)
		}
		return nil, false
	case !slices.Contains(steps, sess.Step) || (sess.Request == nil && sess.Step != session.StepDone):
		p.stale(w, r, sess, errBadStep, nil)
		return nil, false
	}
	return sess, true
}

// checkCSRF parses the form and compares its token to the session's.
func (p *Platform) checkCSRF(w http.ResponseWriter, r *http.Request, sess *session.Session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(sess.CSRF)) != 1 {
		p.fail(w, r, p.wayBack(r, sess, errCSRF), err)
		return false
	}
	return true
}

func lowest(levels []string) string { return acr.Lowest(levels) }

func highest(levels []string) string {
	h := ""
	for _, l := range levels {
		h = acr.Max(h, l)
	}
	return h
}

// accessDeniedURL is where "cancel" leads: back to the SP with
// access_denied, which is always safe since the redirect_uri was checked.
func accessDeniedURL(sess *session.Session, iss string) string {
	return oidcerr.New(oidcerr.AccessDenied, "the user cancelled the login").RedirectURL(sess.Request.RedirectURI, sess.Request.State, iss)
}
