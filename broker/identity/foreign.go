package identity

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// A foreign identity comes from another member state's eID through the
// eIDAS network. Its pivot is not the French one: its place of birth is
// free text, its gender may be unspecified, it has no COG codes, and the
// civil registry does not know it. What identifies the person is the
// eIDAS PersonIdentifier, "XX/FR/…": the citizen's country, the
// destination country, then the country's own identifier.

// personIdentifier is an eIDAS unique identifier toward France.
var personIdentifier = regexp.MustCompile(`^[A-Z]{2}/FR/[\x21-\x7e]{1,256}$`)

// Foreign reports whether the identity came through the eIDAS bridge.
func (i Identity) Foreign() bool { return i.EIDAS != "" }

// Country is a foreign identity's country, from its PersonIdentifier.
func (i Identity) Country() string {
	if !i.Foreign() || len(i.EIDAS) < 2 {
		return ""
	}
	return i.EIDAS[:2]
}

// Validate checks the identity: the pivot's rules for a French IdP's
// identity, the eIDAS ones for a foreign identity.
func (i Identity) Validate() error {
	if !i.Foreign() {
		return i.Pivot.Validate()
	}
	var errs []error
	if !personIdentifier.MatchString(i.EIDAS) {
		errs = append(errs, &Error{"PersonIdentifier", "is not an eIDAS identifier toward France (XX/FR/…)"})
	}
	for _, f := range []struct{ claim, v string }{{"given_name", i.GivenName}, {"family_name", i.FamilyName}} {
		switch {
		case strings.TrimSpace(f.v) == "":
			errs = append(errs, &Error{f.claim, "is missing"})
		case !utf8.ValidString(f.v) || len(f.v) > maxNameLen || strings.ContainsAny(f.v, "<>\"\x00\r\n\t"):
			errs = append(errs, &Error{f.claim, "has invalid characters or length"})
		}
	}
	if d, err := time.Parse(time.DateOnly, i.Birthdate); err != nil || d.Format(time.DateOnly) != i.Birthdate || d.After(time.Now()) {
		errs = append(errs, &Error{"birthdate", "is not a past date in YYYY-MM-DD form"})
	}
	if i.Gender != "" && i.Gender != "male" && i.Gender != "female" {
		errs = append(errs, &Error{"gender", "must be male, female or absent"})
	}
	if !utf8.ValidString(i.Birthplace) || len(i.Birthplace) > maxNameLen || strings.ContainsAny(i.Birthplace, "<>\"\x00\r\n\t") {
		errs = append(errs, &Error{"birthplace", "has invalid characters or length"})
	}
	if i.Birthcountry != "" {
		errs = append(errs, &Error{"birthcountry", "is not given by the eIDAS network"})
	}
	return errors.Join(errs...)
}

// Hash identifies the person independently of the IdP. A foreign
// identity is identified by its PersonIdentifier alone, as FranceConnect
// does (identityHash = sha256(sub)), in a domain of its own so that it
// can never equal a French pivot's hash.
func (i Identity) Hash() []byte {
	if !i.Foreign() {
		return i.Pivot.Hash()
	}
	h := sha256.New()
	fmt.Fprintf(h, "eidas:%d:%s;", len(i.EIDAS), i.EIDAS)
	return h.Sum(nil)
}
