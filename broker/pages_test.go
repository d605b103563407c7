package broker_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

// Words only French pages have, and only English ones: a page in one
// language must hold none of the other's. "Français" (the switch's label,
// in its own language) is on every English page on purpose.
var (
	frenchMarkers  = []string{"Choisissez", "Annuler", "Vous ", "Votre ", "vous ", "compte", "Connexion", "Déconnexion", "Retour", "Pied de page", "Mentions légales", "Données personnelles", "Erreur", "Voulez"}
	englishMarkers = []string{"Choose", "Cancel", "You ", "Your ", "account", "Sign in", "Signed", "Back", "Footer", "Legal notices", "Personal data", "Error", "Do you"}
)

// textOf is what a person reads of a page: no tags, no attribute.
func textOf(page string) string {
	page = regexp.MustCompile(`(?s)<head>.*?</head>`).ReplaceAllString(page, "")
	return html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(page, " "))
}

// wantLang checks a page's <html lang> and that it has none of the other
// language's words.
func wantLang(t *testing.T, what, lang, page string) {
	t.Helper()
	if !strings.Contains(page, `<html lang="`+lang+`">`) {
		t.Errorf("%s: not <html lang=%q>", what, lang)
	}
	markers := englishMarkers
	if lang == "en" {
		markers = frenchMarkers
	}
	text := textOf(page)
	for _, m := range markers {
		if strings.Contains(text, m) {
			i := strings.Index(text, m)
			t.Errorf("%s (%s): holds %q: …%s…", what, lang, m, text[max(0, i-60):min(len(text), i+60)])
		}
	}
}

// getWith is a GET from the stack's browser with extra headers.
func getWith(t *testing.T, s *teststack.Stack, u string, h http.Header) (*http.Response, string) {
	t.Helper()
	return doWith(t, s, http.MethodGet, u, nil, h)
}

// postWith posts a form from the stack's browser with extra headers.
func postWith(t *testing.T, s *teststack.Stack, u string, form url.Values, h http.Header) (*http.Response, string) {
	t.Helper()
	return doWith(t, s, http.MethodPost, u, form, h)
}

func doWith(t *testing.T, s *teststack.Stack, method, u string, form url.Values, h http.Header) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := s.Browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// walkLogin goes through one login and its logout, checking that every
// page the citizen sees is in lang: the chooser, the information page, an
// error page (a replayed callback), the logout confirmation and the page
// after logout.
func walkLogin(t *testing.T, s *teststack.Stack, q url.Values, h http.Header, lang string) {
	t.Helper()
	resp, _ := getWith(t, s, s.BrokerURL+"/authorize?"+q.Encode(), h)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/authorize/choose" {
		t.Fatalf("authorize: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := getWith(t, s, s.BrokerURL+"/authorize/choose", h)
	wantLang(t, "chooser", lang, page)

	callback := s.IdPLogin(t, s.Choose(t, "impots"), "angela-dubois", nil)
	resp, _ = getWith(t, s, callback, h)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d", resp.StatusCode)
	}
	_, page = getWith(t, s, s.BrokerURL+"/authorize/consent", h)
	wantLang(t, "information page", lang, page)
	csrf := teststack.Field(t, teststack.CSRFRE, page)

	// The Back button to the IdP's return: an error page, in the
	// login's language.
	resp, page = getWith(t, s, callback, h)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed callback: %d", resp.StatusCode)
	}
	wantLang(t, "error page", lang, page)

	resp, _ = postWith(t, s, s.BrokerURL+"/authorize/consent", url.Values{"csrf": {csrf}}, h)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, teststack.SPRedirect) {
		t.Fatalf("consent: %d to %q", resp.StatusCode, loc)
	}

	// Logout without a hint asks first; then the IdP's end_session, and
	// back to the broker's page.
	_, page = getWith(t, s, s.BrokerURL+"/session/end", h)
	wantLang(t, "logout confirmation", lang, page)
	resp, _ = postWith(t, s, s.BrokerURL+"/session/end", url.Values{"confirm": {"1"}, "csrf": {teststack.Field(t, teststack.CSRFRE, page)}}, h)
	for range 3 {
		if resp.StatusCode != http.StatusSeeOther {
			break
		}
		resp, page = getWith(t, s, teststack.Abs(s.BrokerURL, resp.Header.Get("Location")), h)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="logged-out"`) {
		t.Fatalf("after logout: %d\n%s", resp.StatusCode, page)
	}
	wantLang(t, "logged-out page", lang, page)
}

func TestPagesLanguage(t *testing.T) {
	en := teststack.AuthParams()
	en.Set("ui_locales", "en-GB fr")
	for _, tc := range []struct {
		name   string
		q      url.Values
		header http.Header
		lang   string
	}{
		{"ui_locales en", en, nil, "en"},
		// ui_locales ranks above Accept-Language.
		{"ui_locales en, browser fr", en, http.Header{"Accept-Language": {"fr-FR,fr;q=0.9"}}, "en"},
		{"nothing asked", teststack.AuthParams(), nil, "fr"},
		{"Accept-Language en", teststack.AuthParams(), http.Header{"Accept-Language": {"en-US,en;q=0.9"}}, "en"},
		{"Accept-Language de", teststack.AuthParams(), http.Header{"Accept-Language": {"de-DE"}}, "fr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			walkLogin(t, teststack.New(t), tc.q, tc.header, tc.lang)
		})
	}
}

// The eIDAS country page follows the login's language too.
func TestPagesLanguageEIDAS(t *testing.T) {
	r := newRig(t, nil, false, teststack.EIDAS(testNode))
	q := authParams("ui_locales", "en")
	u := toBridge(t, r, q)
	resp, page := teststack.Get(t, r.Browser, u.String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="country-CB"`) {
		t.Fatalf("country page: %d", resp.StatusCode)
	}
	wantLang(t, "eIDAS country page", "en", page)
	if !strings.Contains(page, "Sign in with a European digital identity") {
		t.Error("the country page's title is not English")
	}
}

// The language switch (?lang=) overrides the login's ui_locales, stays in a
// cookie, and every page links to the other language.
func TestPagesLanguageSwitch(t *testing.T) {
	s := teststack.New(t)
	q := teststack.AuthParams()
	q.Set("ui_locales", "en")
	teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+q.Encode())
	_, page := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
	if !strings.Contains(page, `id="lang-switch" href="/authorize/choose?lang=fr" lang="fr" hreflang="fr">Français</a>`) {
		t.Errorf("the English chooser has no switch to French:\n%s", page)
	}
	resp, page := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose?lang=fr")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("chooser ?lang=fr: %d", resp.StatusCode)
	}
	wantLang(t, "chooser switched to French", "fr", page)
	if !strings.Contains(page, `href="/authorize/choose?lang=en" lang="en" hreflang="en">English</a>`) {
		t.Error("the French chooser has no switch to English")
	}
	// Kept: the next pages of the login are French, the error pages too.
	_, page = teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
	wantLang(t, "chooser after the switch", "fr", page)
	_, page = teststack.Get(t, s.Browser, s.BrokerURL+"/idp/callback?state=nope&code=x")
	wantLang(t, "error page after the switch", "fr", page)
	cookie := ""
	u, _ := url.Parse(s.BrokerURL)
	for _, c := range s.Browser.Jar.Cookies(u) {
		if c.Name == s.Config.Broker.Platforms[0].Cookie+"_lang" {
			cookie = c.Value
		}
	}
	if cookie != "fr" {
		t.Errorf("language cookie %q, want fr", cookie)
	}
}

// The information page lists each datum with its label and its value,
// and says which account was used.
func TestInformationPageData(t *testing.T) {
	s := teststack.New(t)
	q := teststack.AuthParams()
	q.Set("scope", "openid identite_pivot email")
	teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+q.Encode())
	teststack.Get(t, s.Browser, s.IdPLogin(t, s.Choose(t, "laposte"), "angela-dubois", nil))
	_, page := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/consent")
	rows := map[string][2]string{}
	for _, m := range regexp.MustCompile(`data-claim="([a-z_]+)">\s*<dt>([^<]*)</dt>\s*<dd>([^<]*)</dd>`).FindAllStringSubmatch(page, -1) {
		rows[m[1]] = [2]string{m[2], m[3]}
	}
	want := map[string][2]string{
		"given_name":   {"Prénoms", "Angela Claire Louise"},
		"family_name":  {"Nom de naissance", "Dubois"},
		"birthdate":    {"Date de naissance", "24 août 1962"},
		"gender":       {"Sexe", "Féminin"},
		"birthplace":   {"Lieu de naissance", "Paris 7e Arrondissement (75107)"},
		"birthcountry": {"Pays de naissance", "France"},
		"email":        {"Adresse électronique", "angela.dubois@example.org"},
	}
	for c, w := range want {
		if rows[c] != w {
			t.Errorf("%s: %q, want %q", c, rows[c], w)
		}
	}
	if len(rows) != len(want) {
		t.Errorf("rows %v, want exactly %v", rows, want)
	}
	if !strings.Contains(page, `<span id="account-used">Connexion via <strong>laposte</strong>.</span>`) {
		t.Errorf("the page does not say the account used:\n%s", page)
	}
	if !strings.Contains(page, `src="/static/idp/default.svg?v=`) {
		t.Error("the account used has no logo")
	}

	// In English, and with openid only: nothing but the identifier.
	b := s.WithBrowser()
	q.Set("scope", "openid")
	q.Set("ui_locales", "en")
	teststack.Get(t, b.Browser, b.BrokerURL+"/authorize?"+q.Encode())
	teststack.Get(t, b.Browser, b.IdPLogin(t, b.Choose(t, "impots"), "angela-dubois", nil))
	_, page = teststack.Get(t, b.Browser, b.BrokerURL+"/authorize/consent")
	if strings.Contains(page, `id="claims"`) || !strings.Contains(page, "will receive an identifier of its own, and no other information") {
		t.Errorf("an openid-only request's page lists data:\n%s", page)
	}
	if !strings.Contains(page, "Signed in via <strong>impots</strong>.") {
		t.Error("English page does not say the account used")
	}
}

// The chooser shows each IdP's configured logo (or the generic one), the
// SP's name, the level in words (no acr value), "Qu'est-ce que Sésame ?",
// and the reason a greyed IdP is not offered right under its button.
func TestChooserPage(t *testing.T) {
	off := false
	s := teststack.New(t, func(c *config.Config) {
		c.Broker.IdentityProviders[0].Logo = "/static/idp/impots.svg"
		c.Broker.IdentityProviders[0].Active = &off
		c.Broker.IdentityProviders[1].Logo = "idp/laposte.svg"
		c.Broker.Platforms[0].ServiceProviders[0].Name = "Mairie de Test"
	})
	teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	_, page := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
	page = html.UnescapeString(page)
	for _, want := range []string{
		`Le service <strong>Mairie de Test</strong> vous demande de vous identifier.`,
		`id="acr" data-acr="eidas1">Connexion standard</span>`,
		"<a class=\"fr-link\" href=\"/sesame\">Qu'est-ce que Sésame\u00a0?</a>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("chooser lacks %q", want)
		}
	}
	if strings.Contains(strings.ToLower(textOf(page)), "eidas") {
		t.Error("the chooser shows an acr value")
	}
	re := regexp.MustCompile(`(?s)id="idp-impots" disabled aria-describedby="why-impots">.*?</button>\s*<p class="sesame-idp__why" id="why-impots">([^<]+)</p>`)
	if m := re.FindStringSubmatch(page); m == nil || m[1] != "Ce compte n'est pas disponible pour le moment." {
		t.Errorf("reason under the greyed impots: %v", m)
	}
	for id, logo := range map[string]string{"impots": "idp/impots.svg", "laposte": "idp/laposte.svg"} {
		m := regexp.MustCompile(`id="idp-` + id + `"[^>]*>\s*<img class="sesame-idp__logo" src="(/static/[^"?]+)\?v=[^"]+" alt=""`).FindStringSubmatch(page)
		if m == nil || m[1] != "/static/"+logo {
			t.Errorf("%s: logo %v, want /static/%s", id, m, logo)
			continue
		}
		if resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+m[1]); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" {
			t.Errorf("%s: GET %s = %d %s", id, m[1], resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

// A logo that is not one of the broker's static files is refused at start,
// with the entry and the field named.
func TestIdPLogoChecked(t *testing.T) {
	for _, logo := range []string{"https://cdn.example/logo.svg", "idp/none.svg", "../web/render.go", "sesame.css"} {
		c := &config.Config{File: "test", Broker: &config.Broker{IdentityProviders: []config.IdP{{ID: "x", Logo: logo}}}}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "identity_providers[0] (x)") || !strings.Contains(err.Error(), "logo") {
			t.Errorf("logo %q: %v", logo, err)
		}
	}
}

// Qu'est-ce que Sésame ?, the legal pages and the footer's links.
func TestInfoPages(t *testing.T) {
	s := teststack.New(t, func(c *config.Config) {
		c.Broker.Pages = &config.Pages{Operator: "Agence de test", Contact: "contact@test.example", Accessibility: "partial"}
	})
	for path, want := range map[string][]string{
		"/sesame":               {`id="about"`, "Qu'est-ce que Sésame\u00a0?", `href="/button"`},
		"/accessibilite":        {"Agence de test s'engage", "partiellement conforme", `href="mailto:contact@test.example"`, "Défenseur des droits"},
		"/mentions-legales":     {`<dd id="legal-operator">Agence de test</dd>`, "non renseigné par l'opérateur de ce service"},
		"/donnees-personnelles": {"Responsable du traitement\u00a0: Agence de test.", "30 minutes"},
		"/cookies":              {"<code>" + s.Config.Broker.Platforms[0].Cookie + "</code>", "<code>" + s.Config.Broker.Platforms[0].Cookie + "_lang</code>"},
	} {
		resp, page := teststack.Get(t, s.Browser, s.BrokerURL+path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
			continue
		}
		page = html.UnescapeString(page)
		for _, w := range append(want, "id=\"a11y-link\" href=\"/accessibilite\">Accessibilité\u00a0: partiellement conforme</a>",
			`id="legal-link" href="/mentions-legales"`, `id="privacy-link" href="/donnees-personnelles"`, `id="cookies-link" href="/cookies"`) {
			if !strings.Contains(page, w) {
				t.Errorf("%s lacks %q", path, w)
			}
		}
		wantLang(t, path, "fr", page)
		_, en := teststack.Get(t, s.WithBrowser().Browser, s.BrokerURL+path+"?lang=en")
		wantLang(t, path+"?lang=en", "en", en)
	}
}

// GET /button shows the button in both products and languages, with the
// HTML and the CSS to copy; never "Sésame+ +".
func TestButtonPage(t *testing.T) {
	s := teststack.New(t)
	resp, page := teststack.Get(t, s.Browser, s.BrokerURL+"/button")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/button: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`<link rel="stylesheet" href="/static/sesame-button.css?v=`,
		`id="variant-std-fr"`, `id="variant-plus-fr"`, `id="variant-std-en"`, `id="variant-plus-en"`,
		`<span class="sesame-button__brand">Sésame+</span>`, "S’identifier avec", "Sign in with",
		`&lt;button type=&#34;submit&#34; class=&#34;sesame-button&#34;&gt;`, // the HTML to copy, escaped
		`href=&#34;` + s.BrokerURL + `/sesame&#34;`,
		`<pre id="css"><code>/*`, ".sesame-button {",
		`href="/static/sesame-mark.svg"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/button lacks %q", want)
		}
	}
	if strings.Contains(textOf(page), "Sésame+ +") || strings.Contains(page, "Sésame+ +") {
		t.Error(`"Sésame+ +" on the button page`)
	}
	for _, a := range []string{"/static/sesame-button.css", "/static/sesame-mark.svg"} {
		if resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+a); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", a, resp.StatusCode)
		}
	}
}

// Discovery advertises the page languages and the policy pages.
func TestDiscoveryPages(t *testing.T) {
	s := teststack.New(t)
	_, body := teststack.Get(t, s.Browser, s.BrokerURL+"/.well-known/openid-configuration")
	for _, want := range []string{`"ui_locales_supported":["fr","en"]`, `"op_policy_uri":"` + s.BrokerURL + `/donnees-personnelles"`, `"op_tos_uri":"` + s.BrokerURL + `/mentions-legales"`} {
		if !strings.Contains(body, want) {
			t.Errorf("discovery lacks %s", want)
		}
	}
}
