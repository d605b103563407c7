package config

import (
	"time"
)

// CivilRegistry is the broker's check of each identity against the civil
// registry (RNIPP, "répertoire national d'identification des personnes
// physiques"), between the IdP's answer and the sub. Absent: no check.
type CivilRegistry struct {
	// URL is the registry's check endpoint, which takes a pivot identity
	// in a JSON POST (see docs/identity-checks.md); the mock's is
	// <providers base_url>/rnipp/check.
	URL string `yaml:"url"`
	// Secret is the bearer token the broker presents (at least 32
	// characters).
	Secret string `yaml:"secret"`
	// Timeout bounds one check (default 2s, at most 10s): the citizen
	// waits for it on the way back from the IdP.
	Timeout Duration `yaml:"timeout"`
	// OnOutage is what a login gets when the registry cannot answer (down,
	// slow, broken answer, circuit open): "refuse" (the default: the login
	// is refused on a 503 page and the citizen retries) or "flag" (the
	// login goes on, recorded as "unavailable" in the session and the
	// audit trail).
	OnOutage string `yaml:"on_outage"`
	// CircuitFailures outages in a row (default 5) stop the checks for
	// CircuitCooldown (default 30s), during which every login gets the
	// outage policy at once; then one check probes the registry.
	CircuitFailures int      `yaml:"circuit_failures"`
	CircuitCooldown Duration `yaml:"circuit_cooldown"`
}

// Outage policies of CivilRegistry.OnOutage.
const (
	OutageRefuse = "refuse"
	OutageFlag   = "flag"
)

// Bounds and defaults of the civil registry check.
const (
	DefaultCivilRegistryTimeout = 2 * time.Second
	maxCivilRegistryTimeout     = 10 * time.Second
	// DefaultMockRegistrySlowDelay is how long the mock registry makes
	// its slow test identity wait: beyond any sane broker timeout.
	DefaultMockRegistrySlowDelay = 5 * time.Second
)

// MockCivilRegistry serves the mock civil registry from the providers'
// listener, at BaseURL/rnipp/. It knows every test identity of the mock
// IdPs, a few of them with a registry outcome of their own (see
// docs/identity-checks.md).
type MockCivilRegistry struct {
	// Secret is the bearer token the broker must present (the broker's
	// civil_registry.secret).
	Secret string `yaml:"secret"`
	// SlowDelay is how long the slow test identity's answer takes
	// (default 5s); the mock stops waiting when the broker gives up.
	SlowDelay Duration `yaml:"slow_delay"`
}

// ChecksCivilRegistry reports whether logins through the IdP are checked
// against the civil registry (when the broker has one): yes unless
// civil_registry is false, as for the eIDAS bridge, whose foreign
// identities are not in the French registry.
func (i IdP) ChecksCivilRegistry() bool {
	// A foreign identity from the eIDAS bridge is not in the French
	// registry: never checked, whatever the entry says.
	if i.IsEIDAS() {
		return false
	}
	return i.CivilRegistry == nil || *i.CivilRegistry
}

func (r *CivilRegistry) validate(p *Problems) {
	const entry = "broker.civil_registry"
	if err := checkURL(r.URL, false); err != nil {
		p.add(entry, "url", "%v", err)
	}
	p.secret(entry, "secret", r.Secret, "the bearer token the registry expects")
	switch {
	case r.Timeout == 0:
		r.Timeout = Duration(DefaultCivilRegistryTimeout)
	case r.Timeout < 0 || time.Duration(r.Timeout) > maxCivilRegistryTimeout:
		p.add(entry, "timeout", "%s: expected a duration between 1ms and %s (the citizen waits for the check)", time.Duration(r.Timeout), maxCivilRegistryTimeout)
	}
	switch r.OnOutage {
	case "":
		r.OnOutage = OutageRefuse
	case OutageRefuse, OutageFlag:
	default:
		p.add(entry, "on_outage", "%q: expected refuse (no login while the registry cannot answer) or flag (let the login through, recorded as unavailable)", r.OnOutage)
	}
	if r.CircuitFailures < 0 {
		p.add(entry, "circuit_failures", "%d: expected a positive number of outages in a row (0: 5)", r.CircuitFailures)
	}
	if r.CircuitCooldown < 0 {
		p.add(entry, "circuit_cooldown", "%s: expected a positive duration (0: 30s)", time.Duration(r.CircuitCooldown))
	}
}

func (m *MockCivilRegistry) validate(p *Problems) {
	const entry = "providers.civil_registry"
	p.secret(entry, "secret", m.Secret, "the broker's civil_registry.secret")
	switch {
	case m.SlowDelay == 0:
		m.SlowDelay = Duration(DefaultMockRegistrySlowDelay)
	case m.SlowDelay < 0 || time.Duration(m.SlowDelay) > time.Minute:
		p.add(entry, "slow_delay", "%s: expected a duration between 1ms and 1m", time.Duration(m.SlowDelay))
	}
}
