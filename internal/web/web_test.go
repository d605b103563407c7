package web

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// testPages stands for a service's embedded page templates. Both pages
// define "content": the Renderer must keep them apart.
var testPages = fstest.MapFS{
	"pages/hello.html": {Data: []byte(`{{define "content"}}<h1 class="fr-h1">{{.Title}}</h1>
<p id="greeting">{{.Body.Greeting}}</p>
<a class="fr-btn" href="/next">{{.T "Suivant" "Next"}}</a>{{end}}`)},
	"pages/other.html":  {Data: []byte(`{{define "content"}}<p id="other">other page</p>{{end}}`)},
	"pages/broken.html": {Data: []byte(`{{define "content"}}<p>before</p>{{.Body.NoSuchField}}{{end}}`)},
	"pages/plain.html":  {Data: []byte(`{{define "content"}}<p>{{.Body}}</p>{{end}}`)},
}

type greeting struct{ Greeting string }

func newTestRenderer(t *testing.T, theme Theme) *Renderer {
	t.Helper()
	r, err := NewRenderer(theme, "Démo", testPages, "pages/*.html")
	if err != nil {
		t.Fatalf("NewRenderer(%q): %v", theme, err)
	}
	return r
}

// captureLogs redirects slog.Default for the test; tests using it must not
// run in parallel.
func captureLogs(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}

func TestRenderBothThemes(t *testing.T) {
	for _, tc := range []struct {
		theme      Theme
		stylesheet string
	}{
		{ThemeDSFR, "/static/dsfr/dsfr.min.css?v="},
		{ThemeNeutral, "/static/neutral.css?v="},
	} {
		t.Run(string(tc.theme), func(t *testing.T) {
			r := newTestRenderer(t, tc.theme)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/hello", nil)
			r.Render(rec, req, http.StatusOK, "hello.html", Page{
				Title: "Bonjour",
				Body:  greeting{Greeting: `<script>alert("x")</script>`},
			})
			body := rec.Body.String()
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			for _, want := range []string{
				"<!DOCTYPE html>",
				`<html lang="fr">`,
				`href="` + tc.stylesheet,
				`<title>Bonjour – Sésame – Démo</title>`,
				`href="#contenu"`,
				`<main id="contenu"`,
				`<p class="fr-header__service-title">Sésame</p>`,
				`<p class="fr-header__service-tagline">Démo</p>`,
				`<footer class="fr-footer"`,
				`<h1 class="fr-h1">Bonjour</h1>`,
				`&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
				">Suivant<",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			if strings.Contains(body, "<script") {
				t.Error("page contains a <script>: pages must work without JavaScript")
			}
			if strings.Contains(body, "other page") {
				t.Error(`hello.html rendered other.html's "content"`)
			}
			if got := strings.Contains(body, "fr-logo"); got != (tc.theme == ThemeDSFR) {
				t.Errorf("State logo shown = %v for theme %s", got, tc.theme)
			}
			checkStaticLinks(t, body)

			rec = httptest.NewRecorder()
			r.Render(rec, req, http.StatusOK, "other.html", Page{Title: "Autre", Lang: "en"})
			if b := rec.Body.String(); !strings.Contains(b, `id="other"`) || strings.Contains(b, `id="greeting"`) {
				t.Errorf("other.html rendered the wrong content:\n%s", b)
			} else if !strings.Contains(b, `<html lang="en">`) || !strings.Contains(b, ">Content</a>") {
				t.Error("Lang en not applied to <html> and to the layout's words")
			}
		})
	}
}

// checkStaticLinks fetches every /static/ URL a page links to through
// Assets: a page must never point at an asset that is not embedded.
func checkStaticLinks(t *testing.T, body string) {
	t.Helper()
	links := regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(links) == 0 {
		t.Fatal("page links to no static asset")
	}
	for _, m := range links {
		u := strings.ReplaceAll(m[1], "&amp;", "&")
		rec := httptest.NewRecorder()
		Assets().ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", u, rec.Code)
		}
	}
}

func TestRenderPlainDataAndStatus(t *testing.T) {
	r := newTestRenderer(t, ThemeNeutral)
	rec := httptest.NewRecorder()
	r.Render(rec, httptest.NewRequest("GET", "/", nil), http.StatusBadRequest, "plain.html", "a & b")
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", rec.Code)
	}
	body := rec.Body.String()
	if !strings.Contains(body, "<p>a &amp; b</p>") || !strings.Contains(body, "<title>Sésame – Démo</title>") {
		t.Errorf("non-Page data not used as Body of an untitled page:\n%s", body)
	}
	// A hostile Lang must not reach the attribute unchecked.
	rec = httptest.NewRecorder()
	r.Render(rec, httptest.NewRequest("GET", "/", nil), 0, "plain.html", &Page{Lang: `en" onload="x`})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<html lang="fr">`) {
		t.Errorf("status %d; malformed Lang not replaced by fr", rec.Code)
	}
}

func TestRenderSecurityHeaders(t *testing.T) {
	r := newTestRenderer(t, ThemeDSFR)
	rec := httptest.NewRecorder()
	r.Render(rec, httptest.NewRequest("GET", "/", nil), http.StatusOK, "other.html", nil)
	h := rec.Header()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}

	r.Policy.FormAction = []string{"'self'", "https://idp.example"}
	rec = httptest.NewRecorder()
	r.Render(rec, httptest.NewRequest("GET", "/", nil), http.StatusOK, "other.html", nil)
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "; form-action 'self' https://idp.example; frame-ancestors 'none'") {
		t.Errorf("Policy.FormAction not in CSP: %q", csp)
	}

	r.Policy = SecurityPolicy{}
	rec = httptest.NewRecorder()
	r.Render(rec, httptest.NewRequest("GET", "/", nil), http.StatusOK, "other.html",
		Page{FormAction: []string{"https://sp.example"}})
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://sp.example;") {
		t.Errorf("Page.FormAction not in CSP: %q", csp)
	}
}

func TestSecureHeadersMiddleware(t *testing.T) {
	h := SecureHeaders(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	for _, k := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
		if rec.Header().Get(k) == "" {
			t.Errorf("SecureHeaders did not set %s", k)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); strings.Contains(csp, "form-action") {
		t.Errorf("default CSP restricts form-action, which breaks POST-then-redirect flows: %q", csp)
	}

	rec = httptest.NewRecorder()
	SecurityPolicy{FormAction: []string{"'self'"}}.Wrap(h).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	// The inner SecureHeaders ran last and wins: handlers can override.
	if csp := rec.Header().Get("Content-Security-Policy"); strings.Contains(csp, "form-action") {
		t.Errorf("inner handler could not override the outer policy: %q", csp)
	}
}

func TestNewRendererRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		theme   Theme
		pages   fs.FS
		pattern string
		want    string
	}{
		"unknown theme":    {"blue", testPages, "pages/*.html", "unknown theme"},
		"no match":         {ThemeDSFR, testPages, "nope/*.html", "matches no file"},
		"bad pattern":      {ThemeDSFR, testPages, "[", "pattern"},
		"no content":       {ThemeDSFR, fstest.MapFS{"a.html": {Data: []byte(`<p>hi</p>`)}}, "*.html", `no "content"`},
		"parse error":      {ThemeDSFR, fstest.MapFS{"a.html": {Data: []byte(`{{define "content"}}{{.X`)}}, "*.html", "a.html"},
		"duplicate names":  {ThemeDSFR, fstest.MapFS{"a/p.html": {Data: []byte(`{{define "content"}}{{end}}`)}, "b/p.html": {Data: []byte(`{{define "content"}}{{end}}`)}}, "*/p.html", "two page files"},
		"redefines layout": {ThemeDSFR, fstest.MapFS{"p.html": {Data: []byte(`{{define "content"}}{{end}}{{define "sesame.layout"}}x{{end}}`)}}, "*.html", "redefines"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewRenderer(tc.theme, "", tc.pages, tc.pattern)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := NewRenderer(ThemeNeutral, "", nil, ""); err != nil {
		t.Errorf("error-only Renderer: %v", err)
	}
}

func TestRenderFailuresBecomeErrorPages(t *testing.T) {
	logs := captureLogs(t)
	r := newTestRenderer(t, ThemeNeutral)
	for _, page := range []string{"missing.html", "broken.html"} {
		rec := httptest.NewRecorder()
		r.Render(rec, httptest.NewRequest("GET", "/x", nil), http.StatusOK, page, Page{Body: greeting{}})
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("%s: status = %d, want 500", page, rec.Code)
		}
		body := rec.Body.String()
		if !strings.Contains(body, ErrInternal.Code) {
			t.Errorf("%s: error page lacks code %s", page, ErrInternal.Code)
		}
		if strings.Contains(body, "before") {
			t.Errorf("%s: half-rendered page leaked into the error page", page)
		}
	}
	if !strings.Contains(logs.String(), "broken.html") {
		t.Errorf("template failure not logged:\n%s", logs)
	}
}

func TestRenderError(t *testing.T) {
	logs := captureLogs(t)
	r := newTestRenderer(t, ThemeDSFR)
	e := Error{
		Code:      "S123456",
		Status:    http.StatusBadRequest,
		MessageFR: `Lien <b>expiré</b>.`,
		MessageEN: "Link expired.",
		Retry:     true,
		BackURL:   "/authorize?x=1",
	}
	var gotID string
	h := WithCorrelationID(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		gotID = CorrelationID(req.Context())
		r.RenderError(w, req, e)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/callback", nil))

	if rec.Code != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", rec.Code)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(gotID) {
		t.Fatalf("correlation id %q is not 128 random bits in hex", gotID)
	}
	if rec.Header().Get(CorrelationHeader) != gotID {
		t.Errorf("%s = %q, want %q", CorrelationHeader, rec.Header().Get(CorrelationHeader), gotID)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"S123456",
		gotID,
		`Lien &lt;b&gt;expiré&lt;/b&gt;.`,
		`href="/authorize?x=1"`,
		">Retour</a>",
		`<html lang="fr">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("error page lacks %q", want)
		}
	}
	if strings.Contains(body, "<b>") {
		t.Error("message HTML not escaped")
	}
	if rec.Header().Get("Retry-After") != "" {
		t.Error("Retry-After sent with a 400")
	}
	if rec.Header().Get("Content-Security-Policy") == "" {
		t.Error("error page without security headers")
	}
	l := logs.String()
	for _, want := range []string{"code=S123456", "status=400", "correlation_id=" + gotID, "path=/callback", "level=WARN"} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
}

func TestRenderErrorLanguageAndBackLink(t *testing.T) {
	captureLogs(t)
	r := newTestRenderer(t, ThemeNeutral)
	e := Error{Code: "S1", Status: http.StatusServiceUnavailable, MessageFR: "Indisponible.", MessageEN: "Unavailable.", Retry: true, BackURL: "//evil.example/"}

	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("Accept-Language", "en-GB,en;q=0.9,fr;q=0.5")
	rec := httptest.NewRecorder()
	r.RenderError(rec, req, e)
	body := rec.Body.String()
	if !strings.Contains(body, "Unavailable.") || strings.Contains(body, "Indisponible.") || !strings.Contains(body, `<html lang="en">`) {
		t.Errorf("English not chosen from Accept-Language:\n%s", body)
	}
	if !strings.Contains(body, `href="/"`) || strings.Contains(body, "evil.example") {
		t.Error("unsafe BackURL not replaced by /")
	}
	if got := rec.Header().Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After = %q, want DefaultRetryAfter (5) on a 503 of unknown length", got)
	}
	// Without WithCorrelationID, an id is still shown and sent.
	id := rec.Header().Get(CorrelationHeader)
	if id == "" || !strings.Contains(body, id) {
		t.Errorf("no correlation id made up (header %q)", id)
	}

	req = httptest.NewRequest("GET", "/x?ui_locales=fr-CA+en", nil)
	req.Header.Set("Accept-Language", "en")
	rec = httptest.NewRecorder()
	r.RenderError(rec, req, Error{Code: "S2", Status: 200, MessageEN: "Only English."})
	body = rec.Body.String()
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("non-error status not turned into 500: %d", rec.Code)
	}
	if !strings.Contains(body, "Only English.") || !strings.Contains(body, `<html lang="fr">`) {
		t.Error("ui_locales=fr must win, and a missing French message fall back to English")
	}
	if strings.Contains(body, ">Retour</a>") {
		t.Error("back link shown although Retry is false")
	}
}

func TestPreferredLang(t *testing.T) {
	for _, tc := range []struct{ query, accept, want string }{
		{"", "", "fr"},
		{"", "en-US,en;q=0.9", "en"},
		{"", "fr-FR,fr;q=0.9,en;q=0.8", "fr"},
		{"", "de-DE,en;q=0.5", "en"},
		{"", "en;q=0,fr", "fr"},
		{"ui_locales=en", "fr", "en"},
		{"ui_locales=de+fr-FR", "en", "fr"},
		{"ui_locales=de", "en", "en"},
	} {
		req := httptest.NewRequest("GET", "/?"+tc.query, nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Language", tc.accept)
		}
		if got := PreferredLang(req); got != tc.want {
			t.Errorf("PreferredLang(%q, %q) = %q, want %q", tc.query, tc.accept, got, tc.want)
		}
	}
}

func TestSafeLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/",
		"/":                     "/",
		"/a/b?c=d#e":            "/a/b?c=d#e",
		"//evil.example":        "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"relative/path":         "/",
		"/a\tb":                 "/",
		"/a\nb":                 "/",
	} {
		if got := SafeLocalPath(in); got != want {
			t.Errorf("SafeLocalPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCorrelationIDs(t *testing.T) {
	if CorrelationID(context.Background()) != "" {
		t.Error("CorrelationID of a bare context is not empty")
	}
	seen := map[string]bool{}
	h := WithCorrelationID(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		seen[CorrelationID(req.Context())] = true
	}))
	for range 100 {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set(CorrelationHeader, "client-chosen")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	if len(seen) != 100 || seen["client-chosen"] {
		t.Errorf("ids not fresh per request or taken from the client: %d distinct", len(seen))
	}
}

func TestErrorIsAnError(t *testing.T) {
	var err error = Error{Code: "S7", Status: 403, MessageFR: "Non.", MessageEN: "No."}
	if got := err.Error(); got != "S7 (HTTP 403): No." {
		t.Errorf("Error() = %q", got)
	}
}

func TestAssets(t *testing.T) {
	version := AssetVersion()
	for _, tc := range []struct {
		url, contentType, cache string
	}{
		{"/static/dsfr/dsfr.min.css?v=" + version, "text/css; charset=utf-8", cacheVersioned},
		{"/static/neutral.css", "text/css; charset=utf-8", cacheUnversioned},
		{"/static/neutral.css?v=0ld", "text/css; charset=utf-8", cacheOtherVersion},
		{"/static/dsfr/fonts/Marianne-Regular.woff2", "font/woff2", cacheUnversioned},
		{"/static/dsfr/icons/system/close-line.svg", "image/svg+xml", cacheUnversioned},
		{"/static/dsfr/favicon/favicon.ico", "image/x-icon", cacheUnversioned},
		{"/static/dsfr/favicon/apple-touch-icon.png", "image/png", cacheUnversioned},
		{"/static/favicon.svg", "image/svg+xml", cacheUnversioned},
		{"/static/dsfr/VERSION", "text/plain; charset=utf-8", cacheUnversioned},
	} {
		rec := httptest.NewRecorder()
		Assets().ServeHTTP(rec, httptest.NewRequest("GET", tc.url, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d", tc.url, rec.Code)
			continue
		}
		h := rec.Header()
		if h.Get("Content-Type") != tc.contentType || h.Get("Cache-Control") != tc.cache {
			t.Errorf("GET %s: Content-Type %q, Cache-Control %q; want %q, %q",
				tc.url, h.Get("Content-Type"), h.Get("Cache-Control"), tc.contentType, tc.cache)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("ETag") == "" || rec.Body.Len() == 0 {
			t.Errorf("GET %s: missing nosniff, ETag or body", tc.url)
		}
	}

	// Revalidation is what makes the unversioned day-long cache cheap.
	rec := httptest.NewRecorder()
	Assets().ServeHTTP(rec, httptest.NewRequest("GET", "/static/neutral.css", nil))
	req := httptest.NewRequest("GET", "/static/neutral.css", nil)
	req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
	rec = httptest.NewRecorder()
	Assets().ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("conditional GET = %d, want 304", rec.Code)
	}

	// Behind StripPrefix the path arrives without /static/.
	rec = httptest.NewRecorder()
	http.StripPrefix("/static/", Assets()).ServeHTTP(rec, httptest.NewRequest("GET", "/static/neutral.css", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("behind StripPrefix: %d", rec.Code)
	}

	for _, u := range []string{"/static/", "/static/dsfr", "/static/dsfr/", "/static/nope.css", "/static/../assets.go", "/static/dsfr/../neutral.css"} {
		rec := httptest.NewRecorder()
		Assets().ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", u, rec.Code)
		}
	}
	rec = httptest.NewRecorder()
	Assets().ServeHTTP(rec, httptest.NewRequest("POST", "/static/neutral.css", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", rec.Code)
	}
}

// TestDSFRAssetsComplete verifies the trim done by scripts/refresh-dsfr.sh:
// every file the kept stylesheet can make a browser fetch is embedded.
func TestDSFRAssetsComplete(t *testing.T) {
	css, err := fs.ReadFile(staticRoot, "dsfr/dsfr.min.css")
	if err != nil {
		t.Fatal(err)
	}
	exists := func(ref string) bool {
		_, err := fs.Stat(staticRoot, path.Join("dsfr", ref))
		return err == nil && fs.ValidPath(path.Join("dsfr", ref))
	}
	// A woff listed after its woff2 in the same @font-face is never fetched
	// by a browser that reads woff2, which all supported browsers do.
	skippable := map[string]bool{}
	for _, block := range regexp.MustCompile(`@font-face\s*{[^}]*}`).FindAllString(string(css), -1) {
		refs := cssURLs(block)
		for i, ref := range refs {
			if strings.HasSuffix(ref, ".woff") && slices.Contains(refs[:i], ref+"2") {
				skippable[ref] = true
			}
		}
	}
	refs := cssURLs(string(css))
	if len(refs) < 10 {
		t.Fatalf("only %d url()s found in dsfr.min.css: parsing is broken", len(refs))
	}
	for _, ref := range refs {
		if strings.HasPrefix(ref, "data:") || skippable[ref] {
			continue
		}
		if !exists(ref) {
			t.Errorf("dsfr.min.css references %s, which is not embedded", ref)
		}
	}

	v, err := fs.ReadFile(staticRoot, "dsfr/VERSION")
	if err != nil || !regexp.MustCompile(`^\d+\.\d+\.\d+\n?$`).Match(v) {
		t.Errorf("dsfr/VERSION = %q, %v; want an exact version", v, err)
	}
	if lic, err := fs.ReadFile(staticRoot, "dsfr/LICENSE.md"); err != nil || !bytes.Contains(lic, []byte("Etalab")) {
		t.Errorf("dsfr/LICENSE.md missing or not the Etalab licence: %v", err)
	}

	// The neutral theme may only use inline data: images.
	neutral, err := fs.ReadFile(staticRoot, "neutral.css")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range cssURLs(string(neutral)) {
		if !strings.HasPrefix(ref, "data:") {
			t.Errorf("neutral.css references %s", ref)
		}
	}

	var size int64
	fs.WalkDir(staticRoot, ".", func(_ string, d fs.DirEntry, _ error) error {
		if info, err := d.Info(); err == nil && !d.IsDir() {
			size += info.Size()
		}
		return nil
	})
	if size > 4<<20 {
		t.Errorf("embedded assets weigh %d bytes; keep them to a few MB", size)
	}
}

// cssURLs returns the url() arguments in css, unquoted.
func cssURLs(css string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`url\(\s*("[^"]*"|'[^']*'|[^)]*?)\s*\)`).FindAllStringSubmatch(css, -1) {
		out = append(out, strings.Trim(m[1], `"'`))
	}
	return out
}

// TestThemesStyleTemplateClasses checks that both stylesheets style every
// class the shared templates use, so that neither theme renders a bare page.
func TestThemesStyleTemplateClasses(t *testing.T) {
	dsfr, _ := fs.ReadFile(staticRoot, "dsfr/dsfr.min.css")
	neutral, _ := fs.ReadFile(staticRoot, "neutral.css")
	// The brief's class list, which service templates rely on.
	classes := []string{
		"fr-container", "fr-grid-row", "fr-col-12", "fr-col-md-6", "fr-btn", "fr-btn--secondary",
		"fr-tile", "fr-alert", "fr-alert--error", "fr-alert--info", "fr-input", "fr-label",
		"fr-input-group", "fr-checkbox-group", "fr-header", "fr-footer", "fr-table", "fr-badge",
		"fr-mt-2w", "fr-mb-3w", "fr-h1", "fr-h6", "fr-text--sm", "fr-connect",
	}
	files, _ := fs.Glob(templateFS, "templates/*.html")
	for _, f := range files {
		b, _ := fs.ReadFile(templateFS, f)
		for _, m := range regexp.MustCompile(`class="([^"{]*)"`).FindAllStringSubmatch(string(b), -1) {
			classes = append(classes, strings.Fields(m[1])...)
		}
	}
	own, _ := fs.ReadFile(staticRoot, "sesame.css")
	for _, c := range classes {
		sel := regexp.MustCompile(`\.` + regexp.QuoteMeta(c) + `[\s,:{.>\[)]`)
		if strings.HasPrefix(c, "sesame-") {
			// Sésame's own parts, styled for both themes by sesame.css.
			if !sel.Match(own) {
				t.Errorf("sesame.css does not style .%s", c)
			}
			continue
		}
		if !sel.Match(neutral) {
			t.Errorf("neutral.css does not style .%s", c)
		}
		if !sel.Match(dsfr) {
			t.Errorf("dsfr.min.css has no .%s: not a DSFR class name", c)
		}
	}
}
