package demosp

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/sesame-id/sesame/internal/web"
)

// logout clears the local session first, then asks the provider of the
// platform the session was made on to end its own (RP-initiated logout): if
// the provider is down, the citizen is at least logged out here.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	s, ok := a.currentSession(r)
	if sid := cookieValue(r, sessionCookie); sid != "" {
		a.sessions.delete(sid)
	}
	a.clearCookie(w, sessionCookie)
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	p, ok := a.platform(s.Platform)
	if !ok {
		p = a.std
	}
	d, err := a.discover(r, p)
	if err == nil && d.endSession == "" {
		err = errors.New("the provider advertises no end_session_endpoint")
	}
	var dest *url.URL
	if err == nil {
		dest, err = url.Parse(d.endSession)
	}
	if err != nil {
		slog.WarnContext(r.Context(), "demo-sp: logged out locally only", "err", err,
			"correlation_id", web.CorrelationID(r.Context()))
		a.render(w, r, http.StatusOK, "logged_out", loggedOutPage(r, true))
		return
	}
	tx := pending{Logout: true, Platform: p.id, State: randomString(32)}
	handle := randomString(32)
	a.txs.put(handle, tx, txTTL)
	a.setCookie(w, txCookie, handle, txTTL)
	q := dest.Query()
	q.Set("id_token_hint", s.IDToken)
	q.Set("post_logout_redirect_uri", a.cfg.BaseURL+"/logged-out")
	q.Set("state", tx.State)
	q.Set("client_id", p.clientID)
	q.Set("ui_locales", web.PreferredLang(r))
	dest.RawQuery = q.Encode()
	http.Redirect(w, r, dest.String(), http.StatusSeeOther)
}

// loggedOut is where the provider sends the citizen back. The state check
// proves the return answers this browser's logout, not a forged link.
func (a *App) loggedOut(w http.ResponseWriter, r *http.Request) {
	handle := cookieValue(r, txCookie)
	a.clearCookie(w, txCookie)
	tx, ok := a.txs.take(handle)
	if handle == "" || !ok || !tx.Logout || !equal(r.URL.Query().Get("state"), tx.State) {
		a.fail(w, r, errLogoutState)
		return
	}
	a.render(w, r, http.StatusOK, "logged_out", loggedOutPage(r, false))
}

// loggedOutPage says whether the provider's session may still be open, so the
// citizen is not told more than what happened.
func loggedOutPage(r *http.Request, localOnly bool) web.Page {
	return web.Page{Title: msg(web.PreferredLang(r), "logout.title"), Body: map[string]any{"LocalOnly": localOnly}}
}
