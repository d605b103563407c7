package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/internal/web"
)

// Every message a template uses is in the catalogue, in both languages.
func TestCatalogue(t *testing.T) {
	if err := web.CheckCatalogue(templates, "templates/*.html", messages); err != nil {
		t.Error(err)
	}
}

// No page and no error message uses the point médian, which screen
// readers spell out ("identifié point e").
func TestNoPointMedian(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	tmpl, _ := filepath.Glob("templates/*.html")
	for _, f := range append(files, tmpl...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "·") {
			t.Errorf("%s uses a point médian", f)
		}
	}
}

func TestClaimText(t *testing.T) {
	angela := identity.Identity{Pivot: identity.Pivot{GivenName: "Angela Claire Louise", FamilyName: "Dubois", Birthdate: "1962-08-01",
		Gender: "female", Birthplace: "75107", Birthcountry: "99100"}}
	abroad := identity.Identity{Pivot: identity.Pivot{Birthdate: "1980-02-29", Gender: "male", Birthcountry: "99109"}}
	foreign := identity.Identity{Pivot: identity.Pivot{Birthdate: "1975-13-40", Gender: "unspecified", Birthplace: "Gent"}, EIDAS: "BE/FR/123"}
	for _, tc := range []struct {
		id          identity.Identity
		claim, lang string
		want        string
	}{
		{angela, "birthdate", "fr", "1er août 1962"},
		{angela, "birthdate", "en", "1 August 1962"},
		{angela, "gender", "fr", "Féminin"},
		{angela, "gender", "en", "Female"},
		{angela, "birthplace", "fr", "Paris 7e Arrondissement (75107)"},
		{angela, "birthcountry", "en", "France"},
		{abroad, "birthplace", "fr", "Hors de France (aucune commune)"},
		{abroad, "birthplace", "en", "Outside France (no commune)"},
		{abroad, "birthcountry", "fr", "Allemagne"},
		{abroad, "birthcountry", "en", "Germany"},
		{abroad, "gender", "fr", "Masculin"},
		// A foreign identity is shown as given: free-text place, a date
		// that is not ours to correct.
		{foreign, "birthplace", "en", "Gent"},
		{foreign, "birthdate", "fr", "1975-13-40"},
		{foreign, "gender", "fr", "unspecified"},
	} {
		if got := claimText(tc.claim, tc.id, tc.lang); got != tc.want {
			t.Errorf("%s %s (%s) = %q, want %q", tc.id.GivenName, tc.claim, tc.lang, got, tc.want)
		}
	}
	if got := countryName("99999", "fr"); got != "" {
		t.Errorf("unknown country code: %q", got)
	}
}

// The lines of the information page are the claims the scopes release,
// in a form's order, and nothing else.
func TestClaimLines(t *testing.T) {
	id := identity.Identity{Pivot: identity.Pivot{GivenName: "A", FamilyName: "B", Birthdate: "1962-08-24", Gender: "female", Birthplace: "75107", Birthcountry: "99100"}, Email: "a@b.example"}
	var got []string
	for _, l := range claimLines([]string{"openid", "email", "given_name", "birthdate"}, id, "en") {
		got = append(got, l.Label+"="+l.Value)
	}
	if want := "Given names=A|Date of birth=24 August 1962|E-mail address=a@b.example"; strings.Join(got, "|") != want {
		t.Errorf("lines %q, want %q", strings.Join(got, "|"), want)
	}
	if l := claimLines([]string{"openid"}, id, "fr"); len(l) != 0 {
		t.Errorf("openid alone releases %v", l)
	}
}
