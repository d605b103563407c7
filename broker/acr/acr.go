// Package acr orders the eIDAS assurance levels and picks the level of a
// request, following FranceConnect's rules.
package acr

import (
	"slices"
	"strings"
)

// The eIDAS levels, in the form Sésame uses on the wire.
const (
	Low         = "eidas1"
	Substantial = "eidas2"
	High        = "eidas3"
)

var synonyms = map[string]string{
	Low:                                      Low,
	Substantial:                              Substantial,
	High:                                     High,
	"http://eidas.europa.eu/LoA/low":         Low,
	"http://eidas.europa.eu/LoA/substantial": Substantial,
	"http://eidas.europa.eu/LoA/high":        High,
}

var rank = map[string]int{Low: 1, Substantial: 2, High: 3}

// Normalize maps a level or its eIDAS LoA URI to Sésame's form; ok is false
// for an unknown value.
func Normalize(v string) (string, bool) {
	n, ok := synonyms[v]
	return n, ok
}

// Rank returns 1..3 for a known level and 0 otherwise.
func Rank(level string) int {
	n, _ := Normalize(level)
	return rank[n]
}

// AtLeast reports whether got meets want. An unknown got never does.
func AtLeast(got, want string) bool {
	g := Rank(got)
	return g > 0 && g >= Rank(want)
}

// Max returns the higher of two levels.
func Max(a, b string) string {
	if Rank(b) > Rank(a) {
		return b
	}
	return a
}

// Lowest returns the lowest of levels, normalized; "" when none is known.
func Lowest(levels []string) string {
	best := ""
	for _, l := range levels {
		n, ok := Normalize(l)
		if ok && (best == "" || rank[n] < rank[best]) {
			best = n
		}
	}
	return best
}

// Choose applies FranceConnect's rule to a space-separated acr_values: take
// the lowest known value, ignore unknown ones, and fall back to def when
// nothing is known. outside is true when the chosen level is known but not
// accepted on this platform (eidas1 on "+"), which must be refused.
func Choose(acrValues string, accepted []string, def string) (level string, outside bool) {
	l := Lowest(strings.Fields(acrValues))
	if l == "" {
		return def, false
	}
	if !slices.Contains(accepted, l) {
		return l, true
	}
	return l, false
}
