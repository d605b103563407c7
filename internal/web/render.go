// Package web is the page layer shared by the broker, the mock identity
// providers and the demo service provider: one accessible layout, two
// themes, security headers, a person-facing error page and the embedded
// static assets.
//
// # Pages
//
// Each service embeds its own page templates (html/template) and builds a
// Renderer from them. A page file defines a "content" template, which the
// shared layout places inside <main> (already within a fr-container):
//
//	{{define "content"}}
//	<h1>{{.Title}}</h1>
//	<p>{{.Body.Greeting}}</p>
//	{{end}}
//
// Handlers pass a Page, whose Body is their own data:
//
//	r.Render(w, req, http.StatusOK, "hello.html", web.Page{
//		Title: "Bonjour",
//		Body:  struct{ Greeting string }{"Bienvenue"},
//	})
//
// Inside templates the dot is a View (Title, Lang, Body, Brand, ...). Any
// other value passed to Render becomes the Body of a Page with no title.
//
// Templates use DSFR class names only (fr-container, fr-btn, fr-alert, ...):
// ThemeDSFR styles them with the vendored DSFR, ThemeNeutral with
// static/neutral.css, which styles the same names. No page needs
// JavaScript, and the CSP forbids inline script and style.
package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Theme selects the stylesheet pages load.
type Theme string

const (
	// ThemeDSFR is the French State design system. Its terms of use
	// restrict it to State services (typically on a .gouv.fr domain): use
	// it only for such deployments. It also shows the "République
	// Française" block in the header and footer.
	ThemeDSFR Theme = "dsfr"
	// ThemeNeutral is a plain accessible theme usable by anyone.
	ThemeNeutral Theme = "neutral"
)

// Page is what handlers pass to Render: the page title, its language, and
// the page's own data.
type Page struct {
	// Title is the page's title: in <title> (followed by the product and
	// brand names) and available to the template as .Title for its <h1>.
	Title string
	// Lang is the BCP 47 language of the page, for <html lang>; "" means
	// the request's (PreferredLang) under WithLanguage, "fr" otherwise. It
	// also selects the language of the layout's own words (skip links,
	// footer) and of .M: English for "en…", French otherwise.
	Lang string
	// Stylesheets are extra stylesheets for this page only, as asset
	// names relative to static/ (e.g. "sesame-button.css").
	Stylesheets []string
	// FormAction lists extra CSP form-action sources for this page only, for
	// a form that posts to another origin (an auto-submitted form_post to a
	// service provider, say). When set, the page's form-action is 'self',
	// the Renderer's SecurityPolicy.FormAction, and these.
	FormAction []string
	// Body is the page's own data, .Body in the template.
	Body any
}

// View is the dot inside templates: the Page plus what the layout adds.
type View struct {
	Title string
	Lang  string
	Body  any
	// Brand is the service name given to NewRenderer (e.g. "Démo
	// fournisseur de service"), shown under "Sésame" in the header.
	Brand string
	// Theme is the Renderer's theme; IsDSFR is true for ThemeDSFR, for
	// templates to show State-only marks.
	Theme  Theme
	IsDSFR bool
	// CorrelationID is the request's correlation id, "" if none.
	CorrelationID string
	// Stylesheet is the theme's stylesheet, relative to static/;
	// Stylesheets are the page's extra ones, after sesame.css.
	Stylesheet  string
	Stylesheets []string
	// Service is the title in the header ("Sésame" unless the Layout
	// says otherwise), in the page's language.
	Service string
	// Home is where the header's title links ("": no link).
	Home string
	// HeaderLinks and FooterLinks are the Layout's links in the page's
	// language; Switch is the link to the other language (nil outside
	// WithLanguage).
	HeaderLinks, FooterLinks []ViewLink
	Switch                   *LangSwitch
	// messages is the service's catalogue, read through M and MH.
	messages Catalogue
}

// ViewLink is a Link in the page's language.
type ViewLink struct{ ID, Href, Text string }

// M returns the message key of the service's catalogue (or the layout's
// own) in the page's language, formatted with args when there are any.
func (v View) M(key string, args ...any) string {
	if _, ok := v.messages[key]; ok {
		return v.messages.T(v.Lang, key, args...)
	}
	return layoutMessages.T(v.Lang, key, args...)
}

// MH is M for a sentence with markup in its values: the message is
// escaped, and args made by strong (or other template.HTML) go in as
// they are, e.g. {{.MH "chooser.asks" (strong .Body.SPName)}}.
func (v View) MH(key string, args ...any) template.HTML {
	cat := v.messages
	if _, ok := cat[key]; !ok {
		cat = layoutMessages
	}
	if _, ok := cat[key]; !ok {
		return template.HTML(template.HTMLEscapeString("[" + key + "]"))
	}
	return formatHTML(cat.Text(key).In(v.Lang), args)
}

// T picks the French or the English text according to the page language, for
// the few words a layout or a shared template needs in both.
func (v View) T(fr, en string) string {
	if isEnglish(v.Lang) {
		return en
	}
	return fr
}

// Renderer renders page templates inside the shared layout. It is safe for
// concurrent use once built; set Policy before serving.
type Renderer struct {
	// Policy is the security header set Render and RenderError send.
	Policy SecurityPolicy

	theme     Theme
	brand     string
	pages     map[string]*template.Template
	errorPage *template.Template
	messages  Catalogue
	layout    Layout
	frames    frames
}

// Layout is what the shared layout shows around a service's pages
// besides its brand: all optional, in both languages.
type Layout struct {
	// Service replaces "Sésame" as the header's title ("Sésame+").
	Service Text
	// Tagline replaces the brand given to NewRenderer, under the title
	// and in <title>.
	Tagline Text
	// Home is where the header's title links ("": no link).
	Home string
	// HeaderLinks are shown at the right of the header ("Qu'est-ce que
	// Sésame ?"), FooterLinks at the bottom of the footer (the
	// accessibility statement, legal notices, personal data, cookies).
	HeaderLinks, FooterLinks []Link
}

// Link is a link of the layout, with its text in both languages and an
// optional id for tests.
type Link struct {
	ID, Href string
	Text     Text
}

// SetMessages gives the Renderer its service's catalogue, which templates
// read as {{.M "key"}}. Call it before serving.
func (r *Renderer) SetMessages(c Catalogue) { r.messages = c; r.frames.reset() }

// SetLayout sets what the layout shows around the pages. Call it before
// serving.
func (r *Renderer) SetLayout(l Layout) { r.layout = l; r.frames.reset() }

// layoutName is the template the layout defines and every render executes.
// Page files must not define it.
const layoutName = "sesame.layout"

// NewRenderer parses the shared layout together with each page file in pages
// matching pattern (fs.Glob syntax, e.g. "templates/*.html"). Pages are
// named by their base file name ("login.html"), which must be unique.
//
// Every page gets its own copy of the layout, so each can define "content"
// (and any helper template) without colliding with the others'. pages may
// be nil for a Renderer that only renders errors.
func NewRenderer(theme Theme, brand string, pages fs.FS, pattern string) (*Renderer, error) {
	switch theme {
	case ThemeDSFR, ThemeNeutral:
	default:
		return nil, fmt.Errorf("web: unknown theme %q (want %q or %q)", theme, ThemeDSFR, ThemeNeutral)
	}
	layout, err := template.New(layoutName).Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: layout: %w", err)
	}
	r := &Renderer{
		theme: theme,
		brand: strings.TrimSpace(brand),
		pages: map[string]*template.Template{},
	}
	src, err := fs.ReadFile(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("web: layout: %w", err)
	}
	if r.frames.tmpl, err = frameTemplate(layout, string(src)); err != nil {
		return nil, err
	}
	if r.errorPage, err = parsePage(layout, templateFS, "templates/error.html"); err != nil {
		return nil, err
	}
	if pages == nil {
		return r, nil
	}
	files, err := fs.Glob(pages, pattern)
	if err != nil {
		return nil, fmt.Errorf("web: page pattern %q: %w", pattern, err)
	}
	if len(files) == 0 {
		// Almost always a wrong pattern or a missing //go:embed: better
		// to fail at start-up than on the first request.
		return nil, fmt.Errorf("web: page pattern %q matches no file", pattern)
	}
	for _, f := range files {
		name := path.Base(f)
		if _, dup := r.pages[name]; dup {
			return nil, fmt.Errorf("web: two page files named %q", name)
		}
		if r.pages[name], err = parsePage(layout, pages, f); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// parsePage adds one page file to a fresh copy of the layout.
func parsePage(layout *template.Template, fsys fs.FS, file string) (*template.Template, error) {
	t, err := layout.Clone()
	if err != nil {
		return nil, fmt.Errorf("web: page %s: %w", file, err)
	}
	// Parsing a file named like an existing template replaces it; checking
	// the layout's body afterwards catches a page that (re)defined it.
	layoutTree := t.Lookup(layoutName).Tree
	if _, err := t.ParseFS(fsys, file); err != nil {
		return nil, fmt.Errorf("web: page %s: %w", file, err)
	}
	if t.Lookup(layoutName).Tree != layoutTree {
		return nil, fmt.Errorf("web: page %s redefines %q", file, layoutName)
	}
	if t.Lookup("content") == nil {
		return nil, fmt.Errorf("web: page %s defines no \"content\" template", file)
	}
	return t, nil
}

// Render writes status and the named page with data, inside the layout. data
// is a Page (or *Page); anything else is used as the Body of an untitled
// Page. The response carries the security headers of r.Policy and is never
// cached, since pages in an identity flow are specific to one person.
//
// The page is executed into a buffer first: a template error becomes a clean
// error page instead of half a page under a 200.
func (r *Renderer) Render(w http.ResponseWriter, req *http.Request, status int, page string, data any) {
	t, ok := r.pages[page]
	if !ok {
		slog.Default().ErrorContext(req.Context(), "web: unknown page", "page", page,
			"correlation_id", CorrelationID(req.Context()))
		r.RenderError(w, req, ErrInternal)
		return
	}
	var p Page
	switch d := data.(type) {
	case Page:
		p = d
	case *Page:
		if d != nil {
			p = *d
		}
	default:
		p.Body = data
	}
	if status == 0 {
		status = http.StatusOK
	}
	if err := r.write(w, req, status, t, p); err != nil {
		slog.Default().ErrorContext(req.Context(), "web: render page", "page", page, "err", err,
			"correlation_id", CorrelationID(req.Context()))
		r.RenderError(w, req, ErrInternal)
	}
}

func (r *Renderer) view(req *http.Request, p Page) View {
	lang := p.Lang
	if lang == "" && stateOf(req.Context()) != nil {
		lang = PreferredLang(req)
	}
	v := View{
		Title:         p.Title,
		Lang:          cleanLang(lang),
		Body:          p.Body,
		Brand:         r.brand,
		Theme:         r.theme,
		IsDSFR:        r.theme == ThemeDSFR,
		CorrelationID: CorrelationID(req.Context()),
		Stylesheet:    "neutral.css",
		Stylesheets:   p.Stylesheets,
		Service:       "Sésame",
		Home:          r.layout.Home,
		messages:      r.messages,
	}
	if v.IsDSFR {
		v.Stylesheet = "dsfr/dsfr.min.css"
	}
	if s := r.layout.Service.In(v.Lang); s != "" {
		v.Service = s
	}
	if t := r.layout.Tagline.In(v.Lang); t != "" {
		v.Brand = t
	}
	for _, l := range r.layout.HeaderLinks {
		v.HeaderLinks = append(v.HeaderLinks, ViewLink{ID: l.ID, Href: l.Href, Text: l.Text.In(v.Lang)})
	}
	for _, l := range r.layout.FooterLinks {
		v.FooterLinks = append(v.FooterLinks, ViewLink{ID: l.ID, Href: l.Href, Text: l.Text.In(v.Lang)})
	}
	v.Switch = langSwitch(req, v.Lang)
	return v
}

// write executes t and only then touches the response, so that on error
// nothing has been sent yet.
func (r *Renderer) write(w http.ResponseWriter, req *http.Request, status int, t *template.Template, p Page) error {
	buf := pageBuffers.Get().(*bytes.Buffer)
	defer putPageBuffer(buf)
	if err := r.execute(buf, t, r.view(req, p)); err != nil {
		return err
	}
	policy := r.Policy
	if len(p.FormAction) > 0 {
		policy.FormAction = append(append([]string{"'self'"}, r.Policy.FormAction...), p.FormAction...)
	}
	h := w.Header()
	policy.Apply(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Known, so the page goes out whole rather than chunked.
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client went away; nothing left to do
	return nil
}

// pageBuffers hold pages while they are executed: a page grows its
// buffer a dozen times on its way to 10–30 KB, which was most of a
// page's allocated bytes.
var pageBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledPage keeps an unusually large page's buffer out of the pool.
const maxPooledPage = 256 << 10

func putPageBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledPage {
		return
	}
	b.Reset()
	pageBuffers.Put(b)
}

// funcs are available to every template.
var funcs = template.FuncMap{
	"asset":  AssetURL,
	"strong": strong,
}

var langPattern = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)

// cleanLang keeps a well-formed language tag and defaults to French: the
// service is French first, and a malformed lang attribute would mislead
// screen readers more than a missing translation.
func cleanLang(l string) string {
	if langPattern.MatchString(l) {
		return l
	}
	return "fr"
}

func isEnglish(lang string) bool {
	return strings.EqualFold(lang, "en") || strings.HasPrefix(strings.ToLower(lang), "en-")
}
