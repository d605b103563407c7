package config

import (
	"fmt"
	"sort"
)

// minLightSecret is the shortest light-protocol secret accepted: the light
// package's MinSecretLength, repeated so that config imports no protocol
// package (providers/eidasnode checks it again through light.NewToken).
const minLightSecret = 32

// EIDASNode configures the mock eIDAS node (providers/eidasnode): it plays
// the French eIDAS-Node and, behind it, the foreign nodes, their demo IdPs
// and SPs, speaking the light protocol to Sésame's bridge. It is served
// under BaseURL (by default the providers' base_url + "/eidas-node").
type EIDASNode struct {
	// BaseURL is the node's public URL; empty means providers.base_url +
	// "/eidas-node".
	BaseURL string `yaml:"base_url"`
	// The four LightToken secrets, one per direction, each at least 32
	// characters and shared with the bridge (use ${ENV} references):
	// connector request (bridge → node), connector response (node →
	// bridge), proxy-service request (node → bridge) and proxy-service
	// response (bridge → node).
	ConnectorRequestSecret  string `yaml:"connector_request_secret"`
	ConnectorResponseSecret string `yaml:"connector_response_secret"`
	ProxyRequestSecret      string `yaml:"proxy_request_secret"`
	ProxyResponseSecret     string `yaml:"proxy_response_secret"`
	// ConnectorResponseURLs maps the issuer of a LightRequest (what the
	// bridge writes in <issuer>) to the URL where the node posts its
	// response token, as a real node is configured with its specific
	// connector's URL. The key "*" matches any other issuer.
	ConnectorResponseURLs map[string]string `yaml:"connector_response_urls"`
	// ProxyRequestURL is the bridge's proxy-service request endpoint,
	// where the mock foreign SP's request token is posted.
	ProxyRequestURL string `yaml:"proxy_request_url"`
	// TokenMaxAge bounds the age of the tokens the node accepts; default
	// 2m.
	TokenMaxAge Duration `yaml:"token_max_age"`
	// Redis is the store shared with the bridge (the role of the EC
	// node's Ignite). Empty: inside `sesame dev` the broker's store is
	// used; `sesame providers` alone then refuses to start.
	Redis Redis `yaml:"redis"`
}

// validate checks the node's section; base is the providers' base URL.
func (n *EIDASNode) validate(base string, p *Problems) {
	const entry = "providers.eidas_node"
	if n.BaseURL == "" && base != "" {
		n.BaseURL = base + "/eidas-node"
	}
	if err := checkURL(n.BaseURL, false); err != nil {
		p.add(entry, "base_url", "%v", err)
	}
	for _, s := range []struct{ field, value string }{
		{"connector_request_secret", n.ConnectorRequestSecret},
		{"connector_response_secret", n.ConnectorResponseSecret},
		{"proxy_request_secret", n.ProxyRequestSecret},
		{"proxy_response_secret", n.ProxyResponseSecret},
	} {
		if s.value == "" {
			p.missing(entry, s.field, fmt.Sprintf("at least %d characters (a LightToken secret shared with the bridge)", minLightSecret))
		} else if len(s.value) < minLightSecret {
			p.add(entry, s.field, "%d characters: at least %d needed (a LightToken secret shared with the bridge)", len(s.value), minLightSecret)
		}
	}
	if len(n.ConnectorResponseURLs) == 0 {
		p.add(entry, "connector_response_urls", "map at least one LightRequest issuer (or \"*\") to the bridge's connector response URL")
	}
	issuers := make([]string, 0, len(n.ConnectorResponseURLs))
	for k := range n.ConnectorResponseURLs {
		issuers = append(issuers, k)
	}
	sort.Strings(issuers)
	for _, k := range issuers {
		if err := checkURL(n.ConnectorResponseURLs[k], true); err != nil {
			p.add(entry, fmt.Sprintf("connector_response_urls[%q]", k), "%v", err)
		}
	}
	if err := checkURL(n.ProxyRequestURL, true); err != nil {
		p.add(entry, "proxy_request_url", "%v", err)
	}
}
