package broker

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/broker/upstream"
)

// idpBackchannelLogout receives OIDC Back-Channel Logout 1.0 from an IdP:
// POST /idp/{idp}/backchannel-logout with a logout_token. The token is
// verified as the spec says, used once, and ends the broker sessions it
// names on every platform of this process that offers the IdP (an IdP
// registers one URI for the broker), revoking their access tokens and
// notifying their SPs in turn.
func (p *Platform) idpBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	up, ok := p.reg(r.Context()).idp(r.PathValue("idp"))
	if !ok {
		p.backchannelError(w, r, oidcerr.New(oidcerr.InvalidRequest, "unknown identity provider"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil || len(r.PostForm["logout_token"]) != 1 {
		p.backchannelError(w, r, oidcerr.New(oidcerr.InvalidRequest, "one logout_token is required in a form body"))
		return
	}
	bc, ok := up.(upstream.BackChannel)
	if !ok {
		p.backchannelError(w, r, oidcerr.New(oidcerr.InvalidRequest, "this identity provider has no back-channel logout"))
		return
	}
	lt, err := bc.VerifyLogoutToken(r.Context(), r.PostForm.Get("logout_token"))
	if err != nil {
		e := oidcerr.New(oidcerr.InvalidRequest, "the logout token is invalid").WithCause(err)
		if errors.Is(err, upstream.ErrUnavailable) {
			e = oidcerr.New(oidcerr.TemporarilyUnavailable, "the identity provider's keys cannot be fetched now").WithCause(err)
		}
		p.backchannelError(w, r, e)
		return
	}
	// A jti used once, for as long as the token could be replayed.
	ttl := max(time.Until(lt.Expiry), 0) + time.Minute
	fresh, err := p.sessions.AddMarker(r.Context(), "idp-jti", up.Config().ID+"\x00"+lt.JTI, "1", ttl)
	if err != nil {
		p.backchannelError(w, r, storeOAuthError(err))
		return
	}
	if !fresh {
		p.backchannelError(w, r, oidcerr.New(oidcerr.InvalidRequest, "the logout token was already used"))
		return
	}
	ended := 0
	for _, q := range p.peers {
		if _, ok := q.reg(r.Context()).idp(up.Config().ID); !ok {
			continue
		}
		n, err := q.endUpstreamSession(r.Context(), up.Config().ID, lt.SID, lt.Subject)
		if err != nil {
			p.backchannelError(w, r, storeOAuthError(err))
			return
		}
		ended += n
	}
	p.log.InfoContext(r.Context(), "back-channel logout from IdP", "idp", up.Config().ID, "sessions_ended", ended)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// endUpstreamSession ends the session this platform holds for an IdP
// session (by sid, else by sub): the session goes, its access tokens are
// revoked in the same round trip, and its SPs are told by back-channel.
func (p *Platform) endUpstreamSession(ctx context.Context, idp, sid, sub string) (int, error) {
	sess, err := p.sessions.TakeUpstream(ctx, idp, sid, sub)
	if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrCorrupt) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if sess.Login == nil || sess.Login.IdP != idp {
		return 0, nil
	}
	if err := p.sessions.Write(ctx, p.sessions.RevokeTokens(sess.SID, sess.Clients, p.accessTokenTTL())...); err != nil && len(sess.Clients) > 0 {
		return 0, err
	}
	p.notifyLogout(ctx, sess)
	return 1, nil
}

// backchannelError answers an IdP's logout request: 400 with a JSON error
// (§2.8), or 503 when we cannot check it now.
func (p *Platform) backchannelError(w http.ResponseWriter, r *http.Request, e *oidcerr.Error) {
	p.metrics.oauthError(p.cfg.ID, "idp_backchannel_logout", e.Code)
	p.log.WarnContext(r.Context(), "back-channel logout from IdP refused", "error", e.Code, "description", e.Description, "cause", e.Cause)
	e.WriteJSON(w)
}
