package web

import (
	"context"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/text/language"
)

// The languages pages exist in. French is the default: the services are
// French first, and a person whose browser asks for nothing we have gets
// French.
const (
	LangFR = "fr"
	LangEN = "en"
)

// Languages lists the page languages, the default first (for discovery's
// ui_locales_supported, say).
var Languages = []string{LangFR, LangEN}

// LangParam is the query parameter of the language switch: ?lang=en on any
// page of a service wrapped in WithLanguage sets the choice, kept in a
// cookie, that overrides everything else.
const LangParam = "lang"

// langCookieTTL keeps an explicit choice for a year: it is a preference,
// not a session, and holds nothing about the person.
const langCookieTTL = 365 * 24 * time.Hour

// matcher matches a person's languages (ui_locales, Accept-Language) to
// ours, with x/text's CLDR-based rules: fr-CA and fr-BE are French, en-GB
// is English.
var matcher = language.NewMatcher([]language.Tag{language.French, language.English})

// MatchLang returns the page language best matching tags, a list of BCP 47
// tags in order of preference (ui_locales' space-separated list, or an
// Accept-Language header, q-values and all), and "" when none of them is
// a language we have. Malformed entries are skipped.
func MatchLang(tags string) string {
	if tags == "" {
		return ""
	}
	// Browsers send the same few headers on every request: x/text's
	// parsing and matching is the costly part of a page's language, so
	// the answers are kept, up to a bound (a header is the client's).
	if l, ok := matched.Load(tags); ok {
		return l.(string)
	}
	l := matchLang(tags)
	if len(tags) <= maxMatchedLen && matchedN.Load() < maxMatched {
		if _, loaded := matched.LoadOrStore(tags, l); !loaded {
			matchedN.Add(1)
		}
	}
	return l
}

// matched keeps MatchLang's answers: at most maxMatched of them, for
// lists of at most maxMatchedLen bytes.
var (
	matched  sync.Map
	matchedN atomic.Int32
)

const (
	maxMatched    = 4096
	maxMatchedLen = 256
)

func matchLang(tags string) string {
	var desired []language.Tag
	if strings.ContainsAny(tags, ",;") {
		parsed, q, err := language.ParseAcceptLanguage(tags)
		if err != nil {
			// One malformed entry makes x/text drop the whole header
			// (Chromium sends "en;q=0.9;q=0.9" when told "en;q=0.9"):
			// read each entry's tag alone, in the order given, rather
			// than fall back to French for an English reader.
			parsed, q = nil, nil
			for _, e := range strings.Split(tags, ",") {
				tag, _, _ := strings.Cut(e, ";")
				if t, err := language.Parse(strings.TrimSpace(tag)); err == nil {
					parsed, q = append(parsed, t), append(q, 1)
				}
			}
		}
		for i, t := range parsed {
			if q[i] > 0 { // q=0 means "not this one"
				desired = append(desired, t)
			}
		}
	} else {
		for _, f := range strings.Fields(tags) {
			if t, err := language.Parse(f); err == nil {
				desired = append(desired, t)
			}
		}
	}
	if len(desired) == 0 {
		return ""
	}
	_, i, conf := matcher.Match(desired...)
	if conf == language.No {
		return ""
	}
	return Languages[i]
}

// Text is one message in each page language. EN may be empty: FR is then
// shown whatever the language, which is better than nothing.
type Text struct{ FR, EN string }

// In returns the text in lang.
func (t Text) In(lang string) string {
	if isEnglish(lang) && t.EN != "" {
		return t.EN
	}
	return t.FR
}

// Catalogue holds the words of one service's pages, each under a key, as
// {French, English}: one place per service, so that no page hard-codes a
// sentence and no sentence lacks its translation (CheckCatalogue).
type Catalogue map[string][2]string

// Text is the message key as a Text (empty when unknown).
func (c Catalogue) Text(key string) Text {
	m := c[key]
	return Text{FR: m[0], EN: m[1]}
}

// T returns the message key in lang, formatted with args (fmt verbs) when
// there are any. An unknown key comes out as itself in brackets, visible
// in a test rather than silently blank.
func (c Catalogue) T(lang, key string, args ...any) string {
	if _, ok := c[key]; !ok {
		return "[" + key + "]"
	}
	t := c.Text(key).In(lang)
	if len(args) == 0 {
		return t
	}
	return fmt.Sprintf(t, args...)
}

// Merge returns a catalogue holding c's messages and others', the later
// ones winning on a shared key.
func (c Catalogue) Merge(others ...Catalogue) Catalogue {
	out := Catalogue{}
	for _, m := range append([]Catalogue{c}, others...) {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// templateKeys finds the message keys a template file uses: {{.M "key"}},
// {{$.M "key" ...}}, {{.MH "key" ...}} and the same through (call) forms.
var templateKeys = regexp.MustCompile(`\.MH? "([^"]+)"`)

// CheckCatalogue reports every message key that a template in fsys
// (matching pattern) uses and c lacks, and every message of c that lacks
// its French or its English. Each service's tests call it on their own
// templates and catalogue.
func CheckCatalogue(fsys fs.FS, pattern string, c Catalogue) error {
	var problems []string
	files, err := fs.Glob(fsys, pattern)
	if err != nil {
		return fmt.Errorf("web: pattern %q: %w", pattern, err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return fmt.Errorf("web: read %s: %w", f, err)
		}
		for _, m := range templateKeys.FindAllStringSubmatch(string(b), -1) {
			if _, ok := c[m[1]]; !ok {
				problems = append(problems, fmt.Sprintf("%s uses message %q, which the catalogue lacks", f, m[1]))
			}
		}
	}
	for k, t := range c {
		if strings.TrimSpace(t[0]) == "" || strings.TrimSpace(t[1]) == "" {
			problems = append(problems, fmt.Sprintf("message %q lacks its French or its English", k))
		}
		if strings.Contains(t[0], "·") {
			// Screen readers spell the point médian out: epicene wording
			// instead (see docs/pages.md).
			problems = append(problems, fmt.Sprintf("message %q uses a point médian", k))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("web: catalogue:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// --- the request's language

type langKey struct{}

// langState is the language of one request as the service learns it: the
// person's explicit choice (?lang= or its cookie), the request's own
// ui_locales, and the login's (from its authorization request, found once
// the session is loaded). It is mutable because the login's language is
// known only half-way through a handler, and the error page that handler
// may render afterwards must be in it.
type langState struct {
	mu                       sync.Mutex
	explicit, request, login string
}

// WithLanguage resolves the person's explicit language choice for every
// request: ?lang=fr|en sets it (and a cookie named cookie, kept a year,
// Secure when secure), else the cookie says it. Pages rendered under it
// show the language switch, and their language (Page.Lang empty) is
// PreferredLang's.
func WithLanguage(next http.Handler, cookie string, secure bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &langState{}
		switch q := r.URL.Query().Get(LangParam); q {
		case LangFR, LangEN:
			st.explicit = q
			http.SetCookie(w, &http.Cookie{Name: cookie, Value: q, Path: "/", MaxAge: int(langCookieTTL.Seconds()),
				HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
		default:
			if c, err := r.Cookie(cookie); err == nil && (c.Value == LangFR || c.Value == LangEN) {
				st.explicit = c.Value
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), langKey{}, st)))
	})
}

func stateOf(ctx context.Context) *langState {
	st, _ := ctx.Value(langKey{}).(*langState)
	return st
}

// SetLoginLang records the language of the login a request belongs to
// (matched from its authorization request's ui_locales), for the rest of
// the request. It ranks below an explicit choice and the request's own
// ui_locales, above Accept-Language. Outside WithLanguage it does nothing.
func SetLoginLang(ctx context.Context, lang string) {
	if st := stateOf(ctx); st != nil && (lang == LangFR || lang == LangEN) {
		st.mu.Lock()
		st.login = lang
		st.mu.Unlock()
	}
}

// SetRequestLang records the ui_locales of a request read from its body
// (a POSTed authorization or logout request), which PreferredLang cannot
// see in the URL. Outside WithLanguage it does nothing.
func SetRequestLang(ctx context.Context, uiLocales string) {
	if st := stateOf(ctx); st != nil {
		if l := MatchLang(uiLocales); l != "" {
			st.mu.Lock()
			st.request = l
			st.mu.Unlock()
		}
	}
}

// PreferredLang returns the language of the request's pages, "fr" or "en":
// the person's explicit choice (WithLanguage) first, then the request's
// ui_locales (URL, or SetRequestLang), then its login's (SetLoginLang),
// then Accept-Language, and French when none of them names a language we
// have.
func PreferredLang(req *http.Request) string {
	var explicit, request, login string
	if st := stateOf(req.Context()); st != nil {
		st.mu.Lock()
		explicit, request, login = st.explicit, st.request, st.login
		st.mu.Unlock()
	}
	if explicit != "" {
		return explicit
	}
	if l := MatchLang(req.URL.Query().Get("ui_locales")); l != "" {
		return l
	}
	if request != "" {
		return request
	}
	if login != "" {
		return login
	}
	if l := MatchLang(req.Header.Get("Accept-Language")); l != "" {
		return l
	}
	return LangFR
}

// LangSwitch is the link to the same page in the other language.
type LangSwitch struct {
	// Href is the link; Label names the other language in itself
	// ("English", "Français"), and Lang is its tag, for lang and hreflang.
	Href, Label, Lang string
}

// langSwitch builds the switch of a page: on a GET, the same URL with
// lang set; after a POST (whose body cannot be replayed by a link), the
// same path. Nil outside WithLanguage, where ?lang= would do nothing.
func langSwitch(req *http.Request, lang string) *LangSwitch {
	if stateOf(req.Context()) == nil {
		return nil
	}
	s := &LangSwitch{Label: "English", Lang: LangEN}
	if isEnglish(lang) {
		s.Label, s.Lang = "Français", LangFR
	}
	q := url.Values{}
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		q = req.URL.Query()
	}
	q.Set(LangParam, s.Lang)
	s.Href = SafeLocalPath(req.URL.EscapedPath() + "?" + q.Encode())
	return s
}

// strong wraps s in <strong>, escaped: for a value inside a translated
// sentence ({{.MH "key" (strong .Body.Name)}}).
func strong(s string) template.HTML {
	return template.HTML("<strong>" + template.HTMLEscapeString(s) + "</strong>")
}

// formatHTML formats an escaped message with args: template.HTML args go
// in as they are (built by strong, say), any other is escaped.
func formatHTML(msg string, args []any) template.HTML {
	esc := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case template.HTML:
			esc[i] = string(v)
		default:
			esc[i] = template.HTMLEscapeString(fmt.Sprint(v))
		}
	}
	return template.HTML(fmt.Sprintf(template.HTMLEscapeString(msg), esc...))
}
