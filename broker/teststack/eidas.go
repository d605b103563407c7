package teststack

import (
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/eidas/light"
)

// The eIDAS bridge's test settings: the EC node's default token issuers
// and a secret per direction.
var EIDASTest = config.EIDAS{
	NodeURL: "http://node.invalid/EidasNode",
	Connector: config.EIDASDirection{
		RequestIssuer: light.IssuerConnectorRequest, RequestSecret: "test-connector-request-secret-0123456789",
		ResponseIssuer: light.IssuerConnectorResponse, ResponseSecret: "test-connector-response-secret-012345678",
	},
	Countries: []config.EIDASCountry{{Code: "CB", Name: "Mock Node"}, {Code: "BE", Name: "Belgique"}},
	Proxy: &config.EIDASProxy{EIDASDirection: config.EIDASDirection{
		RequestIssuer: light.IssuerProxyserviceRequest, RequestSecret: "test-proxy-request-secret-0123456789abc",
		ResponseIssuer: light.IssuerProxyserviceResponse, ResponseSecret: "test-proxy-response-secret-0123456789ab",
	}},
}

// EIDAS gives the broker the eIDAS bridge, with EIDASTest's settings and
// nodeURL as the node (any URL: tests play the node with the light
// package), and offers "eidas" ("Identité européenne", every level) on
// the platform's chooser.
func EIDAS(nodeURL string) Option {
	return func(c *config.Config) {
		e := EIDASTest
		e.NodeURL = nodeURL
		p := *e.Proxy
		e.Proxy = &p
		c.Broker.EIDAS = &e
		c.Broker.IdentityProviders = append(c.Broker.IdentityProviders, config.IdP{
			ID: "eidas", Kind: config.IdPKindEIDAS, Name: "Identité européenne", ACRValues: []string{"eidas1", "eidas2", "eidas3"},
		})
		pl := &c.Broker.Platforms[0]
		pl.IdentityProviders = append(pl.IdentityProviders, "eidas")
	}
}
