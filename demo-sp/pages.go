package demosp

import (
	"embed"

	"github.com/sesame-id/sesame/internal/web"
)

//go:embed templates/*.html
var templates embed.FS

// langCookie keeps the citizen's language choice (?lang=) on the demo SP,
// with the component's prefix as its other cookies.
const langCookie = "sesame_demosp_lang"

// newPages uses the DSFR theme: the demo shows what a State service looks
// like with Sésame's button, and config has no theme for it. The brand
// under "Sésame" in the header says "demonstration", so nobody mistakes the
// demo for a real service.
func newPages() (*web.Renderer, error) {
	brand := messages.Text("brand")
	r, err := web.NewRenderer(web.ThemeDSFR, brand.FR, templates, "templates/*.html")
	if err != nil {
		return nil, err
	}
	r.SetMessages(messages)
	r.SetLayout(web.Layout{Tagline: brand, Home: "/"})
	return r, nil
}
