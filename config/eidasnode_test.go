package config

import (
	"errors"
	"strings"
	"testing"
)

const eidasNodeYAML = `
providers:
  listen: 127.0.0.1:9100
  base_url: http://localhost:9100
  idps: []
  eidas_node:
    connector_request_secret: ${CRQ:-connector-request-secret-0123456789abcdef}
    connector_response_secret: connector-response-secret-0123456789abcdef
    proxy_request_secret: proxy-request-secret-0123456789abcdef
    proxy_response_secret: proxy-response-secret-0123456789abcdef
    connector_response_urls:
      "https://bridge.example/eidas": http://localhost:8443/eidas/connector/response
    proxy_request_url: http://localhost:8443/eidas/proxy/request
    token_max_age: 90s
`

func TestEIDASNodeConfig(t *testing.T) {
	cfg, err := Parse("node.yaml", []byte(eidasNodeYAML))
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Providers.EIDASNode
	if n == nil || n.BaseURL != "http://localhost:9100/eidas-node" || n.TokenMaxAge.D(0).Seconds() != 90 ||
		n.ConnectorResponseURLs["https://bridge.example/eidas"] != "http://localhost:8443/eidas/connector/response" {
		t.Fatalf("parsed: %+v", n)
	}
}

func TestEIDASNodeConfigErrors(t *testing.T) {
	bad := strings.NewReplacer(
		"${CRQ:-connector-request-secret-0123456789abcdef}", "too-short",
		"http://localhost:8443/eidas/proxy/request", "ftp://bridge.example/x",
		"http://localhost:8443/eidas/connector/response", "http://bridge.example/plain-http",
	).Replace(eidasNodeYAML)
	_, err := Parse("node.yaml", []byte(bad))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{
		"providers.eidas_node: connector_request_secret: 9 characters: at least 32",
		"providers.eidas_node: proxy_request_url",
		`providers.eidas_node: connector_response_urls["https://bridge.example/eidas"]`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	noURLs := strings.Replace(eidasNodeYAML, `      "https://bridge.example/eidas": http://localhost:8443/eidas/connector/response`+"\n", "", 1)
	if _, err := Parse("node.yaml", []byte(noURLs)); err == nil || !strings.Contains(err.Error(), "connector_response_urls: map at least one") {
		t.Errorf("no connector URLs: %v", err)
	}
}
