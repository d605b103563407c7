package providers

import (
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// builtinIdentities is the default set of test identities. Its invalid-COG
// rows are there on purpose: the broker must refuse them with a clear error.
//
//go:embed identities.csv
var builtinIdentities string

// identityColumns is the exact header an identities file must start with.
var identityColumns = []string{
	"id", "given_name", "family_name", "birthdate", "gender",
	"birthplace", "birthcountry", "email", "preferred_username", "note",
}

// Identity is one test person a mock IdP can log in as. The pivot claims use
// FranceConnect's formats: birthdate YYYY-MM-DD, gender male or female,
// birthplace a 5-character INSEE COG commune code (empty when born abroad)
// and birthcountry a COG country code (99100 is France).
type Identity struct {
	// ID names the person in the file and on the login form; it is not
	// the sub, which each IdP derives from it differently.
	ID                string
	GivenName         string
	FamilyName        string
	Birthdate         string
	Gender            string
	Birthplace        string
	Birthcountry      string
	Email             string
	PreferredUsername string
	// Note tells testers what the identity is for, e.g. that its COG code
	// is invalid on purpose.
	Note string
}

var (
	identityIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	// COG validity is deliberately not checked: the mock must be able to
	// send a bad code so the broker's validation can be tested. Only the
	// shape is, so that a typo such as a stray space still fails loudly.
	codePattern = regexp.MustCompile(`^[0-9A-Za-z]{1,10}$`)
)

// maxFieldLen bounds every text field so that a broken file cannot make the
// pages or tokens absurdly large.
const maxFieldLen = 256

// LoadIdentities reads a CSV of test identities whose header is exactly
// id,given_name,family_name,birthdate,gender,birthplace,birthcountry,email,preferred_username,note.
// It is strict, since a silently skipped row would make a test pass for the
// wrong reason: every error names the line and the column.
func LoadIdentities(r io.Reader) ([]Identity, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(identityColumns)
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("identities: empty file, expected a header line")
	}
	if err != nil {
		return nil, fmt.Errorf("identities: %w", err)
	}
	// A spreadsheet export often starts with a byte-order mark.
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	for i, want := range identityColumns {
		if header[i] != want {
			return nil, fmt.Errorf("identities: line 1, column %d: header %q, expected %q (header must be %s)",
				i+1, header[i], want, strings.Join(identityColumns, ","))
		}
	}

	var out []Identity
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("identities: %w", err)
		}
		line, _ := cr.FieldPos(0)
		id, col, err := parseIdentity(rec)
		if err != nil {
			return nil, fmt.Errorf("identities: line %d, column %s: %w", line, identityColumns[col], err)
		}
		if first, dup := seen[id.ID]; dup {
			return nil, fmt.Errorf("identities: line %d, column id: %q already used on line %d", line, id.ID, first)
		}
		seen[id.ID] = line
		out = append(out, id)
	}
	if len(out) == 0 {
		return nil, errors.New("identities: no identity after the header")
	}
	return out, nil
}

// parseIdentity checks one record; on error it returns the index of the
// offending column.
func parseIdentity(rec []string) (Identity, int, error) {
	for i, v := range rec {
		if err := checkText(v); err != nil {
			return Identity{}, i, err
		}
	}
	id := Identity{
		ID: rec[0], GivenName: rec[1], FamilyName: rec[2], Birthdate: rec[3], Gender: rec[4],
		Birthplace: rec[5], Birthcountry: rec[6], Email: rec[7], PreferredUsername: rec[8], Note: rec[9],
	}
	switch {
	case !identityIDPattern.MatchString(id.ID):
		return id, 0, fmt.Errorf("%q: expected lowercase letters, digits and dashes (at most 64)", id.ID)
	case id.GivenName == "":
		return id, 1, errors.New("is required")
	case id.FamilyName == "":
		return id, 2, errors.New("is required")
	case !validDate(id.Birthdate):
		return id, 3, fmt.Errorf("%q: expected a real date as YYYY-MM-DD", id.Birthdate)
	case id.Gender != "male" && id.Gender != "female":
		return id, 4, fmt.Errorf("%q: expected male or female", id.Gender)
	case id.Birthplace != "" && !codePattern.MatchString(id.Birthplace):
		return id, 5, fmt.Errorf("%q: expected a COG code (letters and digits) or empty", id.Birthplace)
	case !codePattern.MatchString(id.Birthcountry):
		return id, 6, fmt.Errorf("%q: expected a COG country code such as 99100", id.Birthcountry)
	case id.Email != "" && !validEmail(id.Email):
		return id, 7, fmt.Errorf("%q: expected an address like name@example.org, or empty", id.Email)
	}
	return id, 0, nil
}

// checkText rejects what would corrupt a page, a log line or a token claim.
func checkText(v string) error {
	if !utf8.ValidString(v) {
		return errors.New("is not valid UTF-8")
	}
	if len(v) > maxFieldLen {
		return fmt.Errorf("is longer than %d bytes", maxFieldLen)
	}
	if strings.TrimSpace(v) != v {
		return fmt.Errorf("%q: leading or trailing space", v)
	}
	for _, c := range v {
		if unicode.IsControl(c) {
			return fmt.Errorf("%q: control character", v)
		}
	}
	return nil
}

func validDate(s string) bool {
	if len(s) != len("2006-01-02") {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

func validEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(s, " <>,;\"") &&
		!strings.Contains(domain, "@") && strings.Contains(domain, ".")
}

// placeNames and countryNames label the COG codes of the built-in file on the
// login page, so testers pick a person by something more readable than a
// code. An unknown code is shown as is.
var placeNames = map[string]string{
	"75107": "Paris 7e", "75120": "Paris 20e", "69123": "Lyon", "21231": "Dijon",
	"13055": "Marseille", "59350": "Lille", "33063": "Bordeaux", "2A004": "Ajaccio",
	"97411": "Saint-Denis (La Réunion)", "2B033": "Bastia", "97209": "Fort-de-France",
	"97302": "Cayenne", "97611": "Mamoudzou", "67482": "Strasbourg", "06088": "Nice",
	"44109": "Nantes", "35238": "Rennes",
}

var countryNames = map[string]string{
	"99100": "France", "99109": "Allemagne", "99134": "Espagne", "99350": "Maroc",
	"99352": "Algérie", "99212": "Japon", "99127": "Italie", "99341": "Sénégal",
	"99404": "États-Unis",
}

// BirthLabel describes where the person was born, for people reading the
// login page: "Lyon (69123), France (99100)".
func (id Identity) BirthLabel() string {
	label := func(names map[string]string, code string) string {
		if n, ok := names[code]; ok {
			return n + " (" + code + ")"
		}
		return code
	}
	if id.Birthplace == "" {
		return label(countryNames, id.Birthcountry)
	}
	return label(placeNames, id.Birthplace) + ", " + label(countryNames, id.Birthcountry)
}

// BirthdateLabel shows the birth date the French way (24/08/1962).
func (id Identity) BirthdateLabel() string {
	t, err := time.Parse(time.DateOnly, id.Birthdate)
	if err != nil {
		return id.Birthdate
	}
	return t.Format("02/01/2006")
}
