// Package eidas is the broker's eIDAS bridge: the maps between OIDC and
// eIDAS (levels, scopes and attributes, identities), and the upstream of
// kind eidas through which a citizen of another member state logs in at
// a French service. The HTTP steps that carry light messages between the
// browser, the node and the flow are the broker's (broker/eidas*.go).
package eidas

import (
	"slices"
	"strings"

	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/internal/eidas/light"
)

// LoA maps a Sésame level to the eIDAS level of assurance asked for:
// eidas1 → low, eidas2 → substantial, eidas3 → high.
func LoA(acr string) (string, bool) {
	switch acr {
	case "eidas1":
		return light.LoALow, true
	case "eidas2":
		return light.LoASubstantial, true
	case "eidas3":
		return light.LoAHigh, true
	}
	return "", false
}

// ACR maps an eIDAS level of assurance to Sésame's level, one for one:
// low → eidas1, substantial → eidas2, high → eidas3. FranceConnect maps
// low to eidas2, which raises a level an identity never had; Sésame
// never does, so a low identity cannot serve a "+" service.
func ACR(loa string) (string, bool) {
	switch loa {
	case light.LoALow:
		return "eidas1", true
	case light.LoASubstantial:
		return "eidas2", true
	case light.LoAHigh:
		return "eidas3", true
	}
	return "", false
}

// scopeAttributes are the natural-person attributes each scope asks for.
// openid always asks for the PersonIdentifier, on which the sub rests.
var scopeAttributes = map[string][]string{
	"openid":             {light.AttrPersonIdentifier},
	"profile":            {light.AttrCurrentGivenName, light.AttrCurrentFamilyName, light.AttrDateOfBirth, light.AttrGender},
	"identite_pivot":     {light.AttrCurrentGivenName, light.AttrCurrentFamilyName, light.AttrDateOfBirth, light.AttrGender, light.AttrPlaceOfBirth},
	"given_name":         {light.AttrCurrentGivenName},
	"family_name":        {light.AttrCurrentFamilyName},
	"preferred_username": {light.AttrCurrentFamilyName},
	"birthdate":          {light.AttrDateOfBirth},
	"gender":             {light.AttrGender},
	"birth":              {light.AttrPlaceOfBirth, light.AttrDateOfBirth},
	"birthplace":         {light.AttrPlaceOfBirth},
}

// Mandatory attributes of the eIDAS minimum data set for a natural
// person: always requested, so that the login yields an identity the
// broker can check whatever scopes the SP asked for.
var minimumDataSet = []string{light.AttrPersonIdentifier, light.AttrCurrentGivenName, light.AttrCurrentFamilyName, light.AttrDateOfBirth}

// RequestedAttributes maps an SP's scopes to the attributes a
// LightRequest asks for: the minimum data set, plus what the scopes add.
func RequestedAttributes(scopes []string) []light.Attribute {
	defs := slices.Clone(minimumDataSet)
	for _, s := range scopes {
		for _, d := range scopeAttributes[s] {
			if !slices.Contains(defs, d) {
				defs = append(defs, d)
			}
		}
	}
	out := make([]light.Attribute, len(defs))
	for i, d := range defs {
		out[i] = light.Attribute{Definition: d}
	}
	return out
}

// ScopesFor maps a foreign SP's requested attributes to the scopes a
// login at the broker asks for (openid always).
func ScopesFor(attrs []light.Attribute) []string {
	scopes := []string{"openid"}
	add := func(s string) {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	for _, a := range attrs {
		switch a.Definition {
		case light.AttrCurrentGivenName, light.AttrCurrentFamilyName, light.AttrDateOfBirth, light.AttrGender:
			add("profile")
		case light.AttrPlaceOfBirth:
			add("birth")
		case light.AttrBirthName:
			add("family_name")
		}
	}
	return scopes
}

// Identity maps a LightResponse's attributes to a foreign identity:
// PersonIdentifier → the basis of the sub, CurrentGivenName → given_name
// (values joined by a space), CurrentFamilyName → family_name and
// preferred_username (as FranceConnect does), DateOfBirth → birthdate,
// PlaceOfBirth → birthplace (free text), Gender → gender (lower case;
// "Unspecified" is no gender).
func Identity(r *light.Response) identity.Identity {
	var id identity.Identity
	id.EIDAS = r.Value(light.AttrPersonIdentifier)
	id.GivenName = strings.Join(r.Values(light.AttrCurrentGivenName), " ")
	id.FamilyName = strings.Join(r.Values(light.AttrCurrentFamilyName), " ")
	id.PreferredUsername = id.FamilyName
	id.Birthdate = r.Value(light.AttrDateOfBirth)
	id.Birthplace = r.Value(light.AttrPlaceOfBirth)
	switch strings.ToLower(r.Value(light.AttrGender)) {
	case "male":
		id.Gender = "male"
	case "female":
		id.Gender = "female"
	}
	return id
}

// Attributes maps a French citizen's identity to the attributes a
// foreign SP asked for, for the proxy direction: sub → PersonIdentifier
// (already pairwise for the SP's country), given_name → CurrentGivenName,
// preferred_username or else family_name → CurrentFamilyName, birthdate
// → DateOfBirth (a presumed date's "-00" read as "-01"), the COG
// birthplace (or birth country) with its label → PlaceOfBirth, gender →
// Gender ("Male", "Female"). place labels a COG code for the date of
// birth (it may return "" when it knows none).
func Attributes(asked []light.Attribute, sub string, id identity.Identity, place func(code, date string) string) []light.Attribute {
	var out []light.Attribute
	for _, a := range asked {
		var v string
		switch a.Definition {
		case light.AttrPersonIdentifier:
			v = sub
		case light.AttrCurrentGivenName:
			v = id.GivenName
		case light.AttrCurrentFamilyName:
			v = id.PreferredUsername
			if v == "" {
				v = id.FamilyName
			}
		case light.AttrBirthName:
			v = id.FamilyName
		case light.AttrDateOfBirth:
			v = presumedDate(id.Birthdate)
		case light.AttrGender:
			switch id.Gender {
			case "male":
				v = "Male"
			case "female":
				v = "Female"
			}
		case light.AttrPlaceOfBirth:
			code := id.Birthplace
			if id.Birthcountry != identity.FranceCOG {
				code = id.Birthcountry
			}
			v = code
			if place != nil && code != "" {
				if label := place(code, id.Birthdate); label != "" {
					v = code + " " + label
				}
			}
		}
		if v != "" {
			out = append(out, light.Attribute{Definition: a.Definition, Values: []string{v}})
		}
	}
	if !slices.ContainsFunc(out, func(a light.Attribute) bool { return a.Definition == light.AttrPersonIdentifier }) {
		out = append([]light.Attribute{{Definition: light.AttrPersonIdentifier, Values: []string{sub}}}, out...)
	}
	return out
}

// presumedDate turns a presumed date (an unknown month or day written
// "00", as French civil status does) into a valid xsd:date.
func presumedDate(d string) string {
	if len(d) != 10 {
		return d
	}
	b := []byte(d)
	if b[5] == '0' && b[6] == '0' {
		b[6] = '1'
	}
	if b[8] == '0' && b[9] == '0' {
		b[9] = '1'
	}
	return string(b)
}
