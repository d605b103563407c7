package config

import (
	"strings"
	"testing"
	"time"
)

// The risk section: absent, the rule is off; each mistake is named with
// its field, a bad network with its entry and value.
func TestRiskValidation(t *testing.T) {
	c, err := Parse("x.yaml", []byte(minimal))
	if err != nil || c.Broker.Risk != nil {
		t.Fatalf("no risk section: %v, %+v", err, c.Broker.Risk)
	}
	c, err = Parse("x.yaml", []byte(minimal+`  trusted_proxies: [10.0.0.0/8]
  risk:
    deny_networks: [192.0.2.0/24, "2001:db8::/32", 203.0.113.7]
    failed_trips: {max: 5}
    waf_header: {name: X-Suspicious, values: ["1"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Broker.Risk; r.FailedTrips.Window.D(0) != 15*time.Minute || r.WAFHeader.Name != "X-Suspicious" || len(r.DenyNetworks) != 3 {
		t.Errorf("risk %+v, failed_trips %+v", r, r.FailedTrips)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"  risk: {}", "broker.risk: (section): sets no signal"},
		{"  risk: {deny_networks: [192.0.2.0/24, 10.0.0.300/8]}", `broker.risk: deny_networks[1]: "10.0.0.300/8": expected a CIDR range`},
		{"  risk: {deny_networks: [example.org]}", `deny_networks[0]: "example.org"`},
		{"  risk: {failed_trips: {window: 10m}}", "broker.risk: failed_trips.max: must be at least 1"},
		{"  risk: {failed_trips: {max: 3, window: -1m}}", "broker.risk: failed_trips.window: must be positive"},
		{"  risk: {failed_trips: {max: 3, window: often}}", `"often" is not a duration`},
		{"  risk: {waf_header: {name: X-Suspicious}}", "broker.risk: waf_header: needs broker.trusted_proxies"},
		{"  trusted_proxies: [10.0.0.0/8]\n  risk: {waf_header: {name: \"X Suspicious\"}}", `broker.risk: waf_header.name: "X Suspicious"`},
		{"  trusted_proxies: [10.0.0.0/8]\n  risk: {waf_header: {name: X-S, values: [\"a,b\"]}}", "broker.risk: waf_header.values[0]"},
		{"  risk: {deny_network: [192.0.2.0/24]}", "deny_network"},
	} {
		_, err := Parse("x.yaml", []byte(minimal+tc.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %q", tc.yaml, err, tc.want)
		}
	}
}

// dev.yaml turns the rule on with signals that no ordinary dev request
// trips (TEST-NET-1, a header nobody sends), so the sandbox can show it.
func TestDevConfigRisk(t *testing.T) {
	c, err := Load("dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Broker.Risk
	if r == nil || len(r.DenyNetworks) == 0 || r.DenyNetworks[0] != "192.0.2.0/24" || r.WAFHeader == nil || len(c.Broker.TrustedProxies) == 0 {
		t.Fatalf("dev risk %+v, trusted_proxies %v", r, c.Broker.TrustedProxies)
	}
}
