package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func TestMatchLang(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"en":                      "en",
		"en-GB":                   "en",
		"fr-CA":                   "fr",
		"de en":                   "en",
		"de fr-FR":                "fr",
		"de":                      "",
		"nl-BE de":                "",
		"en-US,en;q=0.9":          "en",
		"fr-FR,fr;q=0.9,en;q=0.8": "fr",
		"de-DE,en;q=0.5":          "en",
		"en;q=0,fr":               "fr",
		"en;q=0":                  "",
		"%%%":                     "",
		"x-klingon en":            "en",
		// What Chromium sends when its override is given q-values
		// already: malformed, but plainly English.
		"en-GB,en;q=0.9;q=0.9": "en",
		"fr-FR,fr;q=0.9;q=0.9": "fr",
	} {
		if got := MatchLang(in); got != want {
			t.Errorf("MatchLang(%q) = %q, want %q", in, got, want)
		}
	}
}

// The order of PreferredLang: the explicit choice, then the request's
// ui_locales, then the login's, then Accept-Language, then French.
func TestPreferredLangOrder(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		cookie, query, request, login string
		accept, want                  string
	}{
		{name: "nothing", want: "fr"},
		{name: "accept", accept: "en", want: "en"},
		{name: "login over accept", login: "fr", accept: "en", want: "fr"},
		{name: "login", login: "en", accept: "fr", want: "en"},
		{name: "posted ui_locales over login", request: "en", login: "fr", want: "en"},
		{name: "query ui_locales over login", query: "ui_locales=en", login: "fr", want: "en"},
		{name: "choice over all", cookie: "fr", query: "ui_locales=en", request: "en", login: "en", accept: "en", want: "fr"},
		{name: "switch over cookie", cookie: "fr", query: "lang=en", want: "en"},
		{name: "bad cookie ignored", cookie: "de", accept: "en", want: "en"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/?"+tc.query, nil)
			if tc.accept != "" {
				req.Header.Set("Accept-Language", tc.accept)
			}
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "lang", Value: tc.cookie})
			}
			var got string
			WithLanguage(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				SetRequestLang(r.Context(), tc.request)
				SetLoginLang(r.Context(), tc.login)
				got = PreferredLang(r)
			}), "lang", false).ServeHTTP(httptest.NewRecorder(), req)
			if got != tc.want {
				t.Errorf("PreferredLang = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWithLanguageSwitch(t *testing.T) {
	r := newTestRenderer(t, ThemeNeutral)
	h := WithLanguage(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Render(w, req, http.StatusOK, "hello.html", Page{Title: "x", Body: greeting{"hi"}})
	}), "sesame_lang", true)

	// ?lang=en: English, a cookie for a year, and the switch back.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/hello?a=1&lang=en", nil))
	body := rec.Body.String()
	for _, want := range []string{`<html lang="en">`, ">Next<", ">Content</a>",
		`id="lang-switch" href="/hello?a=1&amp;lang=fr" lang="fr" hreflang="fr">Français</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	c := rec.Result().Cookies()
	if len(c) != 1 || c[0].Name != "sesame_lang" || c[0].Value != "en" || !c[0].Secure || !c[0].HttpOnly || c[0].MaxAge < 300*24*3600 {
		t.Fatalf("cookies = %+v, want sesame_lang=en, Secure, HttpOnly, kept a year", c)
	}

	// The cookie alone keeps English, over Accept-Language.
	req := httptest.NewRequest("GET", "/hello", nil)
	req.AddCookie(c[0])
	req.Header.Set("Accept-Language", "fr")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if b := rec.Body.String(); !strings.Contains(b, `<html lang="en">`) || !strings.Contains(b, `href="/hello?lang=fr"`) {
		t.Error("the language cookie is not applied")
	}

	// After a POST the switch leads to the page itself, not a replay.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/hello?x=1", strings.NewReader("a=b")))
	if b := rec.Body.String(); !strings.Contains(b, `href="/hello?lang=en"`) || !strings.Contains(b, `<html lang="fr">`) {
		t.Errorf("POST page: switch or language wrong:\n%s", b)
	}

	// Outside WithLanguage: no switch (?lang= would do nothing), French.
	rec = httptest.NewRecorder()
	r.Render(rec, httptest.NewRequest("GET", "/hello?lang=en", nil), http.StatusOK, "hello.html", Page{Body: greeting{"hi"}})
	if b := rec.Body.String(); strings.Contains(b, "lang-switch") || !strings.Contains(b, `<html lang="fr">`) {
		t.Error("a page outside WithLanguage shows a switch or is not French")
	}
}

// Error pages follow the language learned during the request: the
// login's, set after the page's handler loaded the session.
func TestRenderErrorLoginLanguage(t *testing.T) {
	r := newTestRenderer(t, ThemeNeutral)
	h := WithLanguage(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		SetLoginLang(req.Context(), "en")
		r.RenderError(w, req, ErrNotFound)
	}), "l", false)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	b := rec.Body.String()
	if !strings.Contains(b, `<html lang="en">`) || !strings.Contains(b, ErrNotFound.MessageEN) || !strings.Contains(b, "<title>Error – Sésame") {
		t.Errorf("error page not in the login's language:\n%s", b)
	}
	if strings.Contains(b, "Une erreur") {
		t.Error("French words on the English error page")
	}
}

func TestMessagesInTemplates(t *testing.T) {
	pages := fstest.MapFS{"p/m.html": {Data: []byte(`{{define "content"}}<p id="a">{{.M "greet" .Body}}</p><p id="b">{{.MH "asks" (strong .Body)}}</p><p id="c">{{.M "layout.skip_footer"}}</p><p id="d">{{.M "nope"}}</p>{{end}}`)}}
	r, err := NewRenderer(ThemeNeutral, "Démo", pages, "p/*.html")
	if err != nil {
		t.Fatal(err)
	}
	cat := Catalogue{
		"greet": {"Bonjour %s", "Hello %s"},
		"asks":  {"Le service %s vous demande d'entrer.", "The service %s asks you in."},
	}
	r.SetMessages(cat)
	for lang, want := range map[string][]string{
		"fr": {`<p id="a">Bonjour &lt;i&gt;Lou&lt;/i&gt;</p>`, `<p id="b">Le service <strong>&lt;i&gt;Lou&lt;/i&gt;</strong> vous demande d&#39;entrer.</p>`, `<p id="c">Pied de page</p>`, `<p id="d">[nope]</p>`},
		"en": {`<p id="a">Hello &lt;i&gt;Lou&lt;/i&gt;</p>`, `<p id="b">The service <strong>&lt;i&gt;Lou&lt;/i&gt;</strong> asks you in.</p>`, `<p id="c">Footer</p>`},
	} {
		rec := httptest.NewRecorder()
		r.Render(rec, httptest.NewRequest("GET", "/", nil), http.StatusOK, "m.html", Page{Lang: lang, Body: "<i>Lou</i>"})
		for _, w := range want {
			if !strings.Contains(rec.Body.String(), w) {
				t.Errorf("%s: page lacks %s", lang, w)
			}
		}
	}
}

func TestCheckCatalogue(t *testing.T) {
	pages := fstest.MapFS{"p/a.html": {Data: []byte(`{{.M "known"}} {{$.MH "missing" 1}}`)}}
	err := CheckCatalogue(pages, "p/*.html", Catalogue{
		"known": {"Oui", "Yes"},
		"half":  {"Seulement", ""},
		"dot":   {"Vous êtes connecté·e", "Signed in"},
	})
	if err == nil {
		t.Fatal("no problem found")
	}
	for _, want := range []string{`p/a.html uses message "missing"`, `message "half" lacks`, `message "dot" uses a point médian`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("report lacks %q:\n%v", want, err)
		}
	}
	// The layout and error page are complete.
	if err := CheckCatalogue(templateFS, "templates/*.html", layoutMessages); err != nil {
		t.Error(err)
	}
	if err := CheckCatalogue(pages, "p/*.html", Catalogue{"known": {"Oui", "Yes"}, "missing": {"Là", "There"}}); err != nil {
		t.Errorf("a complete catalogue is reported: %v", err)
	}
}

func TestLayoutLinks(t *testing.T) {
	for _, theme := range []Theme{ThemeDSFR, ThemeNeutral} {
		r := newTestRenderer(t, theme)
		r.SetLayout(Layout{
			Service:     Text{"Sésame+", "Sésame+"},
			Tagline:     Text{"Connexion renforcée", "Enhanced sign-in"},
			Home:        "/sesame",
			HeaderLinks: []Link{{ID: "about", Href: "/sesame", Text: Text{"Qu'est-ce que Sésame ?", "What is Sésame?"}}},
			FooterLinks: []Link{{ID: "a11y", Href: "/accessibilite", Text: Text{"Accessibilité : non conforme", "Accessibility: not compliant"}}},
		})
		rec := httptest.NewRecorder()
		r.Render(rec, httptest.NewRequest("GET", "/", nil), http.StatusOK, "other.html", Page{Title: "T", Lang: "en"})
		b := rec.Body.String()
		for _, want := range []string{
			`<title>T – Sésame&#43; – Enhanced sign-in</title>`,
			`<p class="fr-header__service-title">Sésame&#43;</p>`,
			`<p class="fr-header__service-tagline">Enhanced sign-in</p>`,
			`id="about" href="/sesame">What is Sésame?</a>`,
			`class="fr-footer__bottom-link" id="a11y" href="/accessibilite">Accessibility: not compliant</a>`,
		} {
			if !strings.Contains(b, want) {
				t.Errorf("%s: page lacks %q", theme, want)
			}
		}
		// The State's sites, in the DSFR footer only.
		if got := strings.Contains(b, `href="https://www.legifrance.gouv.fr"`); got != (theme == ThemeDSFR) {
			t.Errorf("%s: legifrance link shown = %v", theme, got)
		}
		checkStaticLinks(t, b)
	}
}

func TestButtonHTML(t *testing.T) {
	std := string(Button{Lang: "fr", ID: "go", AboutURL: "https://broker.example/sesame?a=1&b=2"}.HTML())
	plus := string(Button{Plus: true, Lang: "en"}.HTML())
	for _, want := range []string{`class="sesame-button" id="go"`, "S’identifier avec", `<span class="sesame-button__brand">Sésame</span>`,
		"href=\"https://broker.example/sesame?a=1&amp;b=2\">Qu’est-ce que Sésame\u00a0?</a>", `aria-hidden="true"`} {
		if !strings.Contains(std, want) {
			t.Errorf("standard button lacks %q:\n%s", want, std)
		}
	}
	if !strings.Contains(plus, "Sign in with") || !strings.Contains(plus, `__brand">Sésame+</span>`) || strings.Count(plus, "+") != 1 || strings.Contains(plus, "<a ") {
		t.Errorf("plus button wrong (one +, English, no link):\n%s", plus)
	}
	css, ok := Asset(ButtonStylesheet)
	if !ok || !strings.Contains(string(css), ".sesame-button") || strings.Contains(string(css), "var(--") {
		t.Error("sesame-button.css missing, or depends on a theme variable")
	}
	if _, ok := Asset("../render.go"); ok || !HasAsset("sesame-mark.svg") || !HasAsset("idp/default.svg") || HasAsset("idp/none.svg") {
		t.Error("Asset/HasAsset wrong")
	}
}

// Neither FranceConnect's nor ProConnect's logo is shipped: the vendored
// DSFR's copies are blanked (scripts/refresh-dsfr.sh), and no asset of our
// own names them.
func TestNoFranceConnectLogo(t *testing.T) {
	css, _ := fs.ReadFile(staticRoot, "dsfr/dsfr.min.css")
	if m := regexp.MustCompile(`\.fr-connect[^{}]*:before\{[^}]*data:image`).Find(css); m != nil {
		t.Errorf("dsfr.min.css inlines a logo in %.60s", m)
	}
	_ = fs.WalkDir(staticRoot, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "dsfr/") {
			return err
		}
		b, _ := fs.ReadFile(staticRoot, p)
		if strings.Contains(strings.ToLower(string(b)), "franceconnect") {
			t.Errorf("%s mentions FranceConnect", p)
		}
		return nil
	})
}

func TestAssetTypes(t *testing.T) {
	for name, want := range map[string]string{"autosubmit.js": "text/javascript; charset=utf-8", "sesame-mark.svg": "image/svg+xml", "idp/laposte.svg": "image/svg+xml"} {
		rec := httptest.NewRecorder()
		Assets().ServeHTTP(rec, httptest.NewRequest("GET", "/static/"+name, nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != want {
			t.Errorf("%s: %d %q, want 200 %q", name, rec.Code, rec.Header().Get("Content-Type"), want)
		}
	}
}
