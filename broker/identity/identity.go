// Package identity validates the pivot identity an IdP returns and derives
// the pairwise sub an SP sees.
package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sesame-id/sesame/internal/cog"
)

// FranceCOG is the COG code of France among birth countries.
const FranceCOG = "99100"

// Pivot is the identity that FranceConnect-style brokers match on. Its six
// claims identify one person across IdPs.
type Pivot struct {
	GivenName    string `json:"given_name"`
	FamilyName   string `json:"family_name"`
	Birthdate    string `json:"birthdate"`
	Gender       string `json:"gender"`
	Birthplace   string `json:"birthplace"`
	Birthcountry string `json:"birthcountry"`
}

// Identity is what the broker keeps of a login: the pivot plus the
// non-pivot claims some SPs may ask for.
type Identity struct {
	Pivot
	Email             string `json:"email,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	// EIDAS is the eIDAS PersonIdentifier of a citizen of another
	// member state who logged in through the eIDAS bridge (see
	// foreign.go); empty for an identity from a French IdP.
	EIDAS string `json:"eidas,omitempty"`
}

// Error explains which claim of an IdP's identity is wrong. It never holds
// the value itself, so it is safe to log and show.
type Error struct {
	Claim  string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("identity: %s %s", e.Claim, e.Reason) }

var (
	communeCOG = regexp.MustCompile(`^(\d{5}|2[AB]\d{3})$`)
	countryCOG = regexp.MustCompile(`^99\d{3}$`)
)

const maxNameLen = 256

// Validate checks the pivot claims: names present and sane, a real past
// date, gender male/female, a birth country of INSEE's COG and, for a birth
// in France, a COG commune (or municipal arrondissement) that existed on the
// birth date; for a birth abroad, no birthplace. The COG lookups are map
// reads into tables decoded once (internal/cog).
func (p Pivot) Validate() error {
	var errs []error
	checkName := func(claim, v string) {
		switch {
		case strings.TrimSpace(v) == "":
			errs = append(errs, &Error{claim, "is missing"})
		case !utf8.ValidString(v) || len(v) > maxNameLen || strings.ContainsAny(v, "<>\"\x00\r\n\t"):
			errs = append(errs, &Error{claim, "has invalid characters or length"})
		}
	}
	checkName("given_name", p.GivenName)
	checkName("family_name", p.FamilyName)
	born, err := time.Parse(time.DateOnly, p.Birthdate)
	dated := err == nil && born.Format(time.DateOnly) == p.Birthdate && !born.After(time.Now())
	if !dated {
		errs = append(errs, &Error{"birthdate", "is not a past date in YYYY-MM-DD form"})
	}
	if p.Gender != "male" && p.Gender != "female" {
		errs = append(errs, &Error{"gender", "must be male or female"})
	}
	switch _, known := cog.CountryAt(p.Birthcountry, born); {
	case !countryCOG.MatchString(p.Birthcountry):
		errs = append(errs, &Error{"birthcountry", "is not a COG country code (99XXX)"})
	case !known:
		errs = append(errs, &Error{"birthcountry", "is not a country or territory of INSEE's COG"})
	case p.Birthcountry == FranceCOG:
		if err := checkBirthplace(p.Birthplace, born, dated); err != nil {
			errs = append(errs, err)
		}
	case p.Birthplace != "":
		errs = append(errs, &Error{"birthplace", "must be empty for a birth abroad"})
	}
	return errors.Join(errs...)
}

// checkBirthplace checks a birth in France: a commune code of the COG that
// named a commune on the birth date. A commune merged since still counts
// (it was the birthplace); one created after the birth does not. Without a
// valid birth date (already reported), only the code's existence is
// checked.
func checkBirthplace(code string, born time.Time, dated bool) error {
	switch {
	case !communeCOG.MatchString(code):
		return &Error{"birthplace", "is not a 5-character COG commune code"}
	case !cog.KnownCommune(code):
		return &Error{"birthplace", "is not a commune code of INSEE's COG"}
	case dated:
		if _, ok := cog.CommuneAt(code, born); !ok {
			return &Error{"birthplace", "names no commune on the birth date in INSEE's COG"}
		}
	}
	return nil
}

// Hash identifies the person independently of the IdP: sha256 over the
// pivot claims, the birthplace counting only for a birth in France (as
// FranceConnect does, since IdPs disagree on it for births abroad). Fields
// are length-prefixed so no two identities can collide by shifting text
// between claims.
func (p Pivot) Hash() []byte {
	place := ""
	if p.Birthcountry == FranceCOG {
		place = p.Birthplace
	}
	h := sha256.New()
	for _, f := range []string{p.GivenName, p.FamilyName, p.Birthdate, p.Gender, place, p.Birthcountry} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return h.Sum(nil)
}

// Sub computes the pairwise sub for a sector: HMAC-SHA256 keyed by the
// broker's secret over the sector and the identity hash. Keying (rather than
// FranceConnect's concatenation) means a leaked sub list cannot be checked
// against guessed identities without the secret. The "v1" suffix leaves room
// for a future derivation, as FranceConnect does.
func Sub(secret []byte, sector string, identityHash []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%d:%s;", len(sector), sector)
	m.Write(identityHash)
	return hex.EncodeToString(m.Sum(nil)) + "v1"
}
