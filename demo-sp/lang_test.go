package demosp

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/internal/web"
)

// Every message a template uses is in the catalogue, in both languages,
// and every sentence an OAuth error code can pick.
func TestCatalogue(t *testing.T) {
	if err := web.CheckCatalogue(templates, "templates/*.html", messages); err != nil {
		t.Error(err)
	}
	for _, code := range []string{"access_denied", "login_required", "consent_required", "unmet_authentication_requirements", "server_error", "invalid_request", ""} {
		if _, ok := messages[providerSentence(code)]; !ok {
			t.Errorf("%q: sentence %q not in the catalogue", code, providerSentence(code))
		}
	}
	for _, eps := range dataAPIs {
		for _, ep := range eps {
			if _, ok := messages[ep.title]; !ok {
				t.Errorf("%s: title %q not in the catalogue", ep.path, ep.title)
			}
		}
	}
}

// The demo SP's pages are in the citizen's language (?lang= kept in a
// cookie, else Accept-Language, French by default), and it asks the
// broker's pages in the same one with ui_locales, at login and at logout.
func TestLanguage(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	_, sp := startSP(t, op.issuer())

	fr := newBrowser(t)
	home := fr.get(sp.URL + "/")
	if !strings.Contains(home.body, `<html lang="fr">`) || !strings.Contains(home.body, "S’identifier avec") ||
		!strings.Contains(home.body, `id="lang-switch" href="/?lang=en"`) {
		t.Errorf("French home page wrong:\n%s", home.body)
	}
	if got := uiLocales(t, fr.post(sp.URL+"/login", nil)); got != "fr" {
		t.Errorf("login asks ui_locales %q, want fr", got)
	}

	en := newBrowser(t)
	home = en.get(sp.URL + "/?lang=en")
	for _, want := range []string{`<html lang="en">`, "Sign in with", "What is Sésame?", `id="lang-switch" href="/?lang=fr"`} {
		if !strings.Contains(home.body, want) {
			t.Errorf("English home lacks %q", want)
		}
	}
	for _, french := range []string{"Démarche courante", "Qu’est-ce que", "S’identifier"} {
		if strings.Contains(home.body, french) {
			t.Errorf("English home holds %q", french)
		}
	}
	// The cookie keeps the choice.
	if got := uiLocales(t, en.post(sp.URL+"/login", nil)); got != "en" {
		t.Errorf("login after ?lang=en asks ui_locales %q, want en", got)
	}
	cb := en.get(login(t, en, sp.URL, "eidas1"))
	me := en.get(sp.URL + cb.location)
	for _, want := range []string{`<html lang="en">`, "Given name(s)", "Core identity", "Sign out"} {
		if !strings.Contains(me.body, want) {
			t.Errorf("English /me lacks %q", want)
		}
	}
	out := en.post(sp.URL+"/logout", nil)
	if u, err := url.Parse(out.location); err != nil || u.Query().Get("ui_locales") != "en" {
		t.Errorf("logout goes to %q, want ui_locales=en", out.location)
	}

	// A browser that asks for English.
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodPost, sp.URL+"/login", nil)
	req.Header.Set("Accept-Language", "en-GB,en;q=0.8")
	if got := uiLocales(t, b.do(req)); got != "en" {
		t.Errorf("Accept-Language en: ui_locales %q", got)
	}
}

func uiLocales(t *testing.T, p page) string {
	t.Helper()
	u, err := url.Parse(p.location)
	if p.status != http.StatusSeeOther || err != nil {
		t.Fatalf("login: %d %q", p.status, p.location)
	}
	return u.Query().Get("ui_locales")
}

// The figures fetched at login are kept in no language: /me writes them in
// the page's, the sentences of a failed call too.
func TestDataView(t *testing.T) {
	data := []providerData{{ID: "cnaf", Name: "CNAF", Calls: []dataCall{
		{Path: "/api/prestations/quotient-familial", Raw: quotientJSON},
		{Path: "/api/prestations/composition-familiale", Raw: `{"allocataires":[{"nom_naissance":"DUBOIS","prenoms":"Camille","date_naissance":"1990-01-02"}]}`},
	}}, {ID: "dgfip", Name: "DGFiP", Calls: []dataCall{{Path: "/api/impot/revenu-fiscal", Problem: dataFailed, Status: 500}}}}
	for lang, want := range map[string][]string{
		"fr": {"Quotient familial (mars 2025)", "Camille DUBOIS, date de naissance 02/01/1990", "Enfants=aucun", "Revenu fiscal de référence et nombre de parts", "(code HTTP 500)"},
		"en": {"Family quotient (March 2025)", "Camille DUBOIS, born on 02/01/1990", "Children=none", "Reference tax income and number of tax shares", "(HTTP code 500)"},
	} {
		var got []string
		for _, p := range dataView(data, lang) {
			for _, c := range p.Calls {
				got = append(got, c.Title, c.Problem)
				for _, f := range c.Fields {
					got = append(got, f.Label, f.Value, f.Label+"="+f.Value)
				}
			}
		}
		all := strings.Join(got, "|")
		for _, w := range want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: lacks %q in %s", lang, w, all)
			}
		}
	}
}
