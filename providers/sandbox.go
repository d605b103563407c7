package providers

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The login page is a sandbox for integrators as much as a login form: a
// short form first (five common identities, an identity id, a scenario
// among the common ones, "Se connecter"), which fits a phone's first
// screen, then every test identity and every scenario field below it.

// commonIdentityIDs are the identities offered in the short form, in this
// order: the nominal case, compound names, a usage name, a person born
// abroad, and an invalid COG code for the error path. An identities file
// without them offers its first five instead.
var commonIdentityIDs = []string{"angela-dubois", "jean-pierre-martin-dupont", "marie-durand", "klaus-mueller", "paul-invalide-lieu"}

const commonCount = 5

// commonPurpose says in a few words what each common identity is for:
// the short form shows that instead of the full line, to fit the screen.
var commonPurpose = map[string][2]string{
	"angela-dubois":             {"Cas nominal", "Nominal case"},
	"jean-pierre-martin-dupont": {"Prénom et nom composés", "Compound names"},
	"marie-durand":              {"Nom d'usage", "Usage name"},
	"klaus-mueller":             {"Né à l'étranger", "Born abroad"},
	"paul-invalide-lieu":        {"Code COG invalide : un test d'erreur", "Invalid COG code: an error test"},
}

// The short form's own fields, beside identity and the scenario_* ones.
const (
	// fieldIdentityID is a typed identity id; it wins over the radios.
	fieldIdentityID = "identity_id"
	// fieldLang is the language switch's ("fr" or "en"), posted alone
	// with tx: it shows the page again in that language.
	fieldLang = "lang"
)

// splitIdentities returns the short form's identities and the others, in
// file order, each identity in exactly one of them.
func splitIdentities(all []Identity) (common, others []Identity) {
	for _, id := range commonIdentityIDs {
		if i := slices.IndexFunc(all, func(x Identity) bool { return x.ID == id }); i >= 0 {
			common = append(common, all[i])
		}
	}
	if len(common) < commonCount {
		common = nil
		for i := range min(commonCount, len(all)) {
			common = append(common, all[i])
		}
	}
	for _, id := range all {
		if !slices.ContainsFunc(common, func(c Identity) bool { return c.ID == id.ID }) {
			others = append(others, id)
		}
	}
	return common, others
}

// preset is a scenario of the short form: a name for the usual cases,
// standing for scenario_* fields of the long form.
type preset struct {
	Value            string
	LabelFR, LabelEN string
	// Fields are the scenario_* fields and values it stands for.
	Fields [][2]string
}

// fieldPreset is the short form's scenario select. It is not a scenario_*
// field: it only fills those in.
const fieldPreset = "preset"

var presets = []preset{
	{Value: "", LabelFR: "Connexion normale", LabelEN: "Normal login"},
	{Value: "access_denied", LabelFR: "La personne refuse (erreur access_denied)", LabelEN: "The person refuses (access_denied error)",
		Fields: [][2]string{{fieldError, "access_denied"}}},
	{Value: "unavailable", LabelFR: "Fournisseur en panne (erreur temporarily_unavailable)", LabelEN: "Provider down (temporarily_unavailable error)",
		Fields: [][2]string{{fieldError, "temporarily_unavailable"}}},
	{Value: "low_acr", LabelFR: "Niveau attesté trop bas (acr eidas1)", LabelEN: "Level asserted too low (acr eidas1)",
		Fields: [][2]string{{fieldACR, "eidas1"}}},
	{Value: "slow_token", LabelFR: "Jeton lent (7 s, au-delà du délai du courtier)", LabelEN: "Slow token endpoint (7 s, beyond the broker's timeout)",
		Fields: [][2]string{{fieldTokenDelay, "7s"}}},
	{Value: "wrong_key", LabelFR: "id_token signé par une clé non publiée", LabelEN: "id_token signed with an unpublished key",
		Fields: [][2]string{{fieldWrongKey, wrongKeyForged}}},
	{Value: "no_birthdate", LabelFR: "Date de naissance absente", LabelEN: "Birth date missing",
		Fields: [][2]string{{fieldDropClaim, "birthdate"}}},
	{Value: "bad_cog", LabelFR: "Code COG invalide (lieu de naissance " + badBirthplace + ")", LabelEN: "Invalid COG code (birthplace " + badBirthplace + ")",
		Fields: [][2]string{{fieldBadCOG, badCOGBirthplace}}},
}

// applyPreset writes the fields of the chosen preset into f, for
// scenarioFromForm to read as if typed in the long form. A field set
// there to something else is a contradiction, refused like the others.
func applyPreset(f url.Values) error {
	vs := f[fieldPreset]
	if len(vs) == 0 || (len(vs) == 1 && strings.TrimSpace(vs[0]) == "") {
		return nil
	}
	values := make([]string, 0, len(presets))
	for _, p := range presets[1:] {
		values = append(values, p.Value)
	}
	if len(vs) > 1 {
		return badFieldFREN(fieldPreset, "envoyé plusieurs fois ; envoyez-le une fois au plus.", "sent more than once; send it once at most.")
	}
	v := strings.TrimSpace(vs[0])
	i := slices.IndexFunc(presets, func(p preset) bool { return p.Value == v })
	if i <= 0 {
		return badFieldFREN(fieldPreset, "%s n'est pas proposé ; attendu l'un de %s.", "%s is not offered; expected one of %s.", quoted(v), strings.Join(values, ", "))
	}
	for _, fv := range presets[i].Fields {
		if cur := strings.TrimSpace(f.Get(fv[0])); cur != "" && cur != fv[1] {
			return badFieldFREN(fv[0], "%s contredit le scénario %s choisi plus haut (%s=%s) ; laissez l'un des deux vide.",
				"%s contradicts the scenario %s chosen above (%s=%s); leave one of them empty.", quoted(cur), v, fv[0], fv[1])
		}
		f.Set(fv[0], fv[1])
	}
	return nil
}

// tr picks the French or the English text.
func tr(lang, fr, en string) string {
	if lang == "en" {
		return en
	}
	return fr
}

// pageLang is the language a login page opens in: "fr" or "en".
func pageLang(lang string) string {
	if lang == "en" {
		return "en"
	}
	return "fr"
}

// notesEN are the English notes of the built-in identities, by id; an
// identity without one shows its French note.
//
//go:embed identities_en.csv
var builtinNotesEN string

var notesEN = func() map[string]string {
	rows, err := csv.NewReader(strings.NewReader(builtinNotesEN)).ReadAll()
	if err != nil || len(rows) == 0 || strings.Join(rows[0], ",") != "id,note" {
		panic(fmt.Sprintf("providers: identities_en.csv: header id,note expected (%v)", err))
	}
	out := map[string]string{}
	for _, r := range rows[1:] {
		out[r[0]] = r[1]
	}
	return out
}()

// countryNamesEN are countryNames in English.
var countryNamesEN = map[string]string{
	"99100": "France", "99109": "Germany", "99134": "Spain", "99350": "Morocco",
	"99352": "Algeria", "99212": "Japan", "99127": "Italy", "99341": "Senegal",
	"99404": "United States",
}

// identityRow is one test identity as the page lists it.
type identityRow struct {
	ID, Name, Hint string
	Checked        bool
}

// identityRows labels identities in lang; checked is the selected id.
// short gives the common identities their purpose instead of the full
// line.
func identityRows(ids []Identity, lang, checked string, short bool) []identityRow {
	out := make([]identityRow, 0, len(ids))
	for _, id := range ids {
		hint := identityHint(id, lang)
		if p, ok := commonPurpose[id.ID]; ok && short {
			hint = tr(lang, p[0], p[1])
		}
		out = append(out, identityRow{ID: id.ID, Name: id.GivenName + " " + id.FamilyName, Hint: hint, Checked: id.ID == checked})
	}
	return out
}

// identityHint is the line under a name: birth, usage name, note.
func identityHint(id Identity, lang string) string {
	var b strings.Builder
	if lang == "en" {
		date := id.Birthdate
		if t, err := time.Parse(time.DateOnly, id.Birthdate); err == nil {
			date = t.Format("2 January 2006")
		}
		b.WriteString("Born " + date + ", " + birthLabelEN(id))
		if id.PreferredUsername != "" {
			b.WriteString(" · usage name: " + id.PreferredUsername)
		}
		note := id.Note
		if n, ok := notesEN[id.ID]; ok {
			note = n
		}
		if note != "" {
			b.WriteString(" · " + note)
		}
		return b.String()
	}
	if id.Gender == "female" {
		b.WriteString("Née")
	} else {
		b.WriteString("Né")
	}
	b.WriteString(" le " + id.BirthdateLabel() + ", " + id.BirthLabel())
	if id.PreferredUsername != "" {
		b.WriteString(" · nom d'usage\u00a0: " + id.PreferredUsername)
	}
	if id.Note != "" {
		b.WriteString(" · " + id.Note)
	}
	return b.String()
}

// birthLabelEN is BirthLabel with English country names.
func birthLabelEN(id Identity) string {
	country := id.Birthcountry
	if n, ok := countryNamesEN[country]; ok {
		country = n + " (" + country + ")"
	}
	if id.Birthplace == "" {
		return country
	}
	place := id.Birthplace
	if n, ok := placeNames[place]; ok {
		place = n + " (" + place + ")"
	}
	return place + ", " + country
}
