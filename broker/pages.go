package broker

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/web"
)

// The broker's pages other than the flow's: the language they are in, the
// layout around them, "Qu'est-ce que Sésame ?", the legal pages every
// public service must have, and the button integrators copy.

// langCookie names the cookie of the citizen's explicit language choice
// (?lang=), per platform as every cookie of the broker.
func (p *Platform) langCookie() string { return p.cfg.Cookie + "_lang" }

// t is the message key of the catalogue in the request's language.
func (p *Platform) t(r *http.Request, key string, args ...any) string {
	return messages.T(web.PreferredLang(r), key, args...)
}

// loginLang is the language the SP asked for the login sess belongs to:
// its request's ui_locales, matched to ours, or, once the request is
// served (for logout), the one kept from it; "" when none was asked.
func loginLang(sess *session.Session) string {
	if sess.Request != nil {
		return web.MatchLang(sess.Request.UILocales)
	}
	return sess.Lang
}

// noteLang makes the rest of the request, error pages included, use the
// language of the login sess belongs to (see web.PreferredLang for what
// ranks above it).
func noteLang(r *http.Request, sess *session.Session) {
	if sess != nil {
		web.SetLoginLang(r.Context(), loginLang(sess))
	}
}

// levelKey names a level for citizens: standard or enhanced, never an
// acr value.
func levelKey(acr string) string {
	if acr == "" || acr == "eidas1" {
		return "level.standard"
	}
	return "level.plus"
}

// pageLayout is what the layout shows around the platform's pages: its
// name and tagline, "Qu'est-ce que Sésame ?", and the footer's mandatory
// links.
func pageLayout(cfg config.Platform, legal *config.Pages) web.Layout {
	l := web.Layout{
		Tagline:     messages.Text("platform.std.tagline"),
		HeaderLinks: []web.Link{{ID: "about-link", Href: "/sesame", Text: messages.Text("link.about")}},
		FooterLinks: []web.Link{
			{ID: "a11y-link", Href: "/accessibilite", Text: messages.Text("link.a11y." + legal.AccessibilityStatus())},
			{ID: "legal-link", Href: "/mentions-legales", Text: messages.Text("link.legal")},
			{ID: "privacy-link", Href: "/donnees-personnelles", Text: messages.Text("link.privacy")},
			{ID: "cookies-link", Href: "/cookies", Text: messages.Text("link.cookies")},
		},
	}
	if cfg.IsPlus() {
		l.Service = web.Text{FR: "Sésame+", EN: "Sésame+"}
		l.Tagline = messages.Text("platform.plus.tagline")
	}
	return l
}

// minutes writes a duration for citizens, in whole minutes.
func minutes(d time.Duration, lang string) string {
	n := int(d.Round(time.Minute).Minutes())
	return web.Text{FR: fmt.Sprintf("%d minutes", n), EN: fmt.Sprintf("%d minutes", n)}.In(lang)
}

// contactLink is an operator's contact as a link: mailto: for an address,
// no link for anything else (a postal address, say, or unset's words).
type contactLink struct{ Href, Text string }

func contact(s, unset string) *contactLink {
	switch {
	case s == "":
		return &contactLink{Text: unset}
	case strings.Contains(s, "@") && !strings.Contains(s, "://"):
		return &contactLink{Href: "mailto:" + s, Text: s}
	case strings.HasPrefix(s, "https://"):
		return &contactLink{Href: s, Text: s}
	}
	return &contactLink{Text: s}
}

// legalView is the Body of the legal pages: the operator's words, each
// nil or "" when unset (the page then says so).
type legalView struct {
	Operator, Address, Director, Host string
	Contact, DPO                      *contactLink
	Issuer                            string
	// Accessibility is none, partial or full; Audit the audit's words.
	Accessibility, Audit string
	// SessionTTL and the cookie names, for the cookies page.
	SessionTTL                           string
	SessionCookie, PendingCookie, LangCk string
}

func (p *Platform) legalView(r *http.Request) legalView {
	l := p.legal
	if l == nil {
		l = &config.Pages{}
	}
	unset := p.t(r, "unset")
	return legalView{
		Operator: l.Operator, Address: l.Address, Director: l.PublicationDirector, Host: l.Host,
		Contact: contact(l.Contact, unset), DPO: contact(l.DPO, unset), Issuer: p.cfg.Issuer,
		Accessibility: l.AccessibilityStatus(), Audit: l.AccessibilityAudit,
		SessionTTL:    minutes(p.cfg.SessionTTL.D(30*time.Minute), web.PreferredLang(r)),
		SessionCookie: p.cfg.Cookie, PendingCookie: p.pendingCookie(), LangCk: p.langCookie(),
	}
}

// infoPage renders one of the pages that need no session.
func (p *Platform) infoPage(page, titleKey string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p.pages.Render(w, r, http.StatusOK, page, web.Page{Title: p.t(r, titleKey), Body: p.legalView(r)})
	}
}

// buttonVariant is one button of GET /button: shown, and its HTML to copy.
type buttonVariant struct {
	ID, TitleKey, LangKey string
	HTML                  template.HTML
	Source                string
}

type buttonView struct {
	Variants []buttonVariant
	CSS      string
	AboutURL string
}

// buttonPage shows integrators the Sésame button in its variants, with
// the HTML and the CSS to copy (docs/button.md).
func (p *Platform) buttonPage(w http.ResponseWriter, r *http.Request) {
	about := strings.TrimSuffix(p.cfg.Issuer, "/") + "/sesame"
	v := buttonView{AboutURL: about}
	for _, b := range []struct {
		id, title, lang string
		plus            bool
	}{
		{"std-fr", "button.std", "fr", false}, {"plus-fr", "button.plus", "fr", true},
		{"std-en", "button.std", "en", false}, {"plus-en", "button.plus", "en", true},
	} {
		btn := web.Button{Plus: b.plus, Lang: b.lang, AboutURL: about}
		h := btn.HTML()
		v.Variants = append(v.Variants, buttonVariant{ID: b.id, TitleKey: b.title, LangKey: "button." + b.lang, HTML: h, Source: string(h)})
	}
	css, _ := web.Asset(web.ButtonStylesheet)
	v.CSS = string(css)
	p.pages.Render(w, r, http.StatusOK, "button.html", web.Page{Title: p.t(r, "button.title"),
		Stylesheets: []string{web.ButtonStylesheet}, Body: v})
}
