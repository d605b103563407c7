// Package cog answers questions about INSEE's Code officiel géographique
// (COG), the code lists the pivot identity's birthplace and birthcountry are
// taken from: which commune a five-character code named on a given date,
// and which country or territory a 99XXX code names, with its ISO 3166-1
// alpha-2 code where it has one.
//
// The tables are embedded in the binary (data/, rebuilt by `make cog`; see
// data/README.md for their sources) and decoded on first use, so commands
// that never look a code up do not pay for them.
//
// # Validity dates of communes
//
// INSEE keeps, for every code since 1 January 1943, the periods during which
// it named a commune, and how each period began and ended (its
// "mouvements"). A code is a valid birthplace on a date when one of its
// periods covers that date, a period running from its first day included to
// its last day excluded:
//
//   - creation ("création", "rétablissement"): the code counts from the day
//     the commune was created or restored, not before;
//   - merger ("fusion simple", "fusion-association", "commune nouvelle"): a
//     commune absorbed by another stops counting on the day of the merger;
//     one that becomes a commune associée or a commune déléguée of a
//     commune nouvelle goes on counting as such (an associated or delegated
//     commune keeps its registry office), so a person born before the
//     merger keeps a valid birthplace either way;
//   - renaming ("changement de nom"): the code goes on, only its label
//     changes on that date;
//   - change of code (Corsica's 20XXX became 2AXXX/2BXXX on 1 January 1976,
//     the Paris region was renumbered on 1 January 1968): the old code
//     counts until the change, and the new code counts from the commune's
//     own start, since IdPs and the civil registry report today's code for
//     people born before the change;
//   - a code reused later by another commune names each commune during its
//     own period.
//
// The history starts on 1 January 1943: a code whose first period is open
// at that start counts as existing before it, so people born before 1943
// are checked against the communes of 1943. Municipal arrondissements of
// Paris, Lyon and Marseille (FranceConnect accepts their codes, 75101-75120,
// 69381-69389, 13201-13216) and the collectivités d'outre-mer (975XX,
// 977XX, 978XX, 984XX, 986XX to 988XX) are not in the packaged history and
// count from the start as well.
//
// INSEE's dated history, as packaged, stops at the COG of 1 January 2019.
// Later changes come from the yearly COGs (each the state on 1 January):
// what a year's COG lacks ended on that 1 January at the latest, and what it
// adds counts from the day after the previous COG, so a birth between two
// COGs is never refused for a change whose exact day the tables do not
// know. Across 2019-2021 (no COG 2020 was packaged) that margin is two
// years.
//
// # Countries
//
// Country codes are 99XXX, 99100 being France. The packaged country list
// carries no dates, so CountryAt accepts on any date the codes Country
// accepts (including former countries such as 99141, the German Democratic
// Republic); it exists so callers already pass the date when a dated list
// becomes available.
package cog

import (
	"time"
)

// Kind is what a commune code named during a period.
type Kind uint8

// The kinds of entities that are places of birth. A commune associée or
// déléguée keeps its registry office after a merger, so births are recorded
// there; a municipal arrondissement is what Paris, Lyon and Marseille
// record births by.
const (
	KindCommune Kind = iota + 1
	KindDelegated
	KindAssociated
	KindArrondissement
)

func (k Kind) String() string {
	switch k {
	case KindCommune:
		return "commune"
	case KindDelegated:
		return "commune déléguée"
	case KindAssociated:
		return "commune associée"
	case KindArrondissement:
		return "arrondissement municipal"
	}
	return "unknown"
}

// Commune is one period of a commune code: what it named, from when to
// when.
type Commune struct {
	Code string
	// Name is INSEE's label, with its article ("Les Abrets en Dauphiné").
	Name string
	// Department is the department's code, read from the commune code:
	// its first two characters (2A/2B in Corsica, 20 for the codes used
	// there before 1976), three overseas (971-976, and 975-988 for the
	// collectivités d'outre-mer).
	Department string
	Kind       Kind
	// From is the first day of the period; zero when the code already
	// existed at the start of INSEE's history (1943-01-01).
	From time.Time
	// Until is the day the period ended (excluded); zero while current.
	Until time.Time
}

// Country is a COG country or territory.
type Country struct {
	// Code is the COG code, 99XXX.
	Code string
	// Name is INSEE's label, in capitals as INSEE lists it ("ALLEMAGNE").
	Name string
	// ISO is the ISO 3166-1 alpha-2 code, empty for former countries
	// (99141, the GDR) and for codes that group territories of several
	// ISO codes (99425, the United Kingdom's Antilles).
	ISO string
}

// HistoryStart is the first date of INSEE's history of communes. A code
// present at that date counts as existing before it.
var HistoryStart = time.Date(1943, time.January, 1, 0, 0, 0, 0, time.UTC)

// CommuneAt returns what the commune code named on date (only its year,
// month and day count). When a commune nouvelle kept the code of one of
// its communes déléguées, the commune is returned. ok is false for a code
// that named no place of birth on that date.
func CommuneAt(code string, date time.Time) (c Commune, ok bool) {
	t := tables()
	k, ok := communeKey(code)
	if !ok {
		return Commune{}, false
	}
	r, ok := t.communes[k]
	if !ok {
		return Commune{}, false
	}
	day := dayOf(date)
	best := -1
	for i := r.off; i < r.off+uint32(r.n); i++ {
		s := &t.spans[i]
		if s.from > day || day >= s.until {
			continue
		}
		// The commune before its delegated or associated namesake; among
		// equals, the latest period (a renaming overlaps nothing, a
		// change known only to a year's margin may).
		if best < 0 || s.kind < t.spans[best].kind || (s.kind == t.spans[best].kind && s.from >= t.spans[best].from) {
			best = int(i)
		}
	}
	if best < 0 {
		return Commune{}, false
	}
	return t.commune(code, &t.spans[best]), true
}

// CommuneName is the label of the commune code on date, or "" when the code
// named no place of birth then. Pages show it beside the code.
func CommuneName(code string, date time.Time) string {
	c, _ := CommuneAt(code, date)
	return c.Name
}

// KnownCommune reports whether the code ever named a place of birth since
// 1943, whatever the date: it tells a code that never existed from one
// that existed at another time.
func KnownCommune(code string) bool {
	k, ok := communeKey(code)
	if !ok {
		return false
	}
	_, ok = tables().communes[k]
	return ok
}

// CommuneHistory returns every period of a commune code, oldest first.
func CommuneHistory(code string) []Commune {
	t := tables()
	k, ok := communeKey(code)
	if !ok {
		return nil
	}
	r := t.communes[k]
	out := make([]Commune, 0, r.n)
	for i := r.off; i < r.off+uint32(r.n); i++ {
		out = append(out, t.commune(code, &t.spans[i]))
	}
	return out
}

// LookupCountry returns the country or territory with the COG code.
func LookupCountry(code string) (Country, bool) {
	c, ok := tables().countries[code]
	return c, ok
}

// CountryAt returns the country or territory with the COG code on date.
// The packaged list has no dates, so date changes nothing yet (see the
// package documentation).
func CountryAt(code string, date time.Time) (Country, bool) {
	_ = date
	return LookupCountry(code)
}

// CountryName is the label of the COG country code, or "" when unknown.
func CountryName(code string) string {
	c, _ := LookupCountry(code)
	return c.Name
}

// CountryByISO returns the COG country or territory for an ISO 3166-1
// alpha-2 code (upper case). A territory that INSEE counts under its
// country's code (Guernsey, GG) gives that country's code (99132); France's
// overseas departments and collectivités have no COG country code of their
// own (people born there have a commune code and 99100) and are not found.
func CountryByISO(alpha2 string) (Country, bool) {
	t := tables()
	code, ok := t.byISO[alpha2]
	if !ok {
		return Country{}, false
	}
	return t.countries[code], true
}

func dayOf(t time.Time) int32 {
	y, m, d := t.Date()
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func dateOf(day int32) time.Time {
	return time.Unix(int64(day)*86400, 0).UTC()
}
