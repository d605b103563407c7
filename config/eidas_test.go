package config

import (
	"strings"
	"testing"
)

func withEIDAS(r *strings.Replacer) []byte {
	y := strings.Replace(minimal, "  identity_providers:\n    - id: idp", `  eidas:
    node_url: https://node.example/EidasNode
    connector:
      request_issuer: specificCommunicationDefinitionConnectorRequest
      request_secret: "connector-request-secret-0123456789ab"
      response_issuer: specificCommunicationDefinitionConnectorResponse
      response_secret: "connector-response-secret-0123456789a"
    countries: [{code: CB, name: Mock Node}]
    proxy:
      request_issuer: specificCommunicationDefinitionProxyserviceRequest
      request_secret: "proxy-request-secret-0123456789abcdef"
      response_issuer: specificCommunicationDefinitionProxyserviceResponse
      response_secret: "proxy-response-secret-0123456789abcde"
  identity_providers:
    - id: eidas
      kind: eidas
      acr_values: [eidas1, eidas2, eidas3]
    - id: idp`, 1)
	y = strings.Replace(y, "identity_providers: [idp]", "identity_providers: [idp, eidas]", 1)
	if r != nil {
		y = r.Replace(y)
	}
	return []byte(y)
}

// check-config explains every mistake in the eIDAS bridge's section.
func TestEIDASValidation(t *testing.T) {
	cfg, err := Parse("ok.yaml", withEIDAS(nil))
	if err != nil {
		t.Fatalf("a valid bridge refused: %v", err)
	}
	if idp := cfg.Broker.IdentityProviders[0]; !idp.IsEIDAS() || idp.ClientID != "" {
		t.Errorf("eidas entry %+v", idp)
	}
	for name, c := range map[string]struct {
		r    *strings.Replacer
		want string
	}{
		"short secret":     {strings.NewReplacer(`"connector-request-secret-0123456789ab"`, `"short"`), "broker.eidas: connector.request_secret: must be at least 32 characters"},
		"missing secret":   {strings.NewReplacer(`      response_secret: "proxy-response-secret-0123456789abcde"`+"\n", ""), "broker.eidas: proxy.response_secret: is missing"},
		"shared secret":    {strings.NewReplacer(`"proxy-request-secret-0123456789abcdef"`, `"connector-request-secret-0123456789ab"`), "proxy.request_secret: is the same as connector.request_secret"},
		"issuer with |":    {strings.NewReplacer("request_issuer: specificCommunicationDefinitionConnectorRequest", "request_issuer: a|b"), `connector.request_issuer: "a|b": may not contain |`},
		"bad country":      {strings.NewReplacer("code: CB", "code: cb"), `countries[0].code: "cb"`},
		"no node":          {strings.NewReplacer("node_url: https://node.example/EidasNode", "node_url: ftp://x"), "broker.eidas: node_url:"},
		"unknown kind":     {strings.NewReplacer("kind: eidas", "kind: saml"), `kind: "saml": expected oidc or eidas`},
		"unknown platform": {strings.NewReplacer("    proxy:\n", "    proxy:\n      platform: nope\n"), `proxy.platform: "nope": no such platform`},
	} {
		_, err := Parse("eidas.yaml", withEIDAS(c.r))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	// An IdP of kind eidas needs the section.
	y := string(withEIDAS(nil))
	y = y[:strings.Index(y, "  eidas:\n")] + y[strings.Index(y, "  identity_providers:\n"):]
	if _, err := Parse("x.yaml", []byte(y)); err == nil || !strings.Contains(err.Error(), "broker: eidas: an identity provider of kind eidas needs the broker's eidas section") {
		t.Errorf("kind eidas without the section: %v", err)
	}
}
