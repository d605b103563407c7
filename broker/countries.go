package broker

//go:generate sh -c "cd .. && go run ./broker/internal/gencountries"

import (
	"strings"
	"unicode"

	"github.com/sesame-id/sesame/internal/cog"
	"github.com/sesame-id/sesame/internal/web"
)

// countryName is the name of the COG country code (99XXX) in lang, ""
// when the code is unknown: CLDR's name for its ISO code when it has one
// (countrynames.go), COG's own label in sentence case otherwise (a former
// country, say). COG's labels are French and upper case ("ALLEMAGNE").
func countryName(code, lang string) string {
	c, ok := cog.LookupCountry(code)
	if !ok {
		return ""
	}
	if n, ok := countryNames[c.ISO]; ok {
		if lang == web.LangEN {
			return n[1]
		}
		return n[0]
	}
	return sentenceCase(c.Name)
}

// sentenceCase turns "REPUBLIQUE DEMOCRATIQUE ALLEMANDE" into
// "Republique democratique allemande".
func sentenceCase(s string) string {
	r := []rune(strings.ToLower(s))
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}
