package dashboard

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"

	"github.com/sesame-id/sesame/internal/web"
)

// base is what every page's Body holds: the catalogue in the page's
// language and the menu. Page views embed it, so templates read
// .Body.T.<key> and .Body.Menu.
type base struct {
	T    catalogue
	Menu template.HTML
}

// menuView is the menu partial's data.
type menuView struct {
	T        catalogue
	LoggedIn bool
	Current  string
	CSRF     string
	// LangHref and Lang are the link to this page in the other language.
	LangHref, Lang string
}

// base builds the page's base; s is nil when nobody is logged in.
func (a *App) base(r *http.Request, s *session) base {
	lang := langOf(r)
	v := menuView{T: catalogues[lang], Current: r.URL.Path}
	v.LangHref, v.Lang = langSwitch(r)
	if s != nil {
		v.LoggedIn, v.CSRF = true, s.CSRF
	}
	var buf bytes.Buffer
	if err := a.menu.ExecuteTemplate(&buf, "menu", v); err != nil {
		// A bug of the embedded partial: the page still renders, without
		// its menu, and the log says why.
		a.log.ErrorContext(r.Context(), "dashboard: menu", "err", err, "correlation_id", web.CorrelationID(r.Context()))
	}
	// The partial is an html/template: its output is escaped already.
	return base{T: catalogues[lang], Menu: template.HTML(buf.String())}
}

// render writes a page in the request's language.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, page, titleKey string, body any) {
	lang := langOf(r)
	a.pages[lang].Render(w, r, status, page, web.Page{Title: t(lang, titleKey), Lang: lang, Body: body})
}

// fail writes an error page in the request's language.
func (a *App) fail(w http.ResponseWriter, r *http.Request, e web.Error) {
	a.pages[langOf(r)].RenderError(w, r, e)
}

// failWith is fail for a failure whose cause is for the log, never for
// the page.
func (a *App) failWith(w http.ResponseWriter, r *http.Request, e web.Error, err error) {
	a.log.WarnContext(r.Context(), "dashboard: request failed", "code", e.Code, "err", err,
		"correlation_id", web.CorrelationID(r.Context()))
	a.fail(w, r, e)
}

// homeView is the landing page.
type homeView struct {
	base
	LoggedIn           bool
	GivenName, IdPName string
	// LoginURL starts the login, coming back to the page asked for.
	LoginURL string
}

// home is the landing page: what the space is and the login button, or
// the space's menu when logged in.
func (a *App) home(w http.ResponseWriter, r *http.Request) {
	s, loggedIn := a.currentSession(r)
	v := homeView{base: a.base(r, s), LoggedIn: loggedIn, LoginURL: "/login"}
	if back := returnPath(r.URL.Query().Get("retour")); back != "/" {
		v.LoginURL += "?retour=" + url.QueryEscape(back)
	}
	if loggedIn {
		v.GivenName, v.IdPName = s.GivenName, a.idpName(s.IdP)
	}
	a.render(w, r, http.StatusOK, "home.html", "home_title", v)
}

// idpName is the name of an IdP, its id when the configuration does not
// know it (one removed since).
func (a *App) idpName(id string) string {
	if n := a.idpNames[id]; n != "" {
		return n
	}
	return id
}
