package config

import (
	"strings"
	"testing"
)

func TestPagesValidation(t *testing.T) {
	c, err := Parse("x.yaml", []byte(minimal+`  pages:
    operator: Agence
    contact: https://agence.example/contact
    accessibility: full
    accessibility_audit: "audit du 2 mars 2026 : 100 %"
`))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Broker.Pages; p.Operator != "Agence" || p.AccessibilityStatus() != AccessibilityFull {
		t.Errorf("pages %+v", p)
	}
	if (*Pages)(nil).AccessibilityStatus() != AccessibilityNone {
		t.Error("no pages section: not \"none\"")
	}
	for _, tc := range []struct{ yaml, want string }{
		{"  pages: {accessibility: yes}", `broker.pages: accessibility: "yes": expected none, partial or full`},
		{"  pages: {accessibility: full}", "broker.pages: accessibility: full compliance needs the audit"},
		{"  pages: {contact: 01 23 45 67 89}", `broker.pages: contact: "01 23 45 67 89": expected an e-mail address or an https:// URL`},
		{"  pages: {operateur: X}", "operateur"},
	} {
		_, err := Parse("x.yaml", []byte(minimal+tc.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %q", tc.yaml, err, tc.want)
		}
	}
}

// dev.yaml gives every mock IdP its own logo, all of them real assets.
func TestDevConfigLogos(t *testing.T) {
	c, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, idp := range c.Broker.IdentityProviders {
		if idp.LogoAsset() != "idp/"+idp.ID+".svg" {
			t.Errorf("%s: logo %q", idp.ID, idp.Logo)
		}
	}
}
