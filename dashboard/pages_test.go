package dashboard

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/history"
)

// Pages are in English with ?lang=en (kept in a cookie, until ?lang=fr),
// or with Accept-Language: titles, labels, buttons, rows and error pages.
func TestEnglish(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.loginAtSP(t, "impots", angela)
	e.waitRows(t, 1, kind(history.KindConnection))
	c := e.citizen()

	resp, page := c.get(t, "/?lang=en")
	for _, want := range []string{`<html lang="en">`, "<h1>My Sésame space</h1>", "Log in with Sésame", "My space", `lang="fr" hreflang="fr">Français<`, ">Content<"} {
		if !strings.Contains(page, want) {
			t.Errorf("English landing lacks %q", want)
		}
	}
	if resp.StatusCode != http.StatusOK || strings.Contains(page, "Se connecter avec Sésame") {
		t.Errorf("English landing: %d, or still in French", resp.StatusCode)
	}
	// The language is kept, and passed on to the broker.
	if u := c.startLogin(t, "/login"); u.Query().Get("ui_locales") != "en" {
		t.Errorf("ui_locales = %q", u.Query().Get("ui_locales"))
	}
	c.login(t, "laposte", angela)
	_, page = c.get(t, "/historique")
	for _, want := range []string{"<h1>My history</h1>", "Login to " + spName, "low (eidas1)", "Core identity", "Reference tax income",
		"E-mail address", "Date and time (Paris time)", " at ", "Log out", "over the last 6 months"} {
		if !strings.Contains(page, want) {
			t.Errorf("English history lacks %q", want)
		}
	}
	_, page = c.get(t, "/comptes")
	for _, want := range []string{"<h1>My accounts</h1>", ">Allowed<", ">Blocked<", "Allow the accounts added in the future", "Save my choices"} {
		if !strings.Contains(page, want) {
			t.Errorf("English accounts page lacks %q", want)
		}
	}
	_, page = c.get(t, "/nowhere")
	if !strings.Contains(page, "The page you asked for does not exist.") || !strings.Contains(page, `<html lang="en">`) {
		t.Errorf("English 404:\n%s", page)
	}
	// Even against the broker's ui_locales, the space's choice holds.
	if _, page = c.get(t, "/nowhere?ui_locales=fr"); !strings.Contains(page, "does not exist") {
		t.Error("ui_locales overrode the chosen language on the error page")
	}
	_, page = c.get(t, "/?lang=fr")
	if !strings.Contains(page, `<html lang="fr">`) {
		t.Error("?lang=fr does not switch back")
	}

	// A new browser asking for English.
	_, page = e.citizen().getWith(t, "/signalement", http.Header{"Accept-Language": {"en-GB,en;q=0.9,fr;q=0.5"}})
	if !strings.Contains(page, "<h1>Report a login</h1>") {
		t.Error("Accept-Language: en is not honoured")
	}
}

// The language link keeps the page's parameters (the code of the report
// page), and sets only lang.
func TestLanguageLink(t *testing.T) {
	e := newEnv(t, envConfig{})
	_, page := e.citizen().get(t, "/signalement?code=ABCDE-FGHJK")
	if !strings.Contains(page, `href="/signalement?code=ABCDE-FGHJK&amp;lang=en"`) {
		t.Errorf("language link:\n%s", regexp.MustCompile(`id="lang-switch"[^>]*`).FindString(page))
	}
}

var (
	inputRE  = regexp.MustCompile(`<input[^>]*>`)
	idRE     = regexp.MustCompile(`\sid="([^"]+)"`)
	typeRE   = regexp.MustCompile(`\stype="([^"]+)"`)
	buttonRE = regexp.MustCompile(`(?s)<button[^>]*>(.*?)</button>`)
)

// checkAccessible is the broker's bar for a page: a lang attribute, one
// h1, the skip links, every field labelled, every button named, and no
// missing text or point médian.
func checkAccessible(t *testing.T, name, page, lang string) {
	t.Helper()
	if !strings.Contains(page, `<html lang="`+lang+`">`) {
		t.Errorf("%s: no <html lang=%q>", name, lang)
	}
	if n := len(h1RE.FindAllString(page, -1)); n != 1 {
		t.Errorf("%s: %d h1", name, n)
	}
	if !strings.Contains(page, `href="#contenu"`) || !strings.Contains(page, `id="contenu"`) {
		t.Errorf("%s: no skip link to the content", name)
	}
	for _, in := range inputRE.FindAllString(page, -1) {
		ty := typeRE.FindStringSubmatch(in)
		if ty != nil && ty[1] == "hidden" {
			continue
		}
		id := idRE.FindStringSubmatch(in)
		if id == nil || !strings.Contains(page, `<label class="fr-label" for="`+id[1]+`"`) {
			t.Errorf("%s: field without a label: %s", name, in)
		}
	}
	for _, b := range buttonRE.FindAllStringSubmatch(page, -1) {
		if strings.TrimSpace(b[1]) == "" {
			t.Errorf("%s: a button without text: %s", name, b[0])
		}
	}
	for _, bad := range []string{"<no value>", "·", "%!"} {
		if strings.Contains(page, bad) {
			t.Errorf("%s: contains %q", name, bad)
		}
	}
}

// Every page, in both languages, meets the bar.
func TestAccessibility(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.loginAtSP(t, "impots", angela)
	conn := e.waitRows(t, 1, kind(history.KindConnection))[0]
	for _, lang := range []string{langFR, langEN} {
		anon := e.citizen()
		anon.get(t, "/?lang="+lang)
		pages := map[string]func() string{
			"landing":           func() string { _, p := anon.get(t, "/"); return p },
			"report, empty":     func() string { _, p := anon.get(t, "/signalement"); return p },
			"report, bad code":  func() string { _, p := anon.get(t, "/signalement?code=nope"); return p },
			"report, confirm":   func() string { _, p := anon.get(t, "/signalement?code="+conn.Code); return p },
			"report, done":      func() string { _, p := anon.confirmReport(t, conn.Code); return p },
			"report, unknown":   func() string { _, p := anon.confirmReport(t, "ZZZZZ-ZZZZZ"); return p },
			"404":               func() string { _, p := anon.get(t, "/nowhere"); return p },
			"callback, no flow": func() string { _, p := anon.get(t, "/callback"); return p },
		}
		for name, get := range pages {
			checkAccessible(t, lang+" "+name, get(), lang)
		}
		c := e.citizen()
		c.get(t, "/?lang="+lang)
		c.login(t, "laposte", angela)
		pages = map[string]func() string{
			"landing, logged in": func() string { _, p := c.get(t, "/"); return p },
			"history":            func() string { _, p := c.get(t, "/historique"); return p },
			"accounts":           func() string { _, p := c.get(t, "/comptes"); return p },
			"accounts, saved":    func() string { _, p := c.saveAccounts(t, url.Values{"future": {"deny"}}); return p },
			"accounts, refused":  func() string { _, p := c.saveAccounts(t, url.Values{"idp-laposte": {"block"}}); return p },
		}
		for name, get := range pages {
			checkAccessible(t, lang+" "+name, get(), lang)
		}
	}
}

// Each message of the catalogue exists in both languages, and every key
// the templates read exists.
func TestCatalogueComplete(t *testing.T) {
	for k, m := range messages {
		if m.fr == "" || m.en == "" {
			t.Errorf("message %q: fr %q en %q", k, m.fr, m.en)
		}
		if strings.Contains(m.fr, "·") {
			t.Errorf("message %q has a point médian", k)
		}
	}
	keyRE := regexp.MustCompile(`\.T\.(\w+)`)
	err := fs.WalkDir(templates, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(templates, p)
		for _, m := range keyRE.FindAllStringSubmatch(string(b), -1) {
			if _, ok := messages[m[1]]; !ok {
				t.Errorf("%s reads the unknown message %q", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// 404 and 405 are the shared pages with the security headers; /healthz
// answers; the static assets are served.
func TestServicePages(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	resp, page := c.get(t, "/nowhere")
	if resp.StatusCode != http.StatusNotFound || pageCode(t, page) != "S900404" {
		t.Errorf("404: %d", resp.StatusCode)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "X-Correlation-Id"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("404 without %s", h)
		}
	}
	resp, page = c.post(t, "/historique", url.Values{})
	if resp.StatusCode != http.StatusMethodNotAllowed || pageCode(t, page) != "S900405" || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("405: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if resp, _ := c.get(t, "/logout"); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /logout: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, page = c.get(t, "/healthz")
	if resp.StatusCode != http.StatusOK || page != "ok" {
		t.Errorf("healthz: %d %q", resp.StatusCode, page)
	}
	resp, page = c.get(t, "/")
	css := regexp.MustCompile(`href="(/static/dsfr/dsfr.min.css[^"]*)"`).FindStringSubmatch(page)
	if css == nil {
		t.Fatal("no stylesheet")
	}
	if resp, _ := c.get(t, strings.ReplaceAll(css[1], "&amp;", "&")); resp.StatusCode != http.StatusOK {
		t.Errorf("stylesheet: %d", resp.StatusCode)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("page Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	// Oversized headers get the documented page, not a bare answer.
	resp, _ = c.getWith(t, "/", http.Header{"X-Big": {strings.Repeat("a", 70<<10)}})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("big headers: %d", resp.StatusCode)
	}
}

// New refuses a configuration it cannot serve.
func TestNewRefuses(t *testing.T) {
	e := newEnv(t, envConfig{})
	good := e.app.cfg
	for name, mod := range map[string]func(*config.Dashboard){
		"base_url":   func(c *config.Dashboard) { c.BaseURL = "not a url" },
		"cookie_key": func(c *config.Dashboard) { c.CookieKey = "short" },
		"theme":      func(c *config.Dashboard) { c.Theme = "pink" },
		"openid":     func(c *config.Dashboard) { c.Scopes = []string{"email"} },
		"client_id":  func(c *config.Dashboard) { c.ClientID = "" },
	} {
		cfg := good
		mod(&cfg)
		if _, err := New(&cfg, e.store, nil, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := New(&good, nil, nil, nil); err == nil {
		t.Error("no store: no error")
	}
	if _, err := New(nil, e.store, nil, nil); err == nil {
		t.Error("no config: no error")
	}
}

// Bad input of every kind gets a 4xx page, never a 5xx or a trace.
func TestBadInputIsNever5xx(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	c.login(t, "laposte", angela)
	_, page := c.get(t, "/comptes")
	token := csrf(t, page)
	for _, path := range []string{"/historique?after=%ff%fe", "/historique?after=" + strings.Repeat("%00", 300), "/signalement?code=%00%ff",
		"/signalement?code=a&code=b", "/callback?iss=a&iss=b&state=x", "/callback?error=%ff", "/?lang=xx", "/?retour=%ff", "/static/nope.css",
		"/login?retour=" + strings.Repeat("a", 5000)} {
		resp, body := c.get(t, path)
		if resp.StatusCode >= 500 || strings.Contains(body, "goroutine") {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	for _, form := range []url.Values{
		{"csrf": {token}, "idp-impots": {strings.Repeat("x", 20000)}},
		{"csrf": {token}, "future": {"\x00"}},
		{"csrf": {token, token}},
	} {
		resp, body := c.post(t, "/comptes", form)
		if resp.StatusCode >= 500 || strings.Contains(body, "goroutine") {
			t.Errorf("POST /comptes %.40v: %d", form, resp.StatusCode)
		}
	}
	// A session cookie of garbage, or sealed for another cookie, is no
	// session.
	for _, v := range []string{"garbage", strings.Repeat("A", 3000), e.app.sealCursor("x", "y")} {
		req, _ := http.NewRequest(http.MethodGet, e.URL+"/historique", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: v})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
			t.Errorf("forged session cookie %.20q: %d at %s, want the landing page", v, resp.StatusCode, resp.Request.URL.Path)
		}
	}
}

// Cookies are Secure when the space is served over https.
func TestSecureCookies(t *testing.T) {
	e := newEnv(t, envConfig{})
	cfg := e.app.cfg
	cfg.BaseURL = "https://espace.sesame.example"
	a, err := New(&cfg, e.store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := a.writeSealed(w, sessionCookie, session{Account: "a"}, sessionTTL); err != nil {
		t.Fatal(err)
	}
	ck := w.Result().Cookies()
	if len(ck) != 1 || !ck[0].Secure || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %+v", ck)
	}
}

// The retention shown follows WithRetention.
func TestRetentionOption(t *testing.T) {
	e := newEnv(t, envConfig{space: []Option{WithRetention(48 * time.Hour)}})
	c := e.citizen()
	c.login(t, "laposte", angela)
	acct := c.account(t)
	now := time.Now().UTC()
	if err := e.store.Append(t.Context(), []history.Entry{
		{Account: acct, Time: now.Add(-47 * time.Hour), Kind: history.KindConnection, SPName: "Service récent", Code: "R"},
		{Account: acct, Time: now.Add(-49 * time.Hour), Kind: history.KindConnection, SPName: "Service ancien", Code: "O"},
	}); err != nil {
		t.Fatal(err)
	}
	_, page := c.get(t, "/historique")
	if !strings.Contains(page, "Service récent") || strings.Contains(page, "Service ancien") || !strings.Contains(page, "2 derniers jours") {
		t.Errorf("retention of 48h:\n%s", page)
	}
}

// The data providers are named from the broker's section, by the
// client_id the history rows hold; one without a name is left out (the
// space then shows what the row holds).
func TestDataProviderNames(t *testing.T) {
	b := &config.Broker{Platforms: []config.Platform{
		{DataProviders: []config.DataProvider{{ID: "dgfip", Name: "DGFiP", ClientID: "dp-dgfip"}}},
		{DataProviders: []config.DataProvider{{ID: "dgfip", Name: "DGFiP", ClientID: "dp-dgfip"}, {ID: "cnaf", ClientID: "dp-cnaf"}}},
	}}
	got := DataProviderNames(b)
	if len(got) != 1 || got["dp-dgfip"] != "DGFiP" {
		t.Errorf("names %v, want dp-dgfip: DGFiP only", got)
	}
	if got := DataProviderNames(nil); len(got) != 0 {
		t.Errorf("names without a broker section: %v", got)
	}
}
