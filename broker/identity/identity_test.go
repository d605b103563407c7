package identity

import (
	"errors"
	"strings"
	"testing"
)

func valid() Pivot {
	return Pivot{GivenName: "Angela Claire Louise", FamilyName: "Dubois", Birthdate: "1962-08-24", Gender: "female", Birthplace: "75107", Birthcountry: "99100"}
}

func TestValidate(t *testing.T) {
	if err := valid().Validate(); err != nil {
		t.Fatalf("valid identity refused: %v", err)
	}
	abroad := valid()
	abroad.Birthplace, abroad.Birthcountry = "", "99109"
	if err := abroad.Validate(); err != nil {
		t.Fatalf("birth abroad refused: %v", err)
	}
	corsica := valid()
	corsica.Birthplace = "2A004"
	if err := corsica.Validate(); err != nil {
		t.Fatalf("Corsican COG refused: %v", err)
	}
	bad := map[string]func(*Pivot){
		"birthplace":   func(p *Pivot) { p.Birthplace = "7510" },
		"birthcountry": func(p *Pivot) { p.Birthcountry = "12345" },
		"birthdate":    func(p *Pivot) { p.Birthdate = "1962-02-30" },
		"gender":       func(p *Pivot) { p.Gender = "x" },
		"given_name":   func(p *Pivot) { p.GivenName = " " },
		"family_name":  func(p *Pivot) { p.FamilyName = "<script>" },
	}
	for claim, mutate := range bad {
		p := valid()
		mutate(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), claim) {
			t.Errorf("%s: got %v, want an error naming the claim", claim, err)
		}
	}
	abroadWithPlace := abroad
	abroadWithPlace.Birthplace = "75107"
	if abroadWithPlace.Validate() == nil {
		t.Error("a birth abroad with a commune code must be refused")
	}
}

// TestValidateCOG checks birthplaces and birth countries against INSEE's
// code lists (internal/cog), with real codes.
func TestValidateCOG(t *testing.T) {
	for _, tc := range []struct {
		name, place, country, born string
		claim                      string // "" when valid
	}{
		{"current commune", "21231", "99100", "1949-07-08", ""},
		{"Paris arrondissement", "75107", "99100", "1962-08-24", ""},
		{"Marseille arrondissement", "13201", "99100", "1990-12-31", ""},
		{"Lyon arrondissement", "69383", "99100", "1975-05-12", ""},
		{"no such commune", "00000", "99100", "1980-01-01", "birthplace"},
		{"a country code as birthplace", "99999", "99100", "1980-01-01", "birthplace"},
		{"shape only", "12999", "99100", "1980-01-01", "birthplace"},
		// Val-de-Reuil (27701) was created in 1981 under a new code.
		{"commune created after the birth", "27701", "99100", "1950-03-01", "birthplace"},
		{"the same commune after its creation", "27701", "99100", "1990-03-01", ""},
		// Annecy-le-Vieux (74011) merged into Annecy in 2017, Tourlaville
		// (50602) into Cherbourg-en-Cotentin in 2016: communes déléguées now.
		{"commune merged since the birth", "74011", "99100", "1960-05-04", ""},
		{"commune merged since the birth, Manche", "50602", "99100", "1971-03-21", ""},
		// Voisinlieu (60696) was absorbed by Beauvais in 1943.
		{"commune absorbed before the birth", "60696", "99100", "1950-01-01", "birthplace"},
		{"Corsica before 1976, today's code", "2A004", "99100", "1900-01-01", ""},
		{"Corsica before 1976, the code of then", "20004", "99100", "1960-01-01", ""},
		{"Corsica's old code after 1976", "20004", "99100", "1980-01-01", "birthplace"},
		{"Corsica's old code, bad date", "20004", "99100", "1980-02-30", "birthdate"},
		{"Germany", "", "99109", "1970-06-21", ""},
		{"Morocco", "", "99350", "1992-01-17", ""},
		{"a former country", "", "99141", "1970-01-01", ""},
		{"unknown country 99999", "", "99999", "1970-01-01", "birthcountry"},
		{"unknown country 99000", "", "99000", "1970-01-01", "birthcountry"},
		{"not a country code", "", "12345", "1970-01-01", "birthcountry"},
		{"born abroad with a birthplace", "75107", "99109", "1970-06-21", "birthplace"},
		{"born in France without a birthplace", "", "99100", "1970-06-21", "birthplace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := valid()
			p.Birthplace, p.Birthcountry, p.Birthdate = tc.place, tc.country, tc.born
			err := p.Validate()
			if tc.claim == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Claim != tc.claim {
				t.Fatalf("got %v, want an error on %s", err, tc.claim)
			}
			// The reason is safe to log and show: it never holds the value.
			for _, v := range []string{tc.place, tc.country} {
				if v != "" && strings.Contains(err.Error(), v) {
					t.Errorf("error %q holds the value %q", err, v)
				}
			}
		})
	}
}

// BenchmarkValidate is the check every login makes, the COG tables already
// decoded.
func BenchmarkValidate(b *testing.B) {
	p := valid()
	p.Birthplace = "74011"
	if err := p.Validate(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSub(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	h := valid().Hash()
	a := Sub(secret, "sector-a", h)
	if a != Sub(secret, "sector-a", valid().Hash()) {
		t.Fatal("sub is not stable")
	}
	if a == Sub(secret, "sector-b", h) {
		t.Fatal("two sectors share a sub")
	}
	if a == Sub([]byte("another-secret-another-secret-xx"), "sector-a", h) {
		t.Fatal("sub does not depend on the secret")
	}
	other := valid()
	other.Birthdate = "1962-08-25"
	if a == Sub(secret, "sector-a", other.Hash()) {
		t.Fatal("two people share a sub")
	}
	if !strings.HasSuffix(a, "v1") || len(a) != 66 {
		t.Fatalf("unexpected sub form %q", a)
	}
	// Birthplace is ignored abroad, so IdPs that disagree on it still agree.
	x, y := valid(), valid()
	x.Birthcountry, y.Birthcountry = "99109", "99109"
	x.Birthplace, y.Birthplace = "", "99999"
	if string(x.Hash()) != string(y.Hash()) {
		t.Fatal("birthplace counted for a birth abroad")
	}
	// Length prefixes stop shifting text between claims from colliding.
	s1, s2 := valid(), valid()
	s1.GivenName, s1.FamilyName = "Jean", "Pierre Martin"
	s2.GivenName, s2.FamilyName = "Jean Pierre", "Martin"
	if string(s1.Hash()) == string(s2.Hash()) {
		t.Fatal("claim boundary collision")
	}
}
