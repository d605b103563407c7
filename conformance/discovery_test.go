package conformance

// oidcc-config-certification-test-plan: oidcc-discovery-endpoint-verification
// (OpenID Connect Discovery 1.0 §3 and §4, RFC 8414 §2, RFC 7517).

import (
	"crypto/rsa"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker/teststack"
)

var (
	// RFC 6749 §3.3 scope-token.
	scopeTokenRE = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
	// BCP 47 language tag, as CheckDiscEndpointLocalesSyntax reads it.
	localeRE = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)
	// The JWS algorithms of RFC 7518 §3.1 except none.
	knownJWS = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}
)

func TestOidccDiscoveryEndpointVerification(t *testing.T) {
	t.Parallel()
	s := teststack.New(t)
	discoveryURL := s.BrokerURL + "/.well-known/openid-configuration"
	resp, body := teststack.Get(t, http.DefaultClient, discoveryURL)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %d", resp.StatusCode)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/json" {
		t.Errorf("discovery Content-Type = %q, want application/json", resp.Header.Get("Content-Type"))
	}
	var meta map[string]any
	if err := json.Unmarshal([]byte(body), &meta); err != nil {
		t.Fatalf("discovery is not a JSON object: %v", err)
	}

	// Issuer: exactly the URL discovery was fetched from, minus the
	// well-known suffix (Discovery §4.3), https-or-loopback, no query or
	// fragment (RFC 8414 §2).
	iss, _ := meta["issuer"].(string)
	if iss != s.BrokerURL || iss+"/.well-known/openid-configuration" != discoveryURL {
		t.Errorf("issuer = %q, fetched from %s", iss, discoveryURL)
	}
	issURL, err := url.Parse(iss)
	if err != nil || !issURL.IsAbs() || issURL.RawQuery != "" || issURL.Fragment != "" {
		t.Errorf("issuer %q is not a URL without query and fragment", iss)
	}

	// REQUIRED members, then RECOMMENDED ones.
	for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
		"response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
		"userinfo_endpoint", "scopes_supported", "claims_supported"} {
		if _, ok := meta[k]; !ok {
			t.Errorf("discovery lacks %s", k)
		}
	}

	// Endpoints: absolute, no fragment, on the issuer's origin, so https
	// whenever the issuer is (CheckDiscEndpointAllEndpointsAreHttps).
	for k, v := range meta {
		if !strings.HasSuffix(k, "_endpoint") && k != "jwks_uri" {
			continue
		}
		ep, _ := v.(string)
		u, err := url.Parse(ep)
		switch {
		case err != nil || !u.IsAbs() || u.Fragment != "":
			t.Errorf("%s = %q, want an absolute URL without fragment", k, ep)
		case u.Scheme != issURL.Scheme || u.Host != issURL.Host:
			t.Errorf("%s = %q is off the issuer's origin", k, ep)
		}
	}

	strs := func(k string) []string { return strList(t, meta, k) }
	if rt := strs("response_types_supported"); !slices.Equal(rt, []string{"code"}) {
		t.Errorf("response_types_supported = %v, want [code] (the only flow the broker runs)", rt)
	}
	if rm, ok := meta["response_modes_supported"]; ok && !slices.Contains(strList(t, meta, "response_modes_supported"), "query") {
		t.Errorf("response_modes_supported = %v lacks query", rm)
	}
	st := strs("subject_types_supported")
	if len(st) == 0 {
		t.Error("subject_types_supported is empty")
	}
	for _, v := range st {
		if v != "public" && v != "pairwise" {
			t.Errorf("subject_types_supported holds %q", v)
		}
	}
	algs := strs("id_token_signing_alg_values_supported")
	if !slices.Contains(algs, "RS256") {
		t.Errorf("id_token_signing_alg_values_supported = %v lacks RS256, which MUST be included (Discovery §3)", algs)
	}
	for _, k := range []string{"id_token_signing_alg_values_supported", "userinfo_signing_alg_values_supported"} {
		if _, ok := meta[k]; !ok {
			continue
		}
		for _, a := range strs(k) {
			if !slices.Contains(knownJWS, a) {
				t.Errorf("%s holds %q", k, a)
			}
		}
	}
	if g := strs("grant_types_supported"); !slices.Contains(g, "authorization_code") {
		t.Errorf("grant_types_supported = %v lacks authorization_code", g)
	}
	if m := strs("token_endpoint_auth_methods_supported"); !slices.Contains(m, "client_secret_basic") {
		t.Errorf("token_endpoint_auth_methods_supported = %v lacks client_secret_basic", m)
	}
	scopes := strs("scopes_supported")
	if !slices.Contains(scopes, "openid") {
		t.Errorf("scopes_supported = %v lacks openid", scopes)
	}
	for _, sc := range scopes {
		if !scopeTokenRE.MatchString(sc) {
			t.Errorf("scopes_supported holds %q, not an RFC 6749 scope-token", sc)
		}
	}
	claims := strs("claims_supported")
	for _, c := range []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "at_hash"} {
		if !slices.Contains(claims, c) {
			t.Errorf("claims_supported lacks %s, which every id_token carries", c)
		}
	}
	for _, k := range []string{"ui_locales_supported", "claims_locales_supported"} {
		if _, ok := meta[k]; !ok {
			continue
		}
		for _, l := range strs(k) {
			if !localeRE.MatchString(l) {
				t.Errorf("%s holds %q, not a BCP 47 tag", k, l)
			}
		}
	}
	if ccm := strs("code_challenge_methods_supported"); !slices.Equal(ccm, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v, want [S256] (plain is refused)", ccm)
	}
	for k, want := range map[string]any{
		"claims_parameter_supported":                     true,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false, // defaults to true when omitted
		"authorization_response_iss_parameter_supported": true,  // RFC 9207 §3
	} {
		if got, ok := meta[k]; !ok || got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}

	// jwks_uri: reachable JSON, unique kids, public members only, keys fit
	// for the advertised algorithms.
	ju, _ := meta["jwks_uri"].(string)
	resp, body = teststack.Get(t, http.DefaultClient, ju)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks_uri %s: %d", ju, resp.StatusCode)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/json" && ct != "application/jwk-set+json" {
		t.Errorf("jwks Content-Type = %q", resp.Header.Get("Content-Type"))
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil || len(raw.Keys) == 0 {
		t.Fatalf("jwks is not a non-empty JWK set: %v", err)
	}
	kids := map[string]bool{}
	for i, k := range raw.Keys {
		kid, _ := k["kid"].(string)
		if kid == "" || kids[kid] {
			t.Errorf("key %d: kid %q is empty or repeated", i, kid)
		}
		kids[kid] = true
		for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := k[priv]; ok {
				t.Errorf("key %s publishes the private or symmetric member %q", kid, priv)
			}
		}
		if kty := k["kty"]; kty != "RSA" && kty != "EC" {
			t.Errorf("key %s: kty %v", kid, kty)
		}
		if use, ok := k["use"]; ok && use != "sig" {
			t.Errorf("key %s: use %v", kid, use)
		}
		if alg, ok := k["alg"].(string); ok && !slices.Contains(algs, alg) {
			t.Errorf("key %s: alg %s not in id_token_signing_alg_values_supported", kid, alg)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			t.Errorf("key %s is not a valid public key", k.KeyID)
		}
		if pub, ok := k.Key.(*rsa.PublicKey); ok && pub.N.BitLen() < 2048 {
			t.Errorf("key %s: RSA key of %d bits", k.KeyID, pub.N.BitLen())
		}
	}
	for _, a := range algs {
		found := false
		for _, k := range set.Keys {
			found = found || k.Algorithm == a
		}
		if !found {
			t.Errorf("%s advertised but no key of the JWKS is for it", a)
		}
	}
}
