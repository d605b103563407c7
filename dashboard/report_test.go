package dashboard

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/history"
)

// confirmReport opens the e-mail's link and confirms the report.
func (c *citizen) confirmReport(t *testing.T, code string) (*http.Response, string) {
	t.Helper()
	resp, page := c.get(t, "/signalement?code="+url.QueryEscape(code))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("report page for %q: %d\n%s", code, resp.StatusCode, page)
	}
	return c.post(t, "/signalement", url.Values{"csrf": {csrf(t, page)}, "code": {code}})
}

// "Ce n'était pas moi", without a login: the first report is recorded
// (and shows in the victim's history), the second is "already reported";
// an unknown code is a 404 page, a malformed one a 400 form. The page
// tells nothing of the connection but the service and the date.
func TestReport(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.loginAtSP(t, "impots", angela)
	conn := e.waitRows(t, 1, kind(history.KindConnection))[0]

	stranger := e.citizen() // no session: the victim on another device
	resp, page := stranger.get(t, "/signalement?code="+conn.Code)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="code">`+conn.Code+`<`) || !strings.Contains(page, `id="confirm"`) {
		t.Fatalf("report page: %d\n%s", resp.StatusCode, page)
	}
	if strings.Contains(page, spName) || strings.Contains(page, impotsName) {
		t.Error("the form shows the connection before the report")
	}

	resp, page = stranger.confirmReport(t, conn.Code)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Signalement enregistré</h1>") || !strings.Contains(page, `id="reported"`) {
		t.Fatalf("first report: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{spName, shortDate(conn.Time, langFR), `href="/comptes"`, "Bloquez le compte", "changez-en le mot de passe"} {
		if !strings.Contains(page, want) {
			t.Errorf("report answer lacks %q", want)
		}
	}
	for _, secret := range []string{impotsName, "eidas1", "Identité pivot", conn.Time.In(paris).Format("15:04")} {
		if strings.Contains(page, secret) {
			t.Errorf("report answer reveals %q", secret)
		}
	}

	resp, page = stranger.confirmReport(t, strings.ToLower(conn.Code))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Connexion déjà signalée</h1>") {
		t.Errorf("second report: %d\n%s", resp.StatusCode, page)
	}
	reports := 0
	for _, r := range e.store.entries(t) {
		if r.Kind == history.KindReport {
			reports++
		}
	}
	if reports != 1 {
		t.Errorf("%d report rows, want 1", reports)
	}

	// The victim sees it in their history.
	c := e.citizen()
	c.login(t, "laposte", angela)
	_, page = c.get(t, "/historique")
	if !strings.Contains(page, "Connexion signalée : « ce n&#39;était pas moi »") || !strings.Contains(page, `data-field="code">`+conn.Code) {
		t.Errorf("history lacks the report:\n%s", page)
	}

	// A code of the right form that names nothing.
	resp, page = stranger.confirmReport(t, "ZZZZZ-ZZZZZ")
	if resp.StatusCode != http.StatusNotFound || pageCode(t, page) != "S600019" {
		t.Errorf("unknown code: %d", resp.StatusCode)
	}
}

// A code is ten symbols of the broker's alphabet around a dash; anything
// else is a 400 form that says so, typed value shown back escaped.
func TestReportCodeFormat(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	for _, bad := range []string{"", "ABCDE", "ABCDE-FGHI0", "ABCDE-FGHI1", "ABCDE_FGHJK", "ABCDE-FGHJKL", `"><script>`, strings.Repeat("A", 100), "ABCDÉ-FGHJK"} {
		resp, page := c.get(t, "/signalement?code="+url.QueryEscape(bad))
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, `aria-invalid="true"`) || !strings.Contains(page, "S600018") {
			t.Errorf("code %q: %d", bad, resp.StatusCode)
		}
		if strings.Contains(page, "<script>") {
			t.Errorf("code %q shown unescaped", bad)
		}
	}
	for in, want := range map[string]string{"abcde-fghjk": "ABCDE-FGHJK", " 23456-789AB ": "23456-789AB", "ABCDEFGHJK": "ABCDE-FGHJK"} {
		if got, ok := parseCode(in); !ok || got != want {
			t.Errorf("parseCode(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	// Without a code, the form to type one.
	resp, page := c.get(t, "/signalement")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<label class="fr-label" for="code-input">`) || strings.Contains(page, `aria-invalid`) {
		t.Errorf("empty report page: %d\n%s", resp.StatusCode, page)
	}
	// Posted malformed: the same 400 form, nothing asked of the store.
	_, page = c.get(t, "/signalement?code=ABCDE-FGHJK")
	resp, _ = c.post(t, "/signalement", url.Values{"csrf": {csrf(t, page)}, "code": {"nope"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("posted malformed code: %d", resp.StatusCode)
	}
}

// The report form without its double-submit token, or with a token that
// is not its cookie's, is refused.
func TestReportCSRF(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.loginAtSP(t, "impots", angela)
	conn := e.waitRows(t, 1, kind(history.KindConnection))[0]

	c := e.citizen()
	resp, _ := c.post(t, "/signalement", url.Values{"code": {conn.Code}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("no token, no cookie: %d", resp.StatusCode)
	}
	_, page := c.get(t, "/signalement?code="+conn.Code)
	token := csrf(t, page)
	// Another browser posting this browser's token (a forged form): it
	// has not the cookie.
	if resp, _ := e.citizen().post(t, "/signalement", url.Values{"csrf": {token}, "code": {conn.Code}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("token without its cookie: %d", resp.StatusCode)
	}
	if resp, _ := c.post(t, "/signalement", url.Values{"csrf": {token + "x"}, "code": {conn.Code}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	for _, r := range e.store.entries(t) {
		if r.Kind == history.KindReport {
			t.Fatal("a report was recorded without a valid token")
		}
	}
	// The cookie is scoped to the page and strict.
	resp, _ = e.citizen().get(t, "/signalement?code="+conn.Code)
	for _, ck := range resp.Cookies() {
		if ck.Name == reportCookie && (ck.Path != "/signalement" || ck.SameSite != http.SameSiteStrictMode || !ck.HttpOnly) {
			t.Errorf("report cookie %+v", ck)
		}
	}
}

// Reports are limited per network: past the limit, a 429 page with
// Retry-After, and nothing asked of the store.
func TestReportRateLimit(t *testing.T) {
	e := newEnv(t, envConfig{space: []Option{WithReportRateLimit(3, time.Minute)}})
	c := e.citizen()
	for i := range 3 {
		if resp, _ := c.confirmReport(t, "ZZZZZ-ZZZZZ"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("report %d: %d", i, resp.StatusCode)
		}
	}
	resp, page := c.confirmReport(t, "ZZZZZ-ZZZZZ")
	if resp.StatusCode != http.StatusTooManyRequests || pageCode(t, page) != "S600020" {
		t.Fatalf("4th report: %d", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}

	l := newLimiter(1, time.Minute)
	t0 := time.Now()
	if _, ok := l.allow("a", t0); !ok {
		t.Fatal("first attempt refused")
	}
	if wait, ok := l.allow("a", t0.Add(10*time.Second)); ok || wait != 50*time.Second {
		t.Errorf("second attempt: %v %v", ok, wait)
	}
	if _, ok := l.allow("b", t0); !ok {
		t.Error("another network refused")
	}
	if _, ok := l.allow("a", t0.Add(time.Minute)); !ok {
		t.Error("refused in the next window")
	}
	for i := range maxTracked + 10 {
		l.allow(string(rune(i)), t0)
	}
	if len(l.seen) > maxTracked {
		t.Errorf("the limiter tracks %d networks", len(l.seen))
	}
	direct := &App{}
	for addr, want := range map[string]string{"192.0.2.1:5000": "192.0.2.1", "[2001:db8::1]:5000": "2001:db8::/64", "[::ffff:192.0.2.1]:1": "192.0.2.1"} {
		if got := direct.clientNetwork(&http.Request{RemoteAddr: addr}); got != want {
			t.Errorf("clientNetwork(%s) = %s, want %s", addr, got, want)
		}
	}
	// Behind a trusted proxy: the rightmost hop that is not one; a client
	// cannot pick its key by sending X-Forwarded-For itself.
	proxied := &App{}
	WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"))(&proxied.opt)
	for _, tc := range []struct{ remote, xff, want string }{
		{"10.0.0.1:1", "198.51.100.7", "198.51.100.7"},
		{"10.0.0.1:1", "203.0.113.9, 198.51.100.7, 10.0.0.2", "198.51.100.7"},
		{"10.0.0.1:1", "garbage", "10.0.0.1"},
		{"192.0.2.1:1", "198.51.100.7", "192.0.2.1"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{"X-Forwarded-For": {tc.xff}}}
		if got := proxied.clientNetwork(r); got != tc.want {
			t.Errorf("from %s with X-Forwarded-For %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

// A store that is down while reporting is a 503 page.
func TestReportStoreDown(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	_, page := c.get(t, "/signalement?code=ABCDE-FGHJK")
	e.store.setFail(errDown)
	defer e.store.setFail(nil)
	resp, page := c.post(t, "/signalement", url.Values{"csrf": {csrf(t, page)}, "code": {"ABCDE-FGHJK"}})
	if resp.StatusCode != http.StatusServiceUnavailable || pageCode(t, page) != "S600017" {
		t.Errorf("%d", resp.StatusCode)
	}
}
