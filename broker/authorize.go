package broker

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sesame-id/sesame/broker/acr"
	"github.com/sesame-id/sesame/broker/authreq"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/risk"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/web"
)

// maxForm bounds every form body we read from a browser or an SP.
const maxForm = 64 << 10

// authorize is step 1: validate the SP's request, keep it in a session, and
// send the browser to the chooser (or straight on, for SSO or idp_hint).
func (p *Platform) authorize(w http.ResponseWriter, r *http.Request) {
	if ok, left := p.limit(r.Context(), "authorize", p.clientIP(r), p.cfg.RateLimits.AuthorizePerIP); !ok {
		p.tooManyPages(w, r, left)
		return
	}
	q, ok := p.authorizeParams(w, r)
	if !ok {
		return
	}
	req, sp, hint, oerr := p.authorizationRequest(r, q)
	if req != nil {
		// A POSTed or pushed request's ui_locales, which the URL lacks.
		web.SetRequestLang(r.Context(), req.UILocales)
	}
	if oerr != nil {
		p.authorizeError(w, r, req, oerr, sp != nil)
		return
	}

	hintSub := ""
	if hint != "" {
		aud, sub, err := p.verifyHint(hint)
		if err != nil || aud != req.ClientID {
			p.authorizeError(w, r, req, oidcerr.New(oidcerr.InvalidRequest, "id_token_hint is not an id_token this provider issued to this client").WithCause(err), true)
			return
		}
		hintSub = sub
	}

	loginID := session.NewLoginID()
	suspicious := p.assessRisk(r)
	p.record(r, audit.Event{Name: audit.AuthorizeReceived, Step: audit.AuthorizeReceivedStep, Outcome: "ok", LoginID: loginID,
		SP: req.ClientID, Scopes: req.Scopes, ACRAsked: req.ACR, Risk: suspicious})

	existing, err := p.loadSession(r)
	if err != nil {
		p.authorizeError(w, r, req, storeOAuthError(err), true)
		return
	}
	// A session of another person than the hint names never serves this
	// request: the SP asked about one user and must not get another's.
	if existing != nil && hintSub != "" && !p.hintMatches(existing, sp, hintSub) {
		existing.Login = nil
	}
	login := p.usableLogin(r.Context(), existing, req)
	if login != nil && len(suspicious) > 0 && !acr.AtLeast(login.ACR, risk.MinLevel) {
		// A suspicious context is never served by a login below
		// eidas2, fresh or reused (a stolen session cookie is one).
		login = nil
	}
	if login != nil && !p.ssoAllowed(r, login, req, loginID) {
		// The citizen blocked this account since the session began: the
		// session serves no new SP, and they choose another account.
		login = nil
	}
	if login != nil {
		existing.LoginID, existing.Risk = loginID, suspicious
		p.record(r, audit.Event{Name: audit.SSOReused, Step: audit.SSOReusedStep, Outcome: "ok", LoginID: loginID,
			SP: req.ClientID, IdP: login.IdP, ACRAsked: req.ACR, ACR: login.ACR, Account: p.account(login.Identity)})
		p.reuseLogin(w, r, existing, req)
		return
	}
	if req.HasPrompt("none") {
		p.authorizeError(w, r, req, oidcerr.New(oidcerr.LoginRequired, "no session satisfies the request and prompt=none forbids a login page"), true)
		return
	}

	// A new login: the request waits at the chooser in a sealed cookie,
	// and the store holds nothing until the citizen chooses an IdP. The
	// old session is replaced then, not reused.
	sess := p.sessions.NewPending(req)
	sess.LoginID, sess.Risk = loginID, suspicious
	if req.IDPHint != "" {
		up, _ := p.reg(r.Context()).idp(req.IDPHint)
		if up == nil || !up.Config().IsActive() || !acr.AtLeast(highest(up.Config().ACRValues), req.ACR) {
			p.authorizeError(w, r, req, oidcerr.New(oidcerr.InvalidRequest, "idp_hint names an identity provider that cannot serve this request now"), true)
			return
		}
		// A hinted IdP the suspicious context greys out is no error of
		// the SP's: the citizen chooses another account.
		if !barredByRisk(sess, up.Config()) {
			p.startTrip(w, r, sess, up)
			return
		}
	}
	if err := p.holdPending(w, r, sess); err != nil {
		p.authorizeError(w, r, req, storeOAuthError(err), true)
		return
	}
	redirect(w, r, "/authorize/choose")
}

// authorizationRequest is the validated request and its id_token_hint:
// taken from PAR by its request_uri, or parsed from the query or form. A
// platform that requires PAR refuses the latter.
func (p *Platform) authorizationRequest(r *http.Request, q url.Values) (*authreq.Request, *config.SP, string, *oidcerr.Error) {
	// Only request_uris from our PAR endpoint are taken; any other is
	// answered request_uri_not_supported by the parser, to the SP.
	if strings.HasPrefix(q.Get("request_uri"), requestURIPrefix) {
		pr, sp, oerr := p.pushedRequest(r.Context(), q)
		if oerr != nil {
			return nil, nil, "", oerr
		}
		return pr.Request, sp, pr.Hint, nil
	}
	req, sp, oerr := authreq.Parse(q, p.reg(r.Context()), p.authPolicy(r.Context(), false))
	if oerr == nil {
		oerr = p.checkSPPolicy(sp, req)
	}
	if oerr == nil && p.cfg.RequiresPAR() {
		oerr = oidcerr.New(oidcerr.InvalidRequest, "this platform takes pushed authorization requests only (RFC 9126): push the request to the pushed_authorization_request_endpoint, then send request_uri")
	}
	return req, sp, q.Get("id_token_hint"), oerr
}

// holdPending keeps a new request for the chooser: in its sealed cookie,
// or, when it is too large for one, in the store under a session cookie.
func (p *Platform) holdPending(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	v, err := p.sessions.SealPending(sess)
	if err == nil {
		p.setPendingCookie(w, v)
		return nil
	}
	if !errors.Is(err, session.ErrPendingTooLarge) {
		return err
	}
	if err := p.sessions.Commit(r.Context(), sess, nil, p.sessionCookie(r)); err != nil {
		return err
	}
	p.setCookie(w, sess.ID)
	p.clearPendingCookie(w)
	return nil
}

// authorizeParams reads the request from the query (GET) or the form
// (POST), refusing bodies over maxForm.
func (p *Platform) authorizeParams(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if r.Method == http.MethodGet {
		return r.URL.Query(), true
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, errBadRequest, err)
		return nil, false
	}
	return r.PostForm, true
}

// authorizeError answers an authorization error: on a page when the
// redirect_uri cannot be trusted, else back to the SP with state and iss.
func (p *Platform) authorizeError(w http.ResponseWriter, r *http.Request, req *authreq.Request, e *oidcerr.Error, trusted bool) {
	p.metrics.oauthError(p.cfg.ID, "authorize", e.Code)
	ev := audit.Event{Name: audit.Refused, Step: audit.AuthorizeReceivedStep, Outcome: e.Code}
	if req != nil {
		ev.SP, ev.ACRAsked = req.ClientID, req.ACR
	}
	p.record(r, ev)
	p.log.InfoContext(r.Context(), "authorize refused", "error", e.Code, "description", e.Description, "cause", e.Cause, "correlation_id", web.CorrelationID(r.Context()))
	if e.NoRedirect || !trusted || req == nil || req.RedirectURI == "" {
		pe := errBadRequest
		if e.Code == oidcerr.InvalidClient || e.NoRedirect {
			pe = errBadClient
		}
		p.pages.RenderError(w, r, pe)
		return
	}
	redirect(w, r, e.RedirectURL(req.RedirectURI, req.State, p.cfg.Issuer))
}

// checkSPPolicy applies what the SP's registration allows: prompts, amr
// through claims, and idp_hint.
func (p *Platform) checkSPPolicy(sp *config.SP, req *authreq.Request) *oidcerr.Error {
	for _, pr := range req.Prompt {
		if !slices.Contains(sp.Prompts, pr) {
			return oidcerr.Newf(oidcerr.InvalidRequest, "prompt=%s is not allowed for this client", pr)
		}
	}
	if (slices.Contains(req.IDTokenClaims, "amr") || slices.Contains(req.UserinfoClaims, "amr")) && !slices.Contains(sp.Claims, "amr") {
		return oidcerr.New(oidcerr.InvalidRequest, "the amr claim is not allowed for this client")
	}
	if req.IDPHint != "" && (!slices.Contains(sp.IdPHints, req.IDPHint) || !idpAllowed(sp, req.IDPHint)) {
		return oidcerr.New(oidcerr.InvalidRequest, "idp_hint names an identity provider this client may not use")
	}
	return nil
}

// idpAllowed applies the SP's IdP allow-list and deny-list.
func idpAllowed(sp *config.SP, id string) bool {
	return (len(sp.IdPsAllowed) == 0 || slices.Contains(sp.IdPsAllowed, id)) && !slices.Contains(sp.IdPsDenied, id)
}

// usableLogin returns the session's login when it may serve the request
// without a new authentication (SSO): only at the platform's SSO levels
// (so eidas3 always re-authenticates on "+"), with a login at least that
// high, within max_age, without prompt=login, and from an IdP the SP may
// use.
func (p *Platform) usableLogin(ctx context.Context, s *session.Session, req *authreq.Request) *session.Login {
	if s == nil || s.Login == nil || req.HasPrompt("login") || !slices.Contains(p.cfg.SSOLevels, req.ACR) {
		return nil
	}
	if sp, ok := p.reg(ctx).Client(req.ClientID); !ok || !idpAllowed(sp, s.Login.IdP) {
		return nil
	}
	if !acr.AtLeast(s.Login.ACR, req.ACR) {
		return nil
	}
	if req.MaxAge >= 0 && time.Since(s.Login.AuthTime) > time.Duration(req.MaxAge)*time.Second {
		return nil
	}
	return s.Login
}

// reuseLogin serves a request from an existing login (SSO): to the
// information page, or straight to the SP for prompt=none.
func (p *Platform) reuseLogin(w http.ResponseWriter, r *http.Request, sess *session.Session, req *authreq.Request) {
	sess.Request = req
	sess.Step = session.StepAuthenticated
	sess.Reused = true
	sess.Issued, sess.IssuedAt = "", time.Time{}
	if req.HasPrompt("none") {
		// A consent that needs a ticked box cannot be given silently.
		if sp, ok := p.reg(r.Context()).Client(req.ClientID); ok && needsConsent(sp, req.Scopes) {
			p.authorizeError(w, r, req, oidcerr.New(oidcerr.ConsentRequired, "this client needs the user's consent, which prompt=none forbids asking"), true)
			return
		}
		// Each /authorize is a request of its own: parallel ones each
		// get their code, so no compare-and-set here.
		p.issueCode(w, r, sess, false)
		return
	}
	if err := p.sessions.Save(r.Context(), sess); err != nil {
		p.authorizeError(w, r, req, storeOAuthError(err), true)
		return
	}
	redirect(w, r, "/authorize/consent")
}
