package dataprovider

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// builtinData is the records the mock data providers use when the config
// names no data file: a few people of providers/identities.csv, written
// the way an administration's records are (upper case, no accents).
//
//go:embed data.json
var builtinData []byte

// dataFile is a data file: one section per API. A provider reads the
// section of its own id, so one file can serve both.
type dataFile struct {
	DGFiP *dgfipData `json:"dgfip"`
	CNAF  *cnafData  `json:"cnaf"`
}

type dgfipData struct {
	Contribuables []taxpayer `json:"contribuables"`
}

// taxpayer is one person known to the tax office, with the figures of
// each tax year.
type taxpayer struct {
	person
	Annees []taxYear `json:"annees"`
}

type taxYear struct {
	Annee                   int     `json:"annee"`
	RevenuFiscalDeReference int     `json:"revenu_fiscal_de_reference"`
	NombreDeParts           float64 `json:"nombre_de_parts"`
}

type cnafData struct {
	Foyers []household `json:"foyers"`
}

// household is one CNAF file ("dossier allocataire"): the adults it is
// in the name of, the children it covers and its quotient familial.
type household struct {
	NumeroAllocataire string           `json:"numero_allocataire"`
	Allocataires      []person         `json:"allocataires"`
	Enfants           []member         `json:"enfants"`
	QuotientFamilial  quotientFamilial `json:"quotient_familial"`
}

type quotientFamilial struct {
	QuotientFamilial int `json:"quotient_familial"`
	Mois             int `json:"mois"`
	Annee            int `json:"annee"`
}

// member is how a person appears in an answer: civil state only.
type member struct {
	NomNaissance  string `json:"nom_naissance"`
	Prenoms       string `json:"prenoms"`
	DateNaissance string `json:"date_naissance"`
	Sexe          string `json:"sexe"` // M or F
}

// person is a record the pivot identity is matched against.
type person struct {
	// Identite is the id, in providers/identities.csv, of the test
	// identity the record describes; empty for someone no mock IdP can
	// log in as (a spouse). It is only shown on the provider's page:
	// matching uses the civil state, as a real provider's would.
	Identite string `json:"identite,omitempty"`
	member
	// CodeLieuNaissance is the INSEE COG code of the commune of birth,
	// empty when born abroad; CodePaysNaissance the COG country code.
	CodeLieuNaissance string `json:"code_lieu_naissance"`
	CodePaysNaissance string `json:"code_pays_naissance"`
}

// loadData reads the section of data file path (empty: the built-in one)
// for the provider id, strictly: an unknown field or a bad value names the
// file, the record and the field, since a record silently skipped would
// make a test pass for the wrong reason.
func loadData(id, path string) (*dataFile, error) {
	raw, name := builtinData, "data.json (built in)"
	if path != "" {
		var err error
		if raw, err = os.ReadFile(path); err != nil {
			return nil, err
		}
		name = path
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f dataFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: data after the JSON object", name)
	}
	var err error
	switch id {
	case "dgfip":
		if f.DGFiP == nil {
			return nil, fmt.Errorf("%s: no \"dgfip\" section", name)
		}
		err = f.DGFiP.check()
	case "cnaf":
		if f.CNAF == nil {
			return nil, fmt.Errorf("%s: no \"cnaf\" section", name)
		}
		err = f.CNAF.check()
	default:
		err = fmt.Errorf("no API for provider id %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &f, nil
}

func (d *dgfipData) check() error {
	for i, c := range d.Contribuables {
		entry := fmt.Sprintf("dgfip.contribuables[%d] (%s)", i, c.label())
		if err := c.person.check(); err != nil {
			return fmt.Errorf("%s: %w", entry, err)
		}
		if len(c.Annees) == 0 {
			return fmt.Errorf("%s: annees: at least one tax year is required", entry)
		}
		seen := map[int]bool{}
		for _, y := range c.Annees {
			switch {
			case y.Annee < 1900 || y.Annee > 2100:
				return fmt.Errorf("%s: annees: %d is not a tax year", entry, y.Annee)
			case seen[y.Annee]:
				return fmt.Errorf("%s: annees: %d is listed twice", entry, y.Annee)
			case y.RevenuFiscalDeReference < 0:
				return fmt.Errorf("%s: annees: %d: revenu_fiscal_de_reference is negative", entry, y.Annee)
			case y.NombreDeParts < 1 || y.NombreDeParts*4 != float64(int(y.NombreDeParts*4)):
				return fmt.Errorf("%s: annees: %d: nombre_de_parts %v: expected 1 or more, in quarters", entry, y.Annee, y.NombreDeParts)
			}
			seen[y.Annee] = true
		}
	}
	return nil
}

func (d *cnafData) check() error {
	seen := map[string]bool{}
	for i, h := range d.Foyers {
		entry := fmt.Sprintf("cnaf.foyers[%d] (%s)", i, h.NumeroAllocataire)
		switch {
		case !allocatairePattern.MatchString(h.NumeroAllocataire):
			return fmt.Errorf("%s: numero_allocataire: %q: expected 7 digits", entry, h.NumeroAllocataire)
		case seen[h.NumeroAllocataire]:
			return fmt.Errorf("%s: numero_allocataire: listed twice", entry)
		case len(h.Allocataires) == 0:
			return fmt.Errorf("%s: allocataires: at least one is required", entry)
		case h.QuotientFamilial.QuotientFamilial < 0:
			return fmt.Errorf("%s: quotient_familial: is negative", entry)
		case h.QuotientFamilial.Mois < 1 || h.QuotientFamilial.Mois > 12:
			return fmt.Errorf("%s: quotient_familial: mois %d: expected 1 to 12", entry, h.QuotientFamilial.Mois)
		case h.QuotientFamilial.Annee < 1900 || h.QuotientFamilial.Annee > 2100:
			return fmt.Errorf("%s: quotient_familial: annee %d is not a year", entry, h.QuotientFamilial.Annee)
		}
		seen[h.NumeroAllocataire] = true
		for j, a := range h.Allocataires {
			if err := a.check(); err != nil {
				return fmt.Errorf("%s: allocataires[%d] (%s): %w", entry, j, a.label(), err)
			}
		}
		for j, e := range h.Enfants {
			if err := e.check(); err != nil {
				return fmt.Errorf("%s: enfants[%d]: %w", entry, j, err)
			}
		}
	}
	return nil
}

var (
	identitePattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	codePattern        = regexp.MustCompile(`^[0-9A-Za-z]{5}$`)
	allocatairePattern = regexp.MustCompile(`^[0-9]{7}$`)
)

func (p person) check() error {
	if p.Identite != "" && !identitePattern.MatchString(p.Identite) {
		return fmt.Errorf("identite: %q: expected the id of a test identity (lowercase letters, digits, dashes)", p.Identite)
	}
	if err := p.member.check(); err != nil {
		return err
	}
	if p.CodeLieuNaissance != "" && !codePattern.MatchString(p.CodeLieuNaissance) {
		return fmt.Errorf("code_lieu_naissance: %q: expected a 5-character COG code, or empty when born abroad", p.CodeLieuNaissance)
	}
	if !codePattern.MatchString(p.CodePaysNaissance) {
		return fmt.Errorf("code_pays_naissance: %q: expected a 5-character COG code such as 99100", p.CodePaysNaissance)
	}
	return nil
}

func (m member) check() error {
	switch {
	case normalize(m.NomNaissance) == "":
		return errors.New("nom_naissance: is required")
	case normalize(m.Prenoms) == "":
		return errors.New("prenoms: is required")
	case m.Sexe != "M" && m.Sexe != "F":
		return fmt.Errorf("sexe: %q: expected M or F", m.Sexe)
	}
	if t, err := time.Parse(time.DateOnly, m.DateNaissance); err != nil || t.Format(time.DateOnly) != m.DateNaissance {
		return fmt.Errorf("date_naissance: %q: expected a real date as YYYY-MM-DD", m.DateNaissance)
	}
	return nil
}

// label names a record in errors and on the page: its test identity, or
// else its name.
func (p person) label() string {
	if p.Identite != "" {
		return p.Identite
	}
	return p.NomNaissance + " " + p.Prenoms
}

// pivot is the pivot identity an introspection answer carries.
type pivot struct {
	GivenName, FamilyName, Birthdate, Gender, Birthplace, Birthcountry string
}

// matches tells whether a record describes the person of the pivot
// identity: names compared after normalize, birth date, sex, and the COG
// codes of the place and country of birth.
func (p person) matches(id pivot) bool {
	sexe := map[string]string{"male": "M", "female": "F"}[id.Gender]
	return sexe != "" && sexe == p.Sexe &&
		id.Birthdate == p.DateNaissance &&
		normalize(id.FamilyName) == normalize(p.NomNaissance) &&
		normalize(id.GivenName) == normalize(p.Prenoms) &&
		strings.EqualFold(id.Birthplace, p.CodeLieuNaissance) &&
		strings.EqualFold(id.Birthcountry, p.CodePaysNaissance)
}

// findOne returns the one record matching id, or false when none or
// several do: a provider must not answer for someone it is not sure of.
func findOne[T any](records []T, rec func(*T) []person, id pivot) (*T, bool) {
	var found *T
	for i := range records {
		if slices.ContainsFunc(rec(&records[i]), func(p person) bool { return p.matches(id) }) {
			if found != nil {
				return nil, false
			}
			found = &records[i]
		}
	}
	return found, found != nil
}

// folded spells the letters that do not decompose into a base letter and
// an accent the way French civil-state records do.
var folded = map[rune]string{
	'Œ': "OE", 'Æ': "AE", 'ß': "SS", 'Ø': "O", 'Đ': "D", 'Ł': "L", 'Þ': "TH",
}

// accented maps the accented capitals of the Latin alphabets met in
// French records to their base letter.
var accented = map[rune]rune{}

func init() {
	for base, letters := range map[rune]string{
		'A': "ÀÁÂÃÄÅĀĂĄ", 'C': "ÇĆĈĊČ", 'D': "Ď", 'E': "ÈÉÊËĒĔĖĘĚ", 'G': "ĜĞĠĢ", 'H': "ĤĦ",
		'I': "ÌÍÎÏĨĪĬĮİ", 'J': "Ĵ", 'K': "Ķ", 'L': "ĹĻĽĿ", 'N': "ÑŃŅŇ", 'O': "ÒÓÔÕÖŌŎŐ",
		'R': "ŔŖŘ", 'S': "ŚŜŞŠȘ", 'T': "ŢŤŦȚ", 'U': "ÙÚÛÜŨŪŬŮŰŲ", 'W': "Ŵ", 'Y': "ÝŶŸ", 'Z': "ŹŻŽ",
	} {
		for _, l := range letters {
			accented[l] = base
		}
	}
}

// normalize puts a name in the form records are compared in: upper case,
// accents and ligatures spelled out (é → E, œ → OE), and every run of
// anything else than a letter or a digit (hyphen, apostrophe, space) one
// space, so "Martin-Dupont", "MARTIN DUPONT" and "martin  dupont" agree.
func normalize(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToUpper(s) {
		out := ""
		switch {
		case folded[r] != "":
			out = folded[r]
		case accented[r] != 0:
			out = string(accented[r])
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			out = string(r)
		case unicode.Is(unicode.Mn, r):
			// A combining accent (a name typed in decomposed form).
			continue
		default:
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteString(out)
	}
	return b.String()
}
