package demosp

import (
	"slices"

	"github.com/sesame-id/sesame/config"
)

// levels are the eIDAS levels, lowest first, shared with the config so the
// demo SP and the broker never disagree on the order; the index is the
// strength, so comparing levels is comparing indexes.
var levels = config.KnownACR

// levelRank returns the strength of an acr value, or -1 when it is unknown.
func levelRank(acr string) int {
	return slices.Index(levels, acr)
}

// acrSatisfies reports whether the acr the provider returned is at least the
// level asked for. An unknown or empty acr never satisfies: a relying party
// that accepts what it does not understand is the integrator mistake
// FranceConnect warns about.
func acrSatisfies(returned, asked string) bool {
	r, a := levelRank(returned), levelRank(asked)
	return r >= 0 && a >= 0 && r >= a
}
