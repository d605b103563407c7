package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFrameMatchesLayout renders pages of every shape through the frames
// and by executing the layout, and wants the same bytes: titles and links
// that need escaping (including a javascript: link html/template
// neutralises), both themes, with and without a layout's links, each
// twice (the frame built, then the frame kept).
func TestFrameMatchesLayout(t *testing.T) {
	titles := []string{"", "Choisir", "<b>\"Aïe\" & 'co' + \x00 é</b>", "zq", "Sésame – ça marche ! (1/2) ; ok?", "bad \xff utf-8"}
	switches := []*LangSwitch{
		nil,
		{Href: "/authorize?client_id=a&lang=en", Label: "English", Lang: LangEN},
		{Href: `/x?q=<"é">&r=' +`, Label: "Français", Lang: LangFR},
		{Href: "javascript:alert(1)", Label: "English", Lang: LangEN},
		{Href: "/p?a=1&b=%20x:y@z,w;v!u$t*s~r-_.&lang=en", Label: "English", Lang: LangEN},
		{Href: "/p?a=1+2#frag&c=[x]", Label: "English", Lang: LangEN},
		{Href: "//evil.example/?x", Label: "English", Lang: LangEN},
	}
	layouts := []Layout{{}, {
		Service: Text{FR: "Sésame+", EN: "Sésame+"}, Tagline: Text{FR: "Démo <&>", EN: "Demo"}, Home: "/?a=1&b=2",
		HeaderLinks: []Link{{ID: "about", Href: "/sesame", Text: Text{FR: "Qu'est-ce que Sésame ?", EN: "What is Sésame?"}}},
		FooterLinks: []Link{{Href: "/accessibilite", Text: Text{FR: "Accessibilité : non conforme", EN: "Accessibility"}}},
	}}
	for _, theme := range []Theme{ThemeDSFR, ThemeNeutral} {
		for li, l := range layouts {
			r := newTestRenderer(t, theme)
			r.SetLayout(l)
			page := r.pages["hello.html"]
			for _, lang := range []string{"fr", "en", "en-GB", "de"} {
				for _, title := range titles {
					for si, sw := range switches {
						for _, sheets := range [][]string{nil, {"sesame-button.css"}} {
							v := View{
								Title: title, Lang: lang, Body: greeting{"Bonjour <toi>"}, Brand: r.brand, Theme: theme,
								IsDSFR: theme == ThemeDSFR, CorrelationID: "c-1", Stylesheet: "neutral.css", Stylesheets: sheets,
								Service: "Sésame", Home: l.Home, messages: r.messages, Switch: sw,
							}
							for _, hl := range l.HeaderLinks {
								v.HeaderLinks = append(v.HeaderLinks, ViewLink{ID: hl.ID, Href: hl.Href, Text: hl.Text.In(lang)})
							}
							for _, fl := range l.FooterLinks {
								v.FooterLinks = append(v.FooterLinks, ViewLink{ID: fl.ID, Href: fl.Href, Text: fl.Text.In(lang)})
							}
							var want bytes.Buffer
							if err := page.ExecuteTemplate(&want, layoutName, v); err != nil {
								t.Fatal(err)
							}
							for pass := range 2 {
								var got bytes.Buffer
								if err := r.execute(&got, page, v); err != nil {
									t.Fatal(err)
								}
								if got.String() != want.String() {
									t.Fatalf("%s layout %d lang %s title %q switch %d pass %d: the frame differs from the layout:\n%s",
										theme, li, lang, title, si, pass, firstDiff(got.String(), want.String()))
								}
							}
						}
					}
				}
			}
			if r.frames.n.Load() == 0 {
				t.Errorf("%s: no frame was kept: every page executed the whole layout", theme)
			}
		}
	}
}

// TestFrameFollowsSetLayout: a layout set after pages were rendered shows
// on the next page (the frames built before are dropped).
func TestFrameFollowsSetLayout(t *testing.T) {
	r := newTestRenderer(t, ThemeNeutral)
	v := View{Title: "T", Lang: "fr", Body: greeting{"x"}, Service: "Sésame", Stylesheet: "neutral.css", messages: r.messages}
	var before bytes.Buffer
	if err := r.execute(&before, r.pages["hello.html"], v); err != nil {
		t.Fatal(err)
	}
	r.SetLayout(Layout{FooterLinks: []Link{{ID: "legal", Href: "/mentions-legales", Text: Text{FR: "Mentions légales"}}}})
	v.FooterLinks = []ViewLink{{ID: "legal", Href: "/mentions-legales", Text: "Mentions légales"}}
	var after bytes.Buffer
	if err := r.execute(&after, r.pages["hello.html"], v); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(after.String(), `id="legal"`) {
		t.Error("the footer link set after the first page is missing: a stale frame was used")
	}
}

// TestFrameRefusesBodyInLayout: a layout reading the page's Body or
// correlation id cannot be framed (the frame would freeze the first value).
func TestFrameRefusesBodyInLayout(t *testing.T) {
	for _, src := range []string{`{{define "sesame.layout"}}{{.Body.X}}{{end}}`, `{{define "sesame.layout"}}{{.CorrelationID}}{{end}}`} {
		tmpl, err := frameTemplate(nil, src)
		if err != nil || tmpl != nil {
			t.Errorf("frameTemplate(%q) = %v, %v; want no frame", src, tmpl, err)
		}
	}
}

func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-80)
	return "got:  …" + a[lo:min(len(a), i+80)] + "\nwant: …" + b[lo:min(len(b), i+80)]
}

// BenchmarkRender renders a titled page with the language switch, the way
// the broker's pages are served: "frame" through the frames, "layout" by
// executing the whole layout each time (as before frames).
func BenchmarkRender(b *testing.B) {
	for _, mode := range []string{"frame", "layout"} {
		b.Run(mode, func(b *testing.B) {
			r, err := NewRenderer(ThemeDSFR, "Démo", testPages, "pages/*.html")
			if err != nil {
				b.Fatal(err)
			}
			r.SetLayout(Layout{
				HeaderLinks: []Link{{ID: "about", Href: "/sesame", Text: Text{FR: "Qu'est-ce que Sésame ?", EN: "What is Sésame?"}}},
				FooterLinks: []Link{{Href: "/accessibilite", Text: Text{FR: "Accessibilité", EN: "Accessibility"}}},
			})
			if mode == "layout" {
				r.frames.tmpl = nil
			}
			h := WithLanguage(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				r.Render(w, req, http.StatusOK, "hello.html", Page{Title: "Bonjour", Body: greeting{"Bienvenue"}})
			}), "lang", false)
			req := httptest.NewRequest(http.MethodGet, "/hello?a=1", nil)
			req.Header.Set("Accept-Language", "fr-FR,fr;q=0.9,en;q=0.8")
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
