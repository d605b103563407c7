package config

import (
	"fmt"
	"strings"

	"github.com/sesame-id/sesame/internal/web"
)

// Pages are the operator's own words on the broker's legal pages
// (broker.pages; see docs/pages.md): who publishes and hosts the service,
// whom to write to, and how far its pages comply with the RGAA. Every
// field is optional and plain text: an unset one is shown as "not given
// by the operator", never made up.
type Pages struct {
	// Operator is who runs this Sésame, the "éditeur" of the legal
	// notices and the controller of the personal data.
	Operator string `yaml:"operator"`
	// Address is the operator's postal address.
	Address string `yaml:"address"`
	// PublicationDirector is the "directeur de la publication".
	PublicationDirector string `yaml:"publication_director"`
	// Host is who hosts the service ("hébergeur"): name and address.
	Host string `yaml:"host"`
	// Contact is where people write, for help, accessibility and their
	// data: an e-mail address or an https:// URL.
	Contact string `yaml:"contact"`
	// DPO is the data protection officer's contact.
	DPO string `yaml:"dpo"`
	// Accessibility is the RGAA compliance status the footer and the
	// accessibility statement show: "none" (non conforme, the default:
	// no audit was made), "partial" or "full".
	Accessibility string `yaml:"accessibility"`
	// AccessibilityAudit says which audit the status comes from (date,
	// auditor, rate of criteria met).
	AccessibilityAudit string `yaml:"accessibility_audit"`
}

// The RGAA compliance statuses of Pages.Accessibility.
const (
	AccessibilityNone    = "none"
	AccessibilityPartial = "partial"
	AccessibilityFull    = "full"
)

// AccessibilityStatus is the compliance status, "none" when unset.
func (p *Pages) AccessibilityStatus() string {
	if p == nil || p.Accessibility == "" {
		return AccessibilityNone
	}
	return p.Accessibility
}

// validate checks the pages section of b, when present.
func (p *Pages) validate(problems *Problems) {
	if p == nil {
		return
	}
	switch p.Accessibility {
	case "", AccessibilityNone, AccessibilityPartial:
	case AccessibilityFull:
		if p.AccessibilityAudit == "" {
			problems.add("broker.pages", "accessibility", "full compliance needs the audit that shows it: set accessibility_audit")
		}
	default:
		problems.add("broker.pages", "accessibility", "%q: expected none, partial or full", p.Accessibility)
	}
	if c := p.Contact; c != "" && !strings.Contains(c, "@") && !strings.HasPrefix(c, "https://") {
		problems.add("broker.pages", "contact", "%q: expected an e-mail address or an https:// URL", c)
	}
}

// LogoAsset is the static asset of the IdP's logo (relative to the
// broker's /static/), "" for the generic one. Logo may name it either way:
// "idp/impots.svg" or "/static/idp/impots.svg".
func (i IdP) LogoAsset() string {
	return strings.TrimPrefix(strings.TrimPrefix(i.Logo, "/static/"), "/")
}

// validateLogos checks that every IdP's logo is one of the broker's own
// static files: the chooser's CSP loads no image from elsewhere.
func (b *Broker) validateLogos(problems *Problems) {
	for n, idp := range b.IdentityProviders {
		if idp.Logo == "" {
			continue
		}
		a := idp.LogoAsset()
		if strings.Contains(a, "..") || strings.HasPrefix(idp.Logo, "//") || strings.Contains(idp.Logo, "://") || !web.HasAsset(a) ||
			!(strings.HasSuffix(a, ".svg") || strings.HasSuffix(a, ".png")) {
			problems.add(fmt.Sprintf("broker.identity_providers[%d] (%s)", n, idp.ID), "logo",
				"%q: expected an SVG or PNG among the broker's static files, such as idp/%s.svg (see docs/pages.md)", idp.Logo, "impots")
		}
	}
}
