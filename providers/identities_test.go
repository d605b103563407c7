package providers

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/internal/cog"
)

func TestBuiltinIdentities(t *testing.T) {
	ids, err := LoadIdentities(strings.NewReader(builtinIdentities))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 22 {
		t.Errorf("%d identities, want at least 22", len(ids))
	}
	var invalidCOG, abroad, leap, born1900, usage, compound, particle int
	for _, id := range ids {
		if strings.Contains(strings.ToLower(id.Note), "invalide") && !cogLooksValid(id) {
			invalidCOG++
		}
		if id.Birthplace == "" && id.Birthcountry != "99100" {
			abroad++
		}
		if strings.HasSuffix(id.Birthdate, "-02-29") {
			leap++
		}
		if id.Birthdate == "1900-01-01" && id.Gender == "female" {
			born1900++
		}
		if id.PreferredUsername != "" {
			usage++
		}
		if strings.ContainsAny(id.GivenName, " -") && strings.Contains(id.FamilyName, "-") {
			compound++
		}
		if strings.HasPrefix(id.FamilyName, "de ") {
			particle++
		}
	}
	for what, n := range map[string]int{
		"invalid COG noted as such": invalidCOG, "born abroad": abroad, "born on 29 February": leap,
		"woman born 1900-01-01": born1900, "usage name": usage, "compound names": compound, "particle": particle,
	} {
		if n == 0 {
			t.Errorf("no identity %s", what)
		}
	}
}

// TestBuiltinIdentitiesValidate runs the broker's own check on every
// built-in identity: the ones noted "invalide" are refused on a COG claim,
// all others accepted, some of them born in a commune that has merged into
// another since (its code no longer a commune's today).
func TestBuiltinIdentitiesValidate(t *testing.T) {
	ids, err := LoadIdentities(strings.NewReader(builtinIdentities))
	if err != nil {
		t.Fatal(err)
	}
	merged := 0
	for _, id := range ids {
		p := identity.Pivot{GivenName: id.GivenName, FamilyName: id.FamilyName, Birthdate: id.Birthdate,
			Gender: id.Gender, Birthplace: id.Birthplace, Birthcountry: id.Birthcountry}
		err := p.Validate()
		var e *identity.Error
		switch invalid := strings.Contains(strings.ToLower(id.Note), "invalide"); {
		case invalid && (!errors.As(err, &e) || (e.Claim != "birthplace" && e.Claim != "birthcountry")):
			t.Errorf("%s is noted invalid but Validate gave %v", id.ID, err)
		case !invalid && err != nil:
			t.Errorf("%s: %v", id.ID, err)
		}
		born, _ := time.Parse(time.DateOnly, id.Birthdate)
		then, okThen := cog.CommuneAt(id.Birthplace, born)
		now, okNow := cog.CommuneAt(id.Birthplace, time.Now())
		if okThen && then.Kind == cog.KindCommune && (!okNow || now.Kind != cog.KindCommune) {
			merged++
		}
	}
	if merged < 2 {
		t.Errorf("%d identities born in a commune merged since, want at least 2", merged)
	}
}

// cogLooksValid is the shape check the broker will make: a 5-character
// commune code (digits, or 2A/2B for Corsica) when born in France, and a
// 99xxx country code.
func cogLooksValid(id Identity) bool {
	country := len(id.Birthcountry) == 5 && strings.HasPrefix(id.Birthcountry, "99") && id.Birthcountry != "12345"
	if id.Birthcountry == "99100" {
		p := id.Birthplace
		return country && len(p) == 5 && strings.Trim(p[2:], "0123456789") == "" &&
			(strings.Trim(p[:2], "0123456789") == "" || p[:2] == "2A" || p[:2] == "2B")
	}
	return country && id.Birthplace == ""
}

const header = "id,given_name,family_name,birthdate,gender,birthplace,birthcountry,email,preferred_username,note\n"

func TestLoadIdentitiesErrors(t *testing.T) {
	for _, tc := range []struct{ name, csv, want string }{
		{"empty", "", "empty file"},
		{"header only", header, "no identity"},
		{"wrong header", strings.Replace(header, "gender", "sex", 1), "column 5"},
		{"missing column", header + "a,B,C,2000-01-01,male,75107,99100,,\n", "line 2"},
		{"bad date", header + "a,B,C,2001-02-29,male,75107,99100,,,\n", "line 2, column birthdate"},
		{"short date", header + "a,B,C,2001-2-3,male,75107,99100,,,\n", "column birthdate"},
		{"bad gender", header + "a,B,C,2000-01-01,M,75107,99100,,,\n", "column gender"},
		{"no given name", header + "a,,C,2000-01-01,male,75107,99100,,,\n", "column given_name"},
		{"bad id", header + "A B,B,C,2000-01-01,male,75107,99100,,,\n", "column id"},
		{"duplicate id", header + "a,B,C,2000-01-01,male,75107,99100,,,\na,D,E,2000-01-01,male,75107,99100,,,\n", "line 3, column id"},
		{"space around", header + "a,B ,C,2000-01-01,male,75107,99100,,,\n", "column given_name"},
		{"bad email", header + "a,B,C,2000-01-01,male,75107,99100,nope,,\n", "column email"},
		{"no country", header + "a,B,C,2000-01-01,male,,,,,\n", "column birthcountry"},
		{"bad quote", header + "a,\"B,C,2000-01-01,male,75107,99100,,,\n", "line 2"},
		{"control char", header + "a,B\x01,C,2000-01-01,male,75107,99100,,,\n", "control character"},
	} {
		_, err := LoadIdentities(strings.NewReader(tc.csv))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	ids, err := LoadIdentities(strings.NewReader("\ufeff" + header + "a,Zoé,de La Tour,2000-02-29,female,,99109,,,\n"))
	if err != nil || len(ids) != 1 || ids[0].FamilyName != "de La Tour" {
		t.Errorf("valid file with BOM: %v %v", ids, err)
	}
}

func FuzzLoadIdentities(f *testing.F) {
	f.Add(builtinIdentities)
	f.Add(header)
	f.Add(header + "a,B,C,2000-02-29,female,2A004,99100,a@b.fr,,\n")
	f.Add(header + "a,\"B\"\"x\",C,1900-01-01,male,,99350,,,\"multi\nline\"\n")
	f.Add("id\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		ids, err := LoadIdentities(strings.NewReader(in))
		if err != nil {
			return
		}
		// Whatever is accepted must be safe to serve as claims.
		seen := map[string]bool{}
		for _, id := range ids {
			if _, perr := time.Parse(time.DateOnly, id.Birthdate); perr != nil {
				t.Errorf("accepted birthdate %q", id.Birthdate)
			}
			if id.Gender != "male" && id.Gender != "female" {
				t.Errorf("accepted gender %q", id.Gender)
			}
			if id.GivenName == "" || id.FamilyName == "" || seen[id.ID] {
				t.Errorf("accepted %+v", id)
			}
			seen[id.ID] = true
		}
	})
}
