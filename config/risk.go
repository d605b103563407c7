package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Risk is the suspicious-context rule (broker.risk): simple signals that
// make the broker offer no login below eIDAS substantial (eidas2) for a
// request. Absent, the rule is off. See docs/identity-checks.md.
type Risk struct {
	// DenyNetworks are CIDR ranges (or single addresses) whose clients
	// are suspicious.
	DenyNetworks []string `yaml:"deny_networks"`
	// FailedTrips makes an address suspicious once that many trips to
	// IdPs failed from it in the window.
	FailedTrips *RiskFailedTrips `yaml:"failed_trips"`
	// WAFHeader makes a request suspicious when the web application
	// firewall in front flags it in a header; it needs trusted_proxies.
	WAFHeader *RiskWAFHeader `yaml:"waf_header"`
}

// RiskFailedTrips is the failed-trips signal of the risk rule.
type RiskFailedTrips struct {
	// Max failed trips in the window make the address suspicious.
	Max int `yaml:"max"`
	// Window is the fixed window of the count (default 15m); it starts
	// at the first failure counted.
	Window Duration `yaml:"window"`
}

// DefaultFailedTripsWindow is the window of failed_trips when unset.
const DefaultFailedTripsWindow = 15 * time.Minute

// RiskWAFHeader is the WAF signal of the risk rule.
type RiskWAFHeader struct {
	// Name is the header the WAF sets (e.g. X-Suspicious).
	Name string `yaml:"name"`
	// Values flag the request when the header holds one of them
	// (case-insensitive, comma-separated values each compared); empty:
	// any non-empty value does.
	Values []string `yaml:"values"`
}

// headerToken is an HTTP field name (RFC 9110 token).
var headerToken = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")

// validate checks the risk section of b, when present.
func (r *Risk) validate(b *Broker, p *Problems) {
	if r == nil {
		return
	}
	const entry = "broker.risk"
	if len(r.DenyNetworks) == 0 && r.FailedTrips == nil && r.WAFHeader == nil {
		p.add(entry, "(section)", "sets no signal: set deny_networks, failed_trips or waf_header, or remove the section to turn the rule off")
	}
	for i, c := range r.DenyNetworks {
		if !validNetwork(c) {
			p.add(entry, fmt.Sprintf("deny_networks[%d]", i), "%q: expected a CIDR range such as 192.0.2.0/24 or 2001:db8::/32, or one address", c)
		}
	}
	if f := r.FailedTrips; f != nil {
		if f.Max < 1 {
			p.add(entry, "failed_trips.max", "must be at least 1 (the failed trips from one address that make it suspicious)")
		}
		if f.Window < 0 {
			p.add(entry, "failed_trips.window", "must be positive")
		}
		if f.Window == 0 {
			f.Window = Duration(DefaultFailedTripsWindow)
		}
	}
	if w := r.WAFHeader; w != nil {
		w.Name = strings.TrimSpace(w.Name)
		if !headerToken.MatchString(w.Name) {
			p.add(entry, "waf_header.name", "%q: expected an HTTP header name such as X-Suspicious", w.Name)
		}
		for i, v := range w.Values {
			if strings.TrimSpace(v) == "" || strings.Contains(v, ",") {
				p.add(entry, fmt.Sprintf("waf_header.values[%d]", i), "%q: expected a non-empty value without a comma", v)
			}
		}
		if len(b.TrustedProxies) == 0 {
			p.add(entry, "waf_header", "needs broker.trusted_proxies: the header is believed only on requests from the proxy that sets it")
		}
	}
}

// validNetwork is what the risk package's ParseNetwork takes: a CIDR
// range or one address.
func validNetwork(s string) bool {
	s = strings.TrimSpace(s)
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}
