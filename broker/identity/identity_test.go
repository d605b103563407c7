package identity

import (
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
