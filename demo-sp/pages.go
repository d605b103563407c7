package demosp

import (
	"embed"

	"github.com/sesame-id/sesame/internal/web"
)

//go:embed templates/*.html
var templates embed.FS

// brand is shown under "Sésame" in the header, so nobody mistakes the demo
// for a real service.
const brand = "Démarche de démonstration"

// newPages uses the DSFR theme: the demo shows what a State service looks
// like with the FranceConnect-style button, and config has no theme for it.
func newPages() (*web.Renderer, error) {
	return web.NewRenderer(web.ThemeDSFR, brand, templates, "templates/*.html")
}
