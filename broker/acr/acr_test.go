package acr

import "testing"

func TestChoose(t *testing.T) {
	std := []string{Low}
	plus := []string{Substantial, High}
	cases := []struct {
		in       string
		accepted []string
		def      string
		want     string
		outside  bool
	}{
		{"", std, Low, Low, false},
		{"eidas1", std, Low, Low, false},
		{"eidas9 foo", std, Low, Low, false},
		{"eidas3 eidas2", plus, High, Substantial, false},
		{"http://eidas.europa.eu/LoA/high", plus, Substantial, High, false},
		{"eidas1", plus, High, Low, true},
		{"eidas2 eidas1", plus, High, Low, true},
		{"eidas2", std, Low, Substantial, true},
	}
	for _, c := range cases {
		got, outside := Choose(c.in, c.accepted, c.def)
		if got != c.want || outside != c.outside {
			t.Errorf("Choose(%q) = %q,%v; want %q,%v", c.in, got, outside, c.want, c.outside)
		}
	}
}

func TestOrder(t *testing.T) {
	if !AtLeast(High, Substantial) || !AtLeast(Low, Low) || AtLeast(Low, Substantial) {
		t.Fatal("AtLeast order wrong")
	}
	if AtLeast("bogus", Low) {
		t.Fatal("unknown level must never satisfy a requirement")
	}
	if Max(Low, High) != High || Max(Substantial, Low) != Substantial {
		t.Fatal("Max wrong")
	}
	if Rank("http://eidas.europa.eu/LoA/substantial") != 2 {
		t.Fatal("LoA URI not a synonym")
	}
}
