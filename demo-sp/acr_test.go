package demosp

import "testing"

func TestACRSatisfies(t *testing.T) {
	cases := []struct {
		returned, asked string
		want            bool
	}{
		{"eidas1", "eidas1", true},
		{"eidas2", "eidas1", true},
		{"eidas3", "eidas2", true},
		{"eidas3", "eidas3", true},
		{"eidas1", "eidas2", false}, // the integrator mistake: accepting less
		{"eidas2", "eidas3", false},
		{"", "eidas1", false},       // no acr at all
		{"EIDAS3", "eidas1", false}, // values are case-sensitive
		{"eidas4", "eidas1", false}, // unknown is never enough
		{"eidas1", "bogus", false},
	}
	for _, c := range cases {
		if got := acrSatisfies(c.returned, c.asked); got != c.want {
			t.Errorf("acrSatisfies(%q, %q) = %v, want %v", c.returned, c.asked, got, c.want)
		}
	}
}

func TestEqualRejectsEmpty(t *testing.T) {
	if equal("", "") {
		t.Error("an empty state matched an empty stored state")
	}
	if !equal("abc", "abc") || equal("abc", "abd") || equal("ab", "abc") {
		t.Error("equal compares wrongly")
	}
}

func TestRandomStringLength(t *testing.T) {
	// FranceConnect refuses nonces under 22 characters.
	if n := len(randomString(32)); n < 22 {
		t.Errorf("nonce of %d characters", n)
	}
	if randomString(32) == randomString(32) {
		t.Error("two random strings are equal")
	}
}
