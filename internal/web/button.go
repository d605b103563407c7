package web

import (
	"html/template"
	"io/fs"
	"strings"
)

// ButtonStylesheet is the button's stylesheet among the static assets,
// self-contained (no theme variable) so that integrators can copy it.
const ButtonStylesheet = "sesame-button.css"

// Button is one "S'identifier avec Sésame" button, in the spirit of the
// DSFR's FranceConnect button but with Sésame's own mark.
type Button struct {
	// Plus is the "+" product: "Sésame+", never "Sésame+ +".
	Plus bool
	// Lang is the page's language ("fr" or "en").
	Lang string
	// ID is the button's id ("": none).
	ID string
	// AboutURL is the "Qu'est-ce que Sésame ?" page, the broker's
	// /sesame ("": no link).
	AboutURL string
}

// buttonMark is the mark inside the button: the shapes of
// static/sesame-mark.svg in the text's colour (CC0 1.0).
const buttonMark = `<svg class="sesame-button__mark" viewBox="0 0 48 48" width="40" height="40" aria-hidden="true" focusable="false">` +
	`<path d="M14 39V21a10 10 0 0 1 20 0v18" fill="none" stroke="currentColor" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/>` +
	`<path d="M9 39h30" fill="none" stroke="currentColor" stroke-width="3" stroke-linecap="round"/>` +
	`<circle cx="24" cy="24" r="3.5" fill="currentColor"/>` +
	`<path d="M22.3 26.5h3.4l1.3 7.5h-6z" fill="currentColor"/></svg>`

// HTML is the button's markup, a submit button for the service's login
// form, with the "Qu'est-ce que Sésame ?" link below it: what GET /button
// shows integrators and what the demo service provider uses.
func (b Button) HTML() template.HTML {
	brand := "Sésame"
	if b.Plus {
		brand = "Sésame+"
	}
	t := func(fr, en string) string { return Text{fr, en}.In(b.Lang) }
	var s strings.Builder
	s.WriteString(`<div class="sesame-button-group">` + "\n")
	s.WriteString(`  <button type="submit" class="sesame-button`)
	if b.Plus {
		s.WriteString(` sesame-button--plus`)
	}
	s.WriteString(`"`)
	if b.ID != "" {
		s.WriteString(` id="` + template.HTMLEscapeString(b.ID) + `"`)
	}
	s.WriteString(">\n    " + buttonMark + "\n")
	s.WriteString(`    <span class="sesame-button__text">` + "\n")
	s.WriteString(`      <span class="sesame-button__login">` + template.HTMLEscapeString(t("S’identifier avec", "Sign in with")) + "</span>\n")
	s.WriteString(`      <span class="sesame-button__brand">` + brand + "</span>\n")
	s.WriteString("    </span>\n  </button>\n")
	if b.AboutURL != "" {
		s.WriteString(`  <p><a href="` + template.HTMLEscapeString(b.AboutURL) + `">` +
			template.HTMLEscapeString(t("Qu’est-ce que Sésame\u00a0?", "What is Sésame?")) + "</a></p>\n")
	}
	s.WriteString("</div>")
	return template.HTML(s.String())
}

// Asset returns the content of an embedded static file (name relative to
// static/), to show a stylesheet integrators copy, say.
func Asset(name string) ([]byte, bool) {
	if _, ok := assets().etags[name]; !ok {
		return nil, false
	}
	b, err := fs.ReadFile(staticRoot, name)
	return b, err == nil
}

// HasAsset reports whether name (relative to static/) is an embedded
// static file, to check a configured logo at start.
func HasAsset(name string) bool {
	_, ok := assets().etags[name]
	return ok
}
