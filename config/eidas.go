package config

import (
	"fmt"
	"regexp"
	"strings"
)

// IdPKindEIDAS is the kind of the eIDAS bridge's IdP entry: a foreign
// citizen logs in with their own country's eID through the eIDAS
// network. Such an entry has no issuer or client credentials; the
// broker's eidas section says how to reach the node.
const IdPKindEIDAS = "eidas"

// IsEIDAS reports whether the IdP entry is the eIDAS bridge.
func (i IdP) IsEIDAS() bool { return i.Kind == IdPKindEIDAS }

// EIDAS configures the broker's eIDAS bridge, in both directions, over
// the eIDAS-Node's light protocol (LightRequest and LightResponse in a
// store shared with the node, LightTokens carried by the browser).
type EIDAS struct {
	// NodeURL is the FR eIDAS-Node's base URL. The bridge POSTs its
	// tokens to NodeURL + "/SpecificConnectorRequest" (foreign citizen
	// toward a French SP) and NodeURL + "/SpecificProxyServiceResponse"
	// (French citizen toward a foreign SP).
	NodeURL string `yaml:"node_url"`
	// TokenMaxAge bounds a LightToken's age when it reaches the bridge
	// (default 2m); MessageTTL how long a light message waits in the
	// store for its token (default 5m).
	TokenMaxAge Duration `yaml:"token_max_age"`
	MessageTTL  Duration `yaml:"message_ttl"`
	// Connector is the foreign citizen → French SP direction (the
	// "Specific Connector"), whose IdP entries are of kind eidas.
	Connector EIDASDirection `yaml:"connector"`
	// Countries are the citizens' countries offered on the country
	// page, by ISO 3166-1 alpha-2 code (CB is the test "Mock Node").
	Countries []EIDASCountry `yaml:"countries"`
	// Proxy, when set, is the French citizen → foreign SP direction
	// (the "Specific Proxy Service"): the node POSTs LightRequests to
	// <platform issuer>/eidas/proxy/request of the platform named here.
	Proxy *EIDASProxy `yaml:"proxy"`
}

// EIDASDirection is one direction's pair of LightToken settings: the
// token the bridge makes for its request and the one it checks on the
// answer. Each secret is at least 32 characters and differs from the
// others, as the eIDAS-Node requires.
type EIDASDirection struct {
	RequestIssuer  string `yaml:"request_issuer"`
	RequestSecret  string `yaml:"request_secret"`
	ResponseIssuer string `yaml:"response_issuer"`
	ResponseSecret string `yaml:"response_secret"`
}

// EIDASCountry is a country offered on the bridge's country page.
type EIDASCountry struct {
	Code string `yaml:"code"`
	Name string `yaml:"name"`
}

// EIDASProxy is the Specific Proxy Service: a foreign SP's request,
// received from the node, becomes a login at the broker, and its result a
// LightResponse. Its tokens are the other way round from the connector's:
// the node's request is checked, the bridge's response is made.
type EIDASProxy struct {
	EIDASDirection `yaml:",inline"`
	// Platform receives the node's requests (default: the first);
	// Platforms maps each level of assurance to the platform that serves
	// it (default: low to a standard platform, substantial and high to a
	// "+" one).
	Platform string `yaml:"platform"`
	// Scopes the proxy's logins may ask for (default: openid, profile,
	// birth).
	Scopes []string `yaml:"scopes"`
}

var eidasCountryCode = regexp.MustCompile(`^[A-Z]{2}$`)

// validateEIDAS checks the bridge's section and the IdP entries of kind
// eidas, which need it.
func (p *Problems) validateEIDAS(b *Broker) {
	hasKind := false
	for _, idp := range b.IdentityProviders {
		if idp.IsEIDAS() {
			hasKind = true
		}
	}
	e := b.EIDAS
	if e == nil {
		if hasKind {
			p.add("broker", "eidas", "an identity provider of kind eidas needs the broker's eidas section")
		}
		return
	}
	const entry = "broker.eidas"
	if err := checkURL(e.NodeURL, true); err != nil {
		p.add(entry, "node_url", "%v", err)
	}
	secrets := map[string]string{}
	dir := func(name string, d EIDASDirection) {
		for _, f := range []struct{ field, issuer, secret string }{
			{"request", d.RequestIssuer, d.RequestSecret},
			{"response", d.ResponseIssuer, d.ResponseSecret},
		} {
			if strings.TrimSpace(f.issuer) == "" {
				p.missing(entry, name+"."+f.field+"_issuer", "")
			} else if strings.Contains(f.issuer, "|") {
				p.add(entry, name+"."+f.field+"_issuer", "%q: may not contain |", f.issuer)
			}
			switch {
			case f.secret == "":
				p.add(entry, name+"."+f.field+"_secret", "is missing")
			case len(f.secret) < 32:
				p.add(entry, name+"."+f.field+"_secret", "must be at least 32 characters")
			case secrets[f.secret] != "":
				p.add(entry, name+"."+f.field+"_secret", "is the same as %s: each direction has its own secret", secrets[f.secret])
			default:
				secrets[f.secret] = name + "." + f.field + "_secret"
			}
		}
	}
	dir("connector", e.Connector)
	if hasKind && len(e.Countries) == 0 {
		p.add(entry, "countries", "list the countries whose citizens may log in (ISO 3166-1 alpha-2)")
	}
	seen := map[string]bool{}
	for i, c := range e.Countries {
		if !eidasCountryCode.MatchString(c.Code) || seen[c.Code] {
			p.add(entry, fmt.Sprintf("countries[%d].code", i), "%q: expected a distinct two-letter upper-case code", c.Code)
		}
		seen[c.Code] = true
	}
	if e.Proxy != nil {
		dir("proxy", e.Proxy.EIDASDirection)
		if e.Proxy.Platform != "" {
			found := false
			var ids []string
			for _, pl := range b.Platforms {
				found = found || pl.ID == e.Proxy.Platform
				ids = append(ids, pl.ID)
			}
			if !found {
				p.add(entry, "proxy.platform", "%q: no such platform%s", e.Proxy.Platform, suggest(e.Proxy.Platform, ids))
			}
		}
	}
}
