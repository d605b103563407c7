package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/sesame-id/sesame/internal/history"
)

// The "ce n'était pas moi" page, reached from the link of the connection
// e-mail. It needs no login: the person whose account was used may be
// unable to log in. So it shows nothing of the connection but the
// service and the date, and only once the report is made.

// codeAlphabet is the broker's alphabet of connection codes (no 0/O, no
// 1/I/L), shown as XXXXX-XXXXX.
const codeAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// maxCodeInput bounds what is read of a typed code.
const maxCodeInput = 32

// codeBadFormat is the code of the page of a code of the wrong format.
const codeBadFormat = "S600018"

// reportCookieTTL is how long a report form stays valid.
const reportCookieTTL = time.Hour

// parseCode validates a connection code: ten symbols of the alphabet
// around a dash. A code typed by hand may be in lower case, padded with
// spaces, or without its dash.
func parseCode(raw string) (string, bool) {
	if len(raw) > maxCodeInput {
		return "", false
	}
	c := strings.ToUpper(strings.TrimSpace(raw))
	if len(c) == 10 {
		c = c[:5] + "-" + c[5:]
	}
	if len(c) != 11 || c[5] != '-' {
		return "", false
	}
	for i := range len(c) {
		if i != 5 && strings.IndexByte(codeAlphabet, c[i]) < 0 {
			return "", false
		}
	}
	return c, true
}

// reportView is the report page: the form to type a code, or the form to
// confirm the report of a valid one.
type reportView struct {
	base
	// Code is the valid code to confirm; CSRF the form's token.
	Code, CSRF string
	// Typed is what was typed, shown back when Invalid.
	Typed     string
	Invalid   bool
	ErrorCode string
}

// reportedView is the answer to a report.
type reportedView struct {
	base
	First   bool
	Summary string
}

// reportPage shows the form: to type the code, or to confirm the report
// of the code of the e-mail's link.
func (a *App) reportPage(w http.ResponseWriter, r *http.Request) {
	s, _ := a.currentSession(r)
	v := reportView{base: a.base(r, s)}
	raw, asked := r.URL.Query()["code"]
	if !asked {
		a.render(w, r, http.StatusOK, "report.html", "report_title", v)
		return
	}
	code, ok := parseCode(raw[0])
	if !ok {
		a.renderBadCode(w, r, v, raw[0])
		return
	}
	v.Code, v.CSRF = code, a.reportToken(w, r)
	a.render(w, r, http.StatusOK, "report.html", "report_title", v)
}

// report records the report of a code, once.
func (a *App) report(w http.ResponseWriter, r *http.Request) {
	if wait, ok := a.reports.allow(a.clientNetwork(r), a.now()); !ok {
		e := errTooMany
		e.RetryAfter = wait
		a.fail(w, r, e)
		return
	}
	if !a.checkForm(w, r, cookieValue(r, reportCookie)) {
		return
	}
	s, _ := a.currentSession(r)
	code, ok := parseCode(r.PostForm.Get("code"))
	if !ok {
		a.renderBadCode(w, r, reportView{base: a.base(r, s)}, r.PostForm.Get("code"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	rep, err := a.store.Report(ctx, code, a.now())
	if errors.Is(err, history.ErrUnknownCode) {
		a.fail(w, r, errUnknownCode)
		return
	}
	if err != nil {
		a.failWith(w, r, errStoreDown, fmt.Errorf("history: report: %w", err))
		return
	}
	a.renderReported(w, r, s, rep)
}

func (a *App) renderBadCode(w http.ResponseWriter, r *http.Request, v reportView, typed string) {
	v.Invalid, v.ErrorCode = true, codeBadFormat
	if len(typed) <= maxCodeInput {
		v.Typed = typed
	}
	a.log.InfoContext(r.Context(), "dashboard: connection code of the wrong format", "code", codeBadFormat)
	a.render(w, r, http.StatusBadRequest, "report.html", "report_title", v)
}

// renderReported says the report is recorded (or was already), with the
// service and the date only.
func (a *App) renderReported(w http.ResponseWriter, r *http.Request, s *session, rep history.Report) {
	lang := langOf(r)
	service := rep.Connection.SPName
	if service == "" {
		service = rep.Connection.SP
	}
	day := shortDate(rep.Connection.Time, lang)
	v := reportedView{base: a.base(r, s), First: rep.First}
	title := "reported_first"
	v.Summary = pick(lang, "Votre signalement de la connexion à "+service+" du "+day+" est enregistré. Il apparaît dans l'historique de votre espace.",
		"Your report of the login to "+service+" on "+day+" is recorded. It shows in the history of your space.")
	if !rep.First {
		title = "reported_again"
		v.Summary = pick(lang, "La connexion à "+service+" du "+day+" avait déjà été signalée : rien de plus n'a été enregistré.",
			"The login to "+service+" on "+day+" had already been reported: nothing more was recorded.")
	}
	a.render(w, r, http.StatusOK, "reported.html", title, v)
}

// reportToken is the double-submit token of the report form. There may
// be no session, so the token is a random cookie that the form repeats:
// another site can make a browser post the form but cannot read or set
// the cookie. (It could not gain anything either: a report can be made by
// anyone holding the code.)
func (a *App) reportToken(w http.ResponseWriter, r *http.Request) string {
	if v := cookieValue(r, reportCookie); len(v) == 43 {
		return v
	}
	v := randomString(32)
	http.SetCookie(w, &http.Cookie{Name: reportCookie, Value: v, Path: "/signalement", MaxAge: int(reportCookieTTL.Seconds()),
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode})
	return v
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// clientNetwork keys the rate limit: the client's IPv4 address, or its
// IPv6 /64 (what one subscriber gets). Behind trusted proxies, the client
// is the rightmost X-Forwarded-For hop that is not one of them, as the
// broker reads it; without, the peer address.
func (a *App) clientNetwork(r *http.Request) string {
	return network(clientIP(r, a.opt.proxies))
}

func clientIP(r *http.Request, proxies []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !trusted(host, proxies) {
		return host
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			hop := strings.TrimSpace(parts[j])
			if _, err := netip.ParseAddr(hop); err != nil {
				return host // a malformed hop: stop at the proxy we trust
			}
			if !trusted(hop, proxies) {
				return hop
			}
			host = hop
		}
	}
	return host
}

// trusted reports whether addr is in one of the proxies' ranges.
func trusted(addr string, proxies []netip.Prefix) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// network is an address's key: itself for IPv4, its /64 for IPv6.
func network(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// limiter counts attempts per key in fixed windows, in this process. It
// tracks maxTracked keys at most: past that, expired windows are dropped,
// and if all are live the count starts again (a flood from that many
// networks is not what a per-network limit can stop).
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	seen   map[string]hits
}

type hits struct {
	start time.Time
	count int
}

const maxTracked = 10000

func newLimiter(n int, window time.Duration) *limiter {
	return &limiter{n: n, window: window, seen: map[string]hits{}}
}

// allow counts one attempt of key; when the window's attempts are spent
// it answers false and the wait until the window ends.
func (l *limiter) allow(key string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.seen[key]
	if !ok || now.Sub(h.start) >= l.window {
		if !ok && len(l.seen) >= maxTracked {
			l.prune(now)
		}
		h = hits{start: now}
	}
	if h.count >= l.n {
		return h.start.Add(l.window).Sub(now), false
	}
	h.count++
	l.seen[key] = h
	return 0, true
}

func (l *limiter) prune(now time.Time) {
	for k, h := range l.seen {
		if now.Sub(h.start) >= l.window {
			delete(l.seen, k)
		}
	}
	if len(l.seen) >= maxTracked {
		clear(l.seen)
	}
}
