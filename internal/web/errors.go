package web

import (
	"embed"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

// Error is an error a person can see: a stable code they can quote to
// support, a sentence in French and in English, and the HTTP status. It
// carries no detail meant for operators: log that separately.
//
// Codes are chosen by each service (e.g. "S" + digits); "S9xxxxx" is
// reserved for this package.
type Error struct {
	Code   string
	Status int
	// MessageFR and MessageEN are plain text, one or two sentences, saying
	// what happened and what the person can do. Either may be empty; the
	// other is then shown whatever the language.
	MessageFR, MessageEN string
	// Retry allows a "Retour" link, for errors the person can recover from
	// by going back (an expired form, a wrong choice).
	Retry bool
	// BackURL is where "Retour" leads: a path on this site such as
	// "/authorize/choose". Anything else (another host, a scheme, "//x")
	// is replaced by "/", so it may safely come from the request.
	BackURL string
	// RetryAfter, when set, is the real wait before a retry (a rate
	// limit's window); a 503 without one says DefaultRetryAfter.
	RetryAfter time.Duration
	// Link, when set, is a way out shown as a button (the citizen space,
	// to undo a setting), with its text in each language. It comes from
	// configuration, never from the request.
	Link           string
	LinkFR, LinkEN string
}

// Error makes Error usable as a Go error, so handlers can return it and a
// single place can render it.
func (e Error) Error() string {
	msg := e.MessageEN
	if msg == "" {
		msg = e.MessageFR
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, msg)
}

// Errors this package renders itself, also usable by services.
var (
	ErrNotFound = Error{
		Code:      "S900404",
		Status:    http.StatusNotFound,
		MessageFR: "La page demandée n'existe pas.",
		MessageEN: "The page you asked for does not exist.",
	}
	ErrMethodNotAllowed = Error{
		Code:      "S900405",
		Status:    http.StatusMethodNotAllowed,
		MessageFR: "Cette adresse ne s'utilise pas de cette façon.",
		MessageEN: "This address is not used this way.",
	}
	ErrHeadersTooLarge = Error{
		Code:      "S900431",
		Status:    http.StatusRequestHeaderFieldsTooLarge,
		MessageFR: "La requête de votre navigateur est trop volumineuse (cookies trop nombreux ?). Supprimez les cookies de ce site et réessayez.",
		MessageEN: "Your browser's request is too large (too many cookies?). Delete this site's cookies and try again.",
	}
	ErrInternal = Error{
		Code:      "S900500",
		Status:    http.StatusInternalServerError,
		MessageFR: "Une erreur technique est survenue. Veuillez réessayer plus tard.",
		MessageEN: "A technical error occurred. Please try again later.",
	}
)

// MaxHeaderBytes is the request-header size services accept. A server
// should let net/http read more (its default, 1 MiB) and leave the check
// to HeaderSize, so that an oversized request gets the documented page
// rather than net/http's bare 431; beyond the server's own limit,
// net/http still answers alone.
const MaxHeaderBytes = 64 << 10

// HeaderSize is the size of a request's line and headers, as read.
func HeaderSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// DefaultRetryAfter is the Retry-After of an outage whose end nobody
// knows (a store or an IdP down): long enough not to hammer a recovering
// dependency, short enough for a person waiting at a login page. Every
// answer of the broker, page or JSON, follows the one rule of
// SetRetryAfter.
const DefaultRetryAfter = 5 * time.Second

// SetRetryAfter sets Retry-After to d rounded up to whole seconds (at
// least 1), or to DefaultRetryAfter when d is not known (0).
func SetRetryAfter(h http.Header, d time.Duration) {
	if d <= 0 {
		d = DefaultRetryAfter
	}
	s := int64((d + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.FormatInt(max(s, 1), 10))
}

// ErrorView is the Body of the error page's View.
type ErrorView struct {
	Code          string
	Status        int
	Message       string
	CorrelationID string
	// BackURL is "" when no "Retour" link is shown.
	BackURL string
	// Link and LinkText are the way out of Error.Link, if any.
	Link, LinkText string
}

// RenderError writes e as an error page in the person's language (see
// PreferredLang: under WithLanguage, the login's or the chosen one), showing its code and the correlation id, and logs it with
// slog.Default(). A status outside 400–599 is treated as 500.
//
// Without WithCorrelationID upstream, a correlation id is made up here and
// sent in X-Correlation-Id, so that what the person sees still matches the
// log line.
func (r *Renderer) RenderError(w http.ResponseWriter, req *http.Request, e Error) {
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	ctx := req.Context()
	id := CorrelationID(ctx)
	if id == "" {
		id = newCorrelationID()
		w.Header().Set(CorrelationHeader, id)
	}

	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	slog.Default().Log(ctx, level, "web: error page",
		"code", e.Code, "status", status, "correlation_id", id,
		"method", req.Method, "path", req.URL.Path)

	lang := PreferredLang(req)
	msg := e.MessageFR
	if (isEnglish(lang) && e.MessageEN != "") || msg == "" {
		msg = e.MessageEN
	}
	if msg == "" {
		msg = ErrInternal.MessageFR
		if isEnglish(lang) {
			msg = ErrInternal.MessageEN
		}
	}
	ev := ErrorView{Code: e.Code, Status: status, Message: msg, CorrelationID: id}
	if e.Retry {
		ev.BackURL = SafeLocalPath(e.BackURL)
	}
	if e.Link != "" {
		ev.Link, ev.LinkText = e.Link, e.LinkFR
		if (isEnglish(lang) && e.LinkEN != "") || ev.LinkText == "" {
			ev.LinkText = e.LinkEN
		}
	}
	title := layoutMessages.T(lang, "error.page_title")

	if e.RetryAfter > 0 || status == http.StatusServiceUnavailable {
		SetRetryAfter(w.Header(), e.RetryAfter)
	}
	err := r.write(w, req, status, r.errorPage, Page{Title: title, Lang: lang, Body: ev})
	if err != nil {
		// The embedded error template failing is a bug in this package;
		// still answer the person with something they can quote.
		slog.Default().ErrorContext(ctx, "web: render error page", "err", err, "correlation_id", id)
		r.Policy.Apply(w.Header())
		http.Error(w, fmt.Sprintf("Erreur %s — %s", e.Code, id), status)
	}
}

// SafeLocalPath returns p if it is a path on this site (starting with a
// single "/", no scheme, host, backslash or control character), and "/"
// otherwise. Use it for any "return to" URL that comes from a request, to
// avoid open redirects.
func SafeLocalPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") {
		return "/"
	}
	// Browsers treat "\" as "/" ("/\evil.example" is protocol-relative)
	// and strip tabs and newlines before parsing.
	if strings.ContainsAny(p, "\\") || strings.ContainsFunc(p, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return p
}
