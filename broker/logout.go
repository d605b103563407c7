package broker

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/broker/upstream"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/web"
)

// logoutTTL bounds the trip through the IdP's end_session.
const logoutTTL = 10 * time.Minute

// pendingLogout is where the citizen goes once the IdP has logged out.
type pendingLogout struct {
	Target string `json:"t,omitempty"`
	// Lang is the language of the pages, for the one shown on return.
	Lang string `json:"l,omitempty"`
}

type logoutView struct {
	CSRF, ClientID, PostLogoutRedirectURI, State, SPName string
	// UILocales goes on with the confirmation, for the pages after it.
	UILocales string
}

// endSession is RP-initiated logout (step 7). The broker session is
// destroyed before the trip to the IdP, so a failing IdP cannot keep it
// alive.
func (p *Platform) endSession(w http.ResponseWriter, r *http.Request) {
	q, ok := p.authorizeParams(w, r)
	if !ok {
		return
	}
	web.SetRequestLang(r.Context(), q.Get("ui_locales"))
	hint, clientID := q.Get("id_token_hint"), q.Get("client_id")
	plr, state := q.Get("post_logout_redirect_uri"), q.Get("state")
	var sp *config.SP
	var hintSub string
	if hint != "" {
		aud, sub, err := p.verifyHint(hint)
		if err != nil || (clientID != "" && clientID != aud) {
			p.fail(w, r, errLogoutBad, err)
			return
		}
		sp, _ = p.reg(r.Context()).Client(aud)
		hintSub = sub
	} else if clientID != "" {
		if sp, ok = p.reg(r.Context()).Client(clientID); !ok {
			p.fail(w, r, errLogoutBad, nil)
			return
		}
	}
	if plr != "" && (sp == nil || !slices.Contains(sp.PostLogoutRedirectURIs, plr)) {
		p.fail(w, r, errLogoutBad, nil)
		return
	}
	target := ""
	if plr != "" {
		target = plr
		if state != "" {
			target = oidcerr.AppendQuery(plr, url.Values{"state": {state}})
		}
	}

	sess, err := p.loadSession(r)
	if err != nil {
		p.fail(w, r, storeError(err), err)
		return
	}
	if sess == nil {
		p.finishLogout(w, r, target)
		return
	}
	// Without a hint naming this session's user, the request may come
	// from any page (an <img> on another site): ask the citizen first.
	confirmed := r.Method == http.MethodPost && q.Get("confirm") == "1" &&
		subtle.ConstantTimeCompare([]byte(q.Get("csrf")), []byte(sess.CSRF)) == 1
	if !confirmed && !p.hintMatches(sess, sp, hintSub) {
		v := logoutView{CSRF: sess.CSRF, PostLogoutRedirectURI: plr, State: state, UILocales: web.MatchLang(q.Get("ui_locales"))}
		if sp != nil {
			v.ClientID, v.SPName = sp.ClientID, sp.Name
		}
		p.pages.Render(w, r, http.StatusOK, "logout.html", web.Page{Title: p.t(r, "logout.title"), Body: v})
		return
	}

	// The broker session dies before the trip to the IdP, in the same
	// round trip that records where to go back, so a failing IdP cannot
	// keep it alive.
	var to string
	var records []store.Entry
	if sess.Login != nil {
		up, _ := p.reg(r.Context()).idp(sess.Login.IdP)
		if ender, ok := up.(upstream.SessionEnder); ok {
			st := session.NewID()
			if u, ok := ender.EndSessionURL(r.Context(), sess.Login.UpstreamIDToken, st); ok {
				if rec, err := p.sessions.Record("logout", st, &pendingLogout{Target: target, Lang: web.PreferredLang(r)}, logoutTTL); err == nil {
					to, records = u, []store.Entry{rec}
				}
			}
		}
	}
	// The session's access tokens die with it, in the same round trip.
	records = append(records, p.sessions.RevokeTokens(sess.SID, sess.Clients, p.accessTokenTTL())...)
	won, err := p.endSession1(r, sess, records)
	if err != nil {
		p.fail(w, r, storeError(err), err)
		return
	}
	p.clearCookie(w)
	ev := audit.Event{Name: audit.LoggedOut, Step: audit.LoggedOutStep, Outcome: "ok"}
	if sp != nil {
		ev.SP = sp.ClientID
	}
	if sess.Login != nil {
		ev.IdP, ev.Account = sess.Login.IdP, p.account(sess.Login.Identity)
	}
	p.record(r, ev)
	if won {
		// Of parallel logouts of this session, only one tells the SPs.
		p.notifyLogout(r.Context(), sess)
	}
	if to != "" {
		redirect(w, r, to)
		return
	}
	p.finishLogout(w, r, target)
}

// endSession1 ends the session once: it reports false when another
// logout ended it first. A session changed meanwhile (an SSO request in
// another tab) is read again and ended all the same: logout never loses.
func (p *Platform) endSession1(r *http.Request, sess *session.Session, records []store.Entry) (bool, error) {
	for range 3 {
		won, err := p.sessions.End(r.Context(), sess, records...)
		if err != nil || won {
			return won, err
		}
		again, err := p.sessions.Load(r.Context(), sess.ID)
		if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrCorrupt) {
			return false, nil // ended by another logout
		}
		if err != nil {
			return false, err
		}
		*sess = *again
	}
	// Still changing under us: delete it outright, and tell the SPs.
	return true, p.sessions.Destroy(r.Context(), sess.ID, records...)
}

// logoutCallback is the IdP's return from its end_session.
func (p *Platform) logoutCallback(w http.ResponseWriter, r *http.Request) {
	var pl pendingLogout
	if err := p.sessions.TakeRecord(r.Context(), "logout", r.URL.Query().Get("state"), &pl); err != nil && !errors.Is(err, session.ErrNotFound) && !errors.Is(err, session.ErrCorrupt) {
		p.fail(w, r, storeError(err), err)
		return
	}
	web.SetLoginLang(r.Context(), pl.Lang)
	p.finishLogout(w, r, pl.Target)
}

// finishLogout returns to the SP's registered URI, or shows that the
// citizen is logged out.
func (p *Platform) finishLogout(w http.ResponseWriter, r *http.Request, target string) {
	if target != "" {
		redirect(w, r, target)
		return
	}
	p.pages.Render(w, r, http.StatusOK, "loggedout.html", web.Page{Title: p.t(r, "loggedout.title")})
}

// hintMatches reports whether the hint's sub is this session's user at
// that SP.
func (p *Platform) hintMatches(sess *session.Session, sp *config.SP, sub string) bool {
	if sess.Login == nil || sp == nil || sub == "" {
		return sess.Login == nil
	}
	want := identity.Sub(p.subSecret, sp.Sector, sess.Login.Identity.Hash())
	return subtle.ConstantTimeCompare([]byte(want), []byte(sub)) == 1
}

// verifyHint checks an id_token_hint we issued: our signature and issuer.
// Expiry is not checked, since SPs log out long after the 60 s lifetime.
func (p *Platform) verifyHint(raw string) (aud, sub string, err error) {
	if len(raw) > 8192 {
		return "", "", errors.New("id_token_hint too long")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return "", "", err
	}
	var c jwt.Claims
	if err := tok.Claims(p.signer.PublicJWKS(), &c); err != nil {
		return "", "", err
	}
	if c.Issuer != p.cfg.Issuer || len(c.Audience) != 1 {
		return "", "", errors.New("id_token_hint is not ours")
	}
	return c.Audience[0], c.Subject, nil
}
