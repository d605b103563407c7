package config

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/internal/keys"
)

// KnownACR are the levels Sésame understands, lowest first.
var KnownACR = []string{"eidas1", "eidas2", "eidas3"}

// Problems lists every problem of a file, each naming the entry and the
// field, and its line when the file was read by Parse, so an operator
// fixes them all in one pass.
type Problems struct {
	File  string
	Items []Problem
	// pos is what Parse learnt of the file: where each entry is written,
	// and what its structure check already reported.
	pos *positions
}

// Problem is one thing wrong in a file.
type Problem struct {
	// Line and Column locate it in the file, from 1; 0 when unknown (a
	// config built in code).
	Line, Column int
	// Entry is a section or a list item in the file's words
	// ("broker.platforms[0] (std).service_providers[1] (demo-sp)"), Field
	// the path under it ("redis.url"); either may be empty.
	Entry, Field string
	Message      string
}

// String is "entry: field: message", without the position.
func (q Problem) String() string {
	parts := make([]string, 0, 3)
	for _, s := range []string{q.Entry, q.Field, q.Message} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ": ")
}

// at is the problem prefixed with file:line:column when its line is known.
func (q Problem) at(file string) string {
	switch {
	case q.Line > 0 && q.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", file, q.Line, q.Column, q)
	case q.Line > 0:
		return fmt.Sprintf("%s:%d: %s", file, q.Line, q)
	}
	return q.String()
}

func (p *Problems) Error() string {
	lines := make([]string, len(p.Items))
	for i, q := range p.Items {
		lines[i] = q.at(p.File)
	}
	return fmt.Sprintf("%s: %d problem(s):\n  - %s", p.File, len(p.Items), strings.Join(lines, "\n  - "))
}

// Lines are the problems one per line, each starting with the file (and
// its line and column when known), as check-config prints them.
func (p *Problems) Lines() []string {
	lines := make([]string, len(p.Items))
	for i, q := range p.Items {
		if lines[i] = q.at(p.File); q.Line == 0 {
			lines[i] = p.File + ": " + lines[i]
		}
	}
	return lines
}

// Is lets callers test for ErrInvalid.
func (p *Problems) Is(target error) bool { return target == ErrInvalid }

// levels reports every value of a list that is not a known level.
func (p *Problems) levels(entry, field string, values []string) {
	for _, v := range values {
		if !slices.Contains(KnownACR, v) {
			p.add(entry, field, "%q: expected one of %s", v, strings.Join(KnownACR, ", "))
		}
	}
}

// add records a problem of entry's field. With a file read by Parse it
// gets the line where the field (or, when missing, its entry) is written,
// and it is dropped when the structure check already refused that value:
// the decoder left it empty, so "is missing" would only repeat it.
func (p *Problems) add(entry, field, format string, args ...any) {
	q := Problem{Entry: entry, Field: field, Message: fmt.Sprintf(format, args...)}
	if p.pos != nil {
		path := canonical(entry, field)
		if p.pos.covers(path) {
			return
		}
		at := p.pos.find(path)
		q.Line, q.Column = at.line, at.col
	}
	p.Items = append(p.Items, q)
}

// required reports an empty required field as missing; why, when given,
// says what it is for.
func (p *Problems) required(entry, field, value, why string) {
	if strings.TrimSpace(value) == "" {
		p.missing(entry, field, why)
	}
}

// missing reports a required field that is absent or empty.
func (p *Problems) missing(entry, field, why string) {
	if why == "" {
		p.add(entry, field, "is missing")
		return
	}
	p.add(entry, field, "is missing: %s", why)
}

// minSecret is the length of a client secret or an HMAC key, the same as
// FranceConnect's.
const minSecret = 32

// secret checks a secret: missing when empty, too short otherwise. The
// value itself is never printed.
func (p *Problems) secret(entry, field, value, why string) {
	switch {
	case value == "":
		w := fmt.Sprintf("at least %d characters", minSecret)
		if why != "" {
			w = why + ", " + w
		}
		p.missing(entry, field, w)
	case len(value) < minSecret:
		if why != "" {
			p.add(entry, field, "must be at least %d characters (%s)", minSecret, why)
			return
		}
		p.add(entry, field, "must be at least %d characters", minSecret)
	}
}

// listen checks a host:port to listen on.
func (p *Problems) listen(entry, field, value string) {
	if value == "" {
		p.missing(entry, field, "a host:port to listen on")
	} else if _, _, err := net.SplitHostPort(value); err != nil {
		p.add(entry, field, "expected host:port, got %q", value)
	}
}

// newProblems starts the problems of c, with what Parse found in the
// file's structure.
func (c *Config) newProblems() *Problems {
	p := &Problems{File: c.File, pos: c.pos}
	if c.pos != nil {
		p.Items = append(p.Items, c.pos.found...)
	}
	return p
}

// Validate checks every section present and fills defaults.
func (c *Config) Validate() error {
	p := c.newProblems()
	if c.Broker == nil && c.Providers == nil && c.DemoSP == nil && c.Dashboard == nil {
		p.add("(file)", "broker/providers/demo_sp/dashboard", "at least one section is required")
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "text"
	case "text", "json":
	default:
		p.add("log", "format", "%q: expected text or json", c.Log.Format)
	}
	if c.Broker != nil {
		c.Broker.validate(p)
	}
	if c.Providers != nil {
		c.Providers.validate(p)
	}
	if c.DemoSP != nil {
		c.DemoSP.validate(p)
	}
	if c.History != nil {
		c.History.validate(p)
	}
	if c.Mail != nil {
		c.Mail.validate(p)
	}
	if c.Dashboard != nil {
		c.Dashboard.validate(c.Broker, p)
		if c.History == nil {
			p.add("dashboard", "(section)", "needs a history section: the citizen space shows the history store")
		}
	}
	if c.Broker != nil && c.Broker.CitizenSpaceURL != "" {
		if err := checkURL(c.Broker.CitizenSpaceURL, false); err != nil {
			p.add("broker", "citizen_space_url", "%v", err)
		}
		c.Broker.CitizenSpaceURL = strings.TrimSuffix(c.Broker.CitizenSpaceURL, "/")
	}
	if len(p.Items) > 0 {
		return p
	}
	return nil
}

func (b *Broker) validate(p *Problems) {
	p.secret("broker", "sub_secret", b.SubSecret, "it keys the pairwise sub HMAC")
	if len(b.SessionKeys) == 0 {
		p.missing("broker", "session_keys", "at least one base64 32-byte key (generate one with `sesame keys session`)")
	}
	switch b.Theme {
	case "":
		b.Theme = "neutral"
	case "dsfr", "neutral":
	default:
		p.add("broker", "theme", "%q: expected dsfr or neutral", b.Theme)
	}
	if b.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(b.MetricsListen); err != nil {
			p.add("broker", "metrics_listen", "expected host:port, got %q", b.MetricsListen)
		}
	}
	if b.Pprof && b.MetricsListen == "" {
		p.add("broker", "pprof", "the profiler is served on the metrics listener: set metrics_listen too")
	}
	for i, cidr := range b.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			p.add("broker", fmt.Sprintf("trusted_proxies[%d]", i), "%q: expected a CIDR range such as 10.0.0.0/8 or 127.0.0.1/32", cidr)
		}
	}
	if b.Redis.URL != "" && len(b.Redis.Addrs) > 0 {
		p.add("broker", "redis", "set url or addrs, not both")
	}
	if b.Redis.URL != "" {
		if u, err := url.Parse(b.Redis.URL); err != nil || !slices.Contains([]string{"redis", "rediss", "unix"}, u.Scheme) {
			p.add("broker", "redis.url", "expected redis://, rediss:// or unix:// URL")
		}
	}
	if b.Redis.TLS && len(b.Redis.Addrs) == 0 {
		p.add("broker", "redis.tls", "applies to addrs; with a url, write rediss://")
	}
	if f := b.Redis.TLSCAFile; f != "" {
		if u, err := url.Parse(b.Redis.URL); (err != nil || u.Scheme != "rediss") && !(b.Redis.TLS && len(b.Redis.Addrs) > 0) {
			p.add("broker", "redis.tls_ca_file", "requires a rediss:// url, or addrs with tls: true")
		} else if pem, err := os.ReadFile(f); err != nil {
			p.add("broker", "redis.tls_ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			p.add("broker", "redis.tls_ca_file", "%s: no PEM certificate", f)
		}
	}

	b.Risk.validate(b, p)
	b.Pages.validate(p)
	b.validateLogos(p)

	idps := map[string]bool{}
	for i := range b.IdentityProviders {
		idp := &b.IdentityProviders[i]
		entry := fmt.Sprintf("broker.identity_providers[%d] (%s)", i, idp.ID)
		if idp.ID == "" {
			p.missing(entry, "id", "")
		} else if idps[idp.ID] {
			p.add(entry, "id", "duplicate id %q", idp.ID)
		}
		idps[idp.ID] = true
		if idp.Name == "" {
			idp.Name = idp.ID
		}
		switch idp.Kind {
		case "", "oidc":
			if err := checkURL(idp.Issuer, false); err != nil {
				p.add(entry, "issuer", "%v", err)
			}
			if idp.DiscoveryURL != "" {
				if err := checkURL(idp.DiscoveryURL, true); err != nil {
					p.add(entry, "discovery_url", "%v", err)
				} else if !strings.HasSuffix(idp.DiscoveryURL, "/.well-known/openid-configuration") {
					p.add(entry, "discovery_url", "must end with /.well-known/openid-configuration")
				}
			}
			p.required(entry, "client_id", idp.ClientID, "")
			p.secret(entry, "client_secret", idp.ClientSecret, "")
		case IdPKindEIDAS:
			if idp.CivilRegistry != nil && *idp.CivilRegistry {
				p.add(entry, "civil_registry", "a foreign identity is not in the French civil registry: remove it or set false")
			}
			if idp.Issuer == "" {
				// The bridge is its own issuer: the broker's platform.
				idp.Issuer = "eidas:" + idp.ID
			}
		default:
			p.add(entry, "kind", "%q: expected oidc or eidas", idp.Kind)
		}
		if len(idp.ACRValues) == 0 {
			p.add(entry, "acr_values", "list the levels this IdP may assert (eidas1, eidas2, eidas3)")
		}
		p.levels(entry, "acr_values", idp.ACRValues)
		for k, v := range idp.ACRMap {
			if !slices.Contains(KnownACR, v) {
				p.add(entry, "acr_map", "%q maps to %q: expected one of %s", k, v, strings.Join(KnownACR, ", "))
			}
		}
		if idp.ACRIfMissing != "" && idp.ACRIfMissing != KnownACR[0] {
			p.add(entry, "acr_if_missing", "%q: only %s may be assumed; higher levels must be asserted by the IdP", idp.ACRIfMissing, KnownACR[0])
		}
		if len(idp.Scopes) == 0 {
			idp.Scopes = []string{"openid", "profile", "birth", "email"}
		}
	}

	p.validateEIDAS(b)

	if len(b.Platforms) == 0 {
		p.missing("broker", "platforms", "at least one platform")
	}
	ids := map[string]bool{}
	namespaces := map[string]bool{}
	cookies := map[string]bool{}
	for i := range b.Platforms {
		pl := &b.Platforms[i]
		entry := fmt.Sprintf("broker.platforms[%d] (%s)", i, pl.ID)
		if pl.ID == "" {
			p.missing(entry, "id", "")
		} else if ids[pl.ID] {
			p.add(entry, "id", "duplicate id %q", pl.ID)
		}
		ids[pl.ID] = true
		p.listen(entry, "listen", pl.Listen)
		if err := checkURL(pl.Issuer, false); err != nil {
			p.add(entry, "issuer", "%v", err)
		} else if u, _ := url.Parse(pl.Issuer); u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/") {
			p.add(entry, "issuer", "must have no query, fragment or trailing slash")
		}
		switch pl.Level {
		case "", "standard":
			pl.Level = "standard"
		case "plus":
		default:
			p.add(entry, "level", "%q: expected standard or plus", pl.Level)
		}
		if len(pl.ACRValues) == 0 {
			pl.ACRValues = []string{"eidas1"}
			if pl.IsPlus() {
				pl.ACRValues = []string{"eidas2", "eidas3"}
			}
		}
		if len(pl.SSOLevels) == 0 {
			pl.SSOLevels = pl.ACRValues[:1]
		}
		for _, a := range pl.SSOLevels {
			if !slices.Contains(pl.ACRValues, a) {
				p.add(entry, "sso_levels", "%q is not in this platform's acr_values", a)
			}
		}
		switch pl.ACRError {
		case "":
			pl.ACRError = "invalid_request"
		case "invalid_request", "invalid_acr":
		default:
			p.add(entry, "acr_error", "%q: expected invalid_request or invalid_acr", pl.ACRError)
		}
		p.levels(entry, "acr_values", pl.ACRValues)
		if pl.DefaultACR == "" {
			pl.DefaultACR = pl.ACRValues[0]
			if pl.IsPlus() {
				pl.DefaultACR = pl.ACRValues[len(pl.ACRValues)-1]
			}
		} else if !slices.Contains(pl.ACRValues, pl.DefaultACR) {
			p.add(entry, "default_acr", "%q is not in this platform's acr_values", pl.DefaultACR)
		}
		switch pl.Nonce {
		case "":
			pl.Nonce = "required"
		case "required", "optional":
		default:
			p.add(entry, "nonce", "%q: expected required or optional", pl.Nonce)
		}
		if pl.SessionTTL == 0 {
			pl.SessionTTL = Duration(30 * time.Minute)
			if pl.IsPlus() {
				pl.SessionTTL = Duration(10 * time.Minute)
			}
		}
		if pl.Cookie == "" {
			pl.Cookie = "sesame_" + pl.ID
		}
		if cookies[pl.Cookie] {
			p.add(entry, "cookie", "%q is used by another platform; platforms never share sessions", pl.Cookie)
		}
		cookies[pl.Cookie] = true
		if pl.Namespace == "" {
			pl.Namespace = "sesame:" + pl.ID + ":"
		}
		if namespaces[pl.Namespace] {
			p.add(entry, "namespace", "%q is used by another platform; platforms never share sessions", pl.Namespace)
		}
		namespaces[pl.Namespace] = true
		known := idpIDs(b.IdentityProviders)
		if len(pl.IdentityProviders) == 0 {
			p.missing(entry, "identity_providers", "list at least one IdP id"+suggest("", known))
		}
		for _, id := range pl.IdentityProviders {
			if !idps[id] {
				p.add(entry, "identity_providers", "unknown IdP %q%s", id, suggestWhere(id, known, "broker.identity_providers"))
			}
		}
		pl.validateKeys(entry, p)
		pl.validateDataProviders(entry, b.DataScopes, p)
		pl.validateSPs(entry, p)
		pl.validateDataScopeGrants(entry, b.DataScopes, p)
	}
	validateDataScopes(b.DataScopes, p)
	if b.CivilRegistry != nil {
		b.CivilRegistry.validate(p)
	}
}

// validateDataScopes checks the catalogue: unique scopes, apart from the
// identity's, each with its provider, claims and a French label.
func validateDataScopes(scopes []DataScope, p *Problems) {
	seen := map[string]bool{}
	for i := range scopes {
		d := &scopes[i]
		entry := fmt.Sprintf("broker.data_scopes[%d] (%s)", i, d.Scope)
		switch {
		case d.Scope == "":
			p.missing(entry, "scope", "")
		case strings.ContainsAny(d.Scope, " \t\"\\"):
			p.add(entry, "scope", "%q: no spaces or quotes", d.Scope)
		case slices.Contains(IdentityScopes, d.Scope):
			p.add(entry, "scope", "%q is an identity scope, not a data scope", d.Scope)
		case seen[d.Scope]:
			p.add(entry, "scope", "duplicate scope %q", d.Scope)
		}
		seen[d.Scope] = true
		p.required(entry, "provider", d.Provider, "the id of the data provider that serves it")
		if len(d.Claims) == 0 {
			p.add(entry, "claims", "list the fields the scope covers")
		}
		p.required(entry, "label_fr", d.LabelFR, "the citizen is told in French what is passed on")
		if d.LabelEN == "" {
			d.LabelEN = d.LabelFR
		}
	}
}

// dataScope finds a scope of the catalogue.
func dataScope(scopes []DataScope, name string) (DataScope, bool) {
	for _, d := range scopes {
		if d.Scope == name {
			return d, true
		}
	}
	return DataScope{}, false
}

// validateDataProviders checks the platform's data providers: unique ids
// and client_ids (SPs' included), credentials, keys, the scopes they
// serve, and the answer format (signed and encrypted on "+").
func (pl *Platform) validateDataProviders(platform string, catalogue []DataScope, p *Problems) {
	ids, clients := map[string]bool{}, map[string]bool{}
	for _, sp := range pl.ServiceProviders {
		clients[sp.ClientID] = true
	}
	for j := range pl.DataProviders {
		dp := &pl.DataProviders[j]
		entry := fmt.Sprintf("%s.data_providers[%d] (%s)", platform, j, dp.ID)
		if dp.ID == "" {
			p.missing(entry, "id", "")
		} else if ids[dp.ID] {
			p.add(entry, "id", "duplicate id %q", dp.ID)
		}
		ids[dp.ID] = true
		if dp.Name == "" {
			dp.Name = dp.ID
		}
		if dp.Sector == "" {
			dp.Sector = "dp:" + dp.ID
		}
		if dp.ClientID == "" {
			p.missing(entry, "client_id", "")
		} else if clients[dp.ClientID] {
			p.add(entry, "client_id", "%q is already the client_id of another SP or data provider of this platform", dp.ClientID)
		}
		clients[dp.ClientID] = true
		hasKeys := dp.JWKSURI != "" || dp.JWKS != ""
		if len(dp.TokenEndpointAuthMethods) == 0 {
			dp.TokenEndpointAuthMethods = []string{"client_secret_basic", "client_secret_post"}
			if dp.ClientSecret == "" && hasKeys {
				dp.TokenEndpointAuthMethods = []string{"private_key_jwt"}
			}
		}
		secretAuth := false
		for _, m := range dp.TokenEndpointAuthMethods {
			switch {
			case !slices.Contains(validAuthMethods, m):
				p.add(entry, "token_endpoint_auth_methods", "%q: expected %s", m, strings.Join(validAuthMethods, " or "))
			case m == "private_key_jwt" && !hasKeys:
				p.add(entry, "token_endpoint_auth_methods", "private_key_jwt needs the provider's keys in jwks or jwks_uri")
			case m != "private_key_jwt":
				secretAuth = true
			}
		}
		if secretAuth {
			p.secret(entry, "client_secret", dp.ClientSecret, "")
		}
		checkKeys(entry, dp.JWKSURI, dp.JWKS, p)
		if len(dp.Scopes) == 0 {
			p.add(entry, "scopes", "list the data scopes it serves")
		}
		for _, sc := range dp.Scopes {
			if slices.Contains(IdentityScopes, sc) {
				continue
			}
			d, ok := dataScope(catalogue, sc)
			switch {
			case !ok:
				p.add(entry, "scopes", "%q is neither an identity scope nor in broker.data_scopes%s", sc, didYouMean(sc, scopeNames(catalogue)))
			case d.Provider != dp.ID:
				hint := ""
				if nearest(dp.ID, []string{d.Provider}) != "" {
					hint = fmt.Sprintf(": did you mean id %q?", d.Provider)
				}
				p.add(entry, "scopes", "%q is served by %q in broker.data_scopes, not by this provider%s", sc, d.Provider, hint)
			}
		}
		switch dp.IntrospectionSignedResponseAlg {
		case "":
			if pl.IsPlus() {
				dp.IntrospectionSignedResponseAlg = "ES256"
			}
		case "ES256":
		case "RS256":
			if pl.IsPlus() {
				p.add(entry, "introspection_signed_response_alg", "%q: a plus platform signs with ES256 only", dp.IntrospectionSignedResponseAlg)
			}
		default:
			p.add(entry, "introspection_signed_response_alg", "%q: expected ES256 or RS256", dp.IntrospectionSignedResponseAlg)
		}
		if pl.IsPlus() {
			if !hasKeys {
				p.add(entry, "jwks_uri", "a data provider on a plus platform must register jwks_uri or jwks: its introspection answers are encrypted to its key")
			}
			if dp.IntrospectionEncryptedResponseEnc == "" {
				dp.IntrospectionEncryptedResponseEnc = "A256GCM"
			}
		}
		if a := dp.IntrospectionEncryptedResponseAlg; a != "" && !slices.Contains(validEncAlgs, a) {
			p.add(entry, "introspection_encrypted_response_alg", "%q: expected %s", a, strings.Join(validEncAlgs, ", "))
		}
		if dp.IntrospectionEncryptedResponseAlg != "" && dp.IntrospectionEncryptedResponseEnc == "" {
			dp.IntrospectionEncryptedResponseEnc = "A256GCM"
		}
		if e := dp.IntrospectionEncryptedResponseEnc; e != "" {
			if !slices.Contains(validEnc, e) {
				p.add(entry, "introspection_encrypted_response_enc", "%q: expected %s", e, strings.Join(validEnc, ", "))
			}
			if !hasKeys {
				p.add(entry, "jwks_uri", "encrypted introspection answers need the provider's keys in jwks or jwks_uri")
			}
		}
	}
}

// validateDataScopeGrants checks that every data scope granted to an SP is
// in the catalogue and served by a data provider of this platform.
func (pl *Platform) validateDataScopeGrants(platform string, catalogue []DataScope, p *Problems) {
	for j, sp := range pl.ServiceProviders {
		entry := fmt.Sprintf("%s.service_providers[%d] (%s)", platform, j, sp.ClientID)
		for _, sc := range sp.Scopes {
			if slices.Contains(IdentityScopes, sc) {
				continue
			}
			d, ok := dataScope(catalogue, sc)
			if !ok {
				p.add(entry, "scopes", "%q is neither an identity scope nor in broker.data_scopes%s", sc, didYouMean(sc, scopeNames(catalogue)))
				continue
			}
			if !slices.ContainsFunc(pl.DataProviders, func(dp DataProvider) bool { return dp.ID == d.Provider }) {
				p.add(entry, "scopes", "%q is served by data provider %q, which is not registered on this platform%s", sc, d.Provider, suggestWhere(d.Provider, dataProviderIDs(pl.DataProviders), "this platform's data_providers"))
			}
		}
	}
}

var validAuthMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}

// Encryption algorithms FranceConnect+ accepts; RSA1_5 is never allowed.
var (
	validEncAlgs = []string{"ECDH-ES", "RSA-OAEP", "RSA-OAEP-256"}
	validEnc     = []string{"A256GCM"}
)

// checkKeys checks a client's registered keys (an SP's or a data
// provider's): a jwks_uri or an inline public jwks, not both.
func checkKeys(entry, jwksURI, jwks string, p *Problems) {
	if jwksURI != "" && jwks != "" {
		p.add(entry, "jwks_uri", "set jwks_uri or jwks, not both")
	}
	if jwksURI != "" {
		if err := checkURL(jwksURI, true); err != nil {
			p.add(entry, "jwks_uri", "%v", err)
		}
	}
	if jwks != "" {
		if err := checkPublicJWKS(jwks); err != nil {
			p.add(entry, "jwks", "%v", err)
		}
	}
}

// IsPlus reports whether the platform is a "+" platform.
func (pl *Platform) IsPlus() bool { return pl.Level == "plus" }

func (pl *Platform) validateSPs(platform string, p *Problems) {
	clients := map[string]bool{}
	for j := range pl.ServiceProviders {
		sp := &pl.ServiceProviders[j]
		entry := fmt.Sprintf("%s.service_providers[%d] (%s)", platform, j, sp.ClientID)
		if sp.ClientID == "" {
			p.missing(entry, "client_id", "")
		} else if clients[sp.ClientID] {
			p.add(entry, "client_id", "duplicate client_id %q", sp.ClientID)
		}
		clients[sp.ClientID] = true
		if sp.Name == "" {
			sp.Name = sp.ClientID
		}
		p.required(entry, "sector", sp.Sector, "SPs of one sector share pairwise subs")
		if len(sp.RedirectURIs) == 0 {
			p.missing(entry, "redirect_uris", "list at least one")
		}
		for _, u := range sp.RedirectURIs {
			if err := checkURL(u, true); err != nil {
				p.add(entry, "redirect_uris", "%q: %v", u, err)
			} else if strings.Contains(u, "#") {
				p.add(entry, "redirect_uris", "%q: must not contain a fragment", u)
			}
		}
		if sp.BackchannelLogoutURI != "" {
			if err := checkURL(sp.BackchannelLogoutURI, true); err != nil {
				p.add(entry, "backchannel_logout_uri", "%v", err)
			}
		}
		for _, u := range sp.PostLogoutRedirectURIs {
			if err := checkURL(u, true); err != nil {
				p.add(entry, "post_logout_redirect_uris", "%q: %v", u, err)
			}
		}
		if len(sp.Scopes) == 0 {
			sp.Scopes = []string{"openid"}
		}
		if !slices.Contains(sp.Scopes, "openid") {
			sp.Scopes = append([]string{"openid"}, sp.Scopes...)
		}
		switch sp.IDTokenSignedResponseAlg {
		case "":
			sp.IDTokenSignedResponseAlg = "ES256"
		case "ES256", "RS256":
		default:
			p.add(entry, "id_token_signed_response_alg", "%q: expected ES256 or RS256", sp.IDTokenSignedResponseAlg)
		}
		pl.validateSPCrypto(entry, sp, p)
		switch sp.Type {
		case "":
			sp.Type = "public"
		case "public", "private":
		default:
			p.add(entry, "type", "%q: expected public or private", sp.Type)
		}
		for _, pr := range sp.Prompts {
			if !slices.Contains([]string{"none", "login", "consent", "select_account"}, pr) {
				p.add(entry, "prompts", "%q: expected none, login, consent or select_account", pr)
			}
		}
		if len(sp.Prompts) == 0 {
			sp.Prompts = []string{"none", "login", "consent", "select_account"}
		}
		for _, c := range sp.Claims {
			if c != "amr" {
				p.add(entry, "claims", "%q: only amr can be allowed beyond the scopes", c)
			}
		}
		for _, f := range []struct {
			name string
			ids  []string
		}{{"idps_allowed", sp.IdPsAllowed}, {"idps_denied", sp.IdPsDenied}, {"idp_hints", sp.IdPHints}} {
			for _, id := range f.ids {
				if !slices.Contains(pl.IdentityProviders, id) {
					p.add(entry, f.name, "unknown IdP %q%s", id, suggestWhere(id, pl.IdentityProviders, "this platform's identity_providers"))
				}
			}
		}
		switch sp.UserinfoSignedResponseAlg {
		case "", "ES256", "RS256":
		default:
			p.add(entry, "userinfo_signed_response_alg", "%q: expected ES256, RS256 or empty for plain JSON", sp.UserinfoSignedResponseAlg)
		}
		if len(sp.TokenEndpointAuthMethods) == 0 {
			sp.TokenEndpointAuthMethods = []string{"client_secret_basic", "client_secret_post"}
			if pl.PrivateKeyJWTOnly() {
				sp.TokenEndpointAuthMethods = []string{"private_key_jwt"}
			}
		}
		secretAuth := slices.Contains(sp.TokenEndpointAuthMethods, "client_secret_basic") || slices.Contains(sp.TokenEndpointAuthMethods, "client_secret_post")
		if secretAuth {
			p.secret(entry, "client_secret", sp.ClientSecret, "")
		}
		for _, m := range sp.TokenEndpointAuthMethods {
			if !slices.Contains(validAuthMethods, m) {
				p.add(entry, "token_endpoint_auth_methods", "%q: expected %s", m, strings.Join(validAuthMethods, " or "))
			}
		}
		if pl.PrivateKeyJWTOnly() {
			if sp.ClientSecret != "" {
				p.add(entry, "client_secret", "platform %s takes private_key_jwt only (FAPI 2.0, fapi.private_key_jwt_only): register the SP's keys in jwks or jwks_uri and drop the secret", pl.ID)
			}
			if secretAuth {
				p.add(entry, "token_endpoint_auth_methods", "platform %s takes private_key_jwt only (FAPI 2.0): set [private_key_jwt]", pl.ID)
			}
		}
	}
}

// validateSPCrypto applies the platform's crypto policy: on plus, ES256
// only and encryption to keys the SP must have registered.
func (pl *Platform) validateSPCrypto(entry string, sp *SP, p *Problems) {
	hasKeys := sp.JWKSURI != "" || sp.JWKS != ""
	checkKeys(entry, sp.JWKSURI, string(sp.JWKS), p)
	if pl.IsPlus() {
		if sp.IDTokenSignedResponseAlg != "ES256" {
			p.add(entry, "id_token_signed_response_alg", "%q: a plus platform signs with ES256 only", sp.IDTokenSignedResponseAlg)
		}
		if sp.UserinfoSignedResponseAlg != "" && sp.UserinfoSignedResponseAlg != "ES256" {
			p.add(entry, "userinfo_signed_response_alg", "%q: a plus platform signs with ES256 only", sp.UserinfoSignedResponseAlg)
		}
		sp.UserinfoSignedResponseAlg = "ES256"
		if !hasKeys {
			p.add(entry, "jwks_uri", "an SP on a plus platform must register jwks_uri or jwks: its id_tokens and userinfo are encrypted to its key")
		}
		if sp.IDTokenEncryptedResponseEnc == "" {
			sp.IDTokenEncryptedResponseEnc = "A256GCM"
		}
		if sp.UserinfoEncryptedResponseEnc == "" {
			sp.UserinfoEncryptedResponseEnc = sp.IDTokenEncryptedResponseEnc
		}
	}
	for _, f := range []struct{ name, alg, enc string }{
		{"id_token_encrypted_response", sp.IDTokenEncryptedResponseAlg, sp.IDTokenEncryptedResponseEnc},
		{"userinfo_encrypted_response", sp.UserinfoEncryptedResponseAlg, sp.UserinfoEncryptedResponseEnc},
	} {
		if f.alg != "" && !slices.Contains(validEncAlgs, f.alg) {
			p.add(entry, f.name+"_alg", "%q: expected %s", f.alg, strings.Join(validEncAlgs, ", "))
		}
		if f.alg != "" && f.enc == "" {
			p.missing(entry, f.name+"_enc", fmt.Sprintf("required with %s_alg (A256GCM)", f.name))
		}
		if f.enc != "" && !slices.Contains(validEnc, f.enc) {
			p.add(entry, f.name+"_enc", "%q: expected A256GCM", f.enc)
		}
		if f.enc != "" && !hasKeys {
			p.add(entry, "jwks_uri", "encryption needs the SP's keys: set jwks_uri or jwks")
		}
	}
	if slices.Contains(sp.TokenEndpointAuthMethods, "private_key_jwt") && !hasKeys {
		p.add(entry, "token_endpoint_auth_methods", "private_key_jwt needs the SP's keys: set jwks_uri or jwks")
	}
}

func (pr *Providers) validate(p *Problems) {
	p.listen("providers", "listen", pr.Listen)
	if err := checkURL(pr.BaseURL, false); err != nil {
		p.add("providers", "base_url", "%v", err)
	}
	pr.BaseURL = strings.TrimSuffix(pr.BaseURL, "/")
	if pr.EIDASNode != nil {
		pr.EIDASNode.validate(pr.BaseURL, p)
	}
	seen := map[string]bool{}
	for i := range pr.IdPs {
		m := &pr.IdPs[i]
		entry := fmt.Sprintf("providers.idps[%d] (%s)", i, m.ID)
		if m.ID == "" {
			p.missing(entry, "id", "")
		} else if strings.ContainsAny(m.ID, "/?#% ") {
			p.add(entry, "id", "%q: must be a plain path segment", m.ID)
		} else if seen[m.ID] {
			p.add(entry, "id", "duplicate id %q", m.ID)
		}
		seen[m.ID] = true
		if m.Name == "" {
			m.Name = m.ID
		}
		if len(m.ACRValues) == 0 {
			p.add(entry, "acr_values", "list the levels this IdP can assert")
		}
		p.levels(entry, "acr_values", m.ACRValues)
		for k, cl := range m.Clients {
			ce := fmt.Sprintf("%s.clients[%d] (%s)", entry, k, cl.ClientID)
			p.required(ce, "client_id", cl.ClientID, "")
			p.secret(ce, "client_secret", cl.ClientSecret, "")
			if len(cl.RedirectURIs) == 0 {
				p.missing(ce, "redirect_uris", "list at least one")
			}
			if cl.BackchannelLogoutURI != "" {
				if err := checkURL(cl.BackchannelLogoutURI, true); err != nil {
					p.add(ce, "backchannel_logout_uri", "%v", err)
				} else if strings.Contains(cl.BackchannelLogoutURI, "#") {
					p.add(ce, "backchannel_logout_uri", "%q: must not contain a fragment", cl.BackchannelLogoutURI)
				}
			}
		}
	}
	pr.validateDataProviders(p)
	if pr.CivilRegistry != nil {
		pr.CivilRegistry.validate(p)
	}
}

func (pr *Providers) validateDataProviders(p *Problems) {
	ids := map[string]bool{}
	clients := map[string]bool{}
	for i := range pr.DataProviders {
		dp := &pr.DataProviders[i]
		entry := fmt.Sprintf("providers.data_providers[%d] (%s)", i, dp.ID)
		switch {
		case dp.ID == "":
			p.missing(entry, "id", "one of "+strings.Join(MockDataProviderAPIs, ", ")+", the API the mock serves")
		case !slices.Contains(MockDataProviderAPIs, dp.ID):
			p.add(entry, "id", "%q: expected one of %s, the API the mock serves%s", dp.ID, strings.Join(MockDataProviderAPIs, ", "), didYouMean(dp.ID, MockDataProviderAPIs))
		case ids[dp.ID]:
			p.add(entry, "id", "duplicate id %q", dp.ID)
		}
		ids[dp.ID] = true
		if dp.Name == "" {
			dp.Name = dp.ID
		}
		if len(dp.Issuers) == 0 {
			p.add(entry, "issuers", "list at least one broker issuer whose tokens this provider accepts")
		}
		issuers := map[string]bool{}
		for _, iss := range dp.Issuers {
			if err := checkURL(iss, false); err != nil {
				p.add(entry, "issuers", "%v", err)
			} else if u, _ := url.Parse(iss); u.Fragment != "" || strings.HasSuffix(u.Path, "/") {
				p.add(entry, "issuers", "%q: must have no fragment or trailing slash", iss)
			} else if issuers[iss] {
				p.add(entry, "issuers", "%q is listed twice", iss)
			}
			issuers[iss] = true
		}
		if dp.ClientID == "" {
			p.missing(entry, "client_id", "the provider's client_id at the brokers")
		} else if clients[dp.ClientID] {
			p.add(entry, "client_id", "duplicate client_id %q", dp.ClientID)
		}
		clients[dp.ClientID] = true
		p.secret(entry, "client_secret", dp.ClientSecret, "")
	}
}

func (d *DemoSP) validate(p *Problems) {
	p.listen("demo_sp", "listen", d.Listen)
	if err := checkURL(d.BaseURL, false); err != nil {
		p.add("demo_sp", "base_url", "%v", err)
	}
	d.BaseURL = strings.TrimSuffix(d.BaseURL, "/")
	if err := checkURL(d.Issuer, false); err != nil {
		p.add("demo_sp", "issuer", "%v", err)
	}
	p.required("demo_sp", "client_id", d.ClientID, "")
	p.required("demo_sp", "client_secret", d.ClientSecret, "")
	if len(d.Scopes) == 0 {
		d.Scopes = []string{"openid", "identite_pivot", "email"}
	}
	if d.ACRValues == "" {
		d.ACRValues = "eidas1"
	}
	if d.Plus != nil {
		if err := checkURL(d.Plus.Issuer, false); err != nil {
			p.add("demo_sp.plus", "issuer", "%v", err)
		}
		p.required("demo_sp.plus", "client_id", d.Plus.ClientID, "")
		switch d.Plus.AuthMethod {
		case "":
			d.Plus.AuthMethod = "private_key_jwt"
		case "private_key_jwt", "client_secret_basic":
		default:
			p.add("demo_sp.plus", "auth_method", "%q: expected private_key_jwt or client_secret_basic", d.Plus.AuthMethod)
		}
		if d.Plus.AuthMethod == "client_secret_basic" && d.Plus.ClientSecret == "" {
			p.missing("demo_sp.plus", "client_secret", "required with client_secret_basic")
		}
		if len(d.Plus.Scopes) == 0 {
			d.Plus.Scopes = d.Scopes
		}
		if d.Plus.ACRValues == "" {
			d.Plus.ACRValues = "eidas2"
		}
	}
	if d.CitizenSpaceURL != "" {
		if err := checkURL(d.CitizenSpaceURL, false); err != nil {
			p.add("demo_sp", "citizen_space_url", "%v", err)
		}
		d.CitizenSpaceURL = strings.TrimSuffix(d.CitizenSpaceURL, "/")
	}
	seen := map[string]bool{}
	for i := range d.DataProviders {
		dp := &d.DataProviders[i]
		e := fmt.Sprintf("demo_sp.data_providers[%d] (%s)", i, dp.ID)
		switch {
		case dp.ID == "":
			p.missing(e, "id", "")
		case !slices.Contains(DemoDataProviderIDs, dp.ID):
			p.add(e, "id", "%q: the demo SP knows the API of %s only%s", dp.ID, strings.Join(DemoDataProviderIDs, ", "), didYouMean(dp.ID, DemoDataProviderIDs))
		case seen[dp.ID]:
			p.add(e, "id", "%q is listed twice", dp.ID)
		}
		seen[dp.ID] = true
		p.required(e, "name", dp.Name, "the citizen reads it as the source of the data")
		// The access token goes to this URL: it must be https (or
		// loopback), carry no user info, query or fragment.
		if err := checkURL(dp.URL, false); err != nil {
			p.add(e, "url", "%v", err)
		} else if strings.ContainsAny(dp.URL, "?#") {
			p.add(e, "url", "%q: must not contain a query or a fragment", dp.URL)
		}
		dp.URL = strings.TrimSuffix(dp.URL, "/")
	}
}

// checkPublicJWKS accepts a JSON Web Key Set of public keys only.
func checkPublicJWKS(raw string) error {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(raw), &set); err != nil {
		return fmt.Errorf("not a JSON Web Key Set: %v", err)
	}
	if len(set.Keys) == 0 {
		return errors.New("holds no key")
	}
	for i, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			return fmt.Errorf("key %d: only valid public keys belong here", i)
		}
	}
	return nil
}

// checkURL accepts absolute http(s) URLs. Plain http is allowed only for
// loopback hosts, because dev runs on localhost and production must not leak
// codes over clear text.
func checkURL(raw string, allowQuery bool) error {
	if raw == "" {
		return errors.New("is missing")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q: expected an absolute https URL", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q: http is allowed only on localhost; use https", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q: must not contain user info", raw)
	}
	if !allowQuery && u.RawQuery != "" {
		return fmt.Errorf("%q: must not contain a query", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validateKeys checks where the platform's signing keys come from: a file
// list or a key directory (whose manifest and key files are read, so
// that check-config reports their problems too), and its HSM.
func (pl *Platform) validateKeys(entry string, p *Problems) {
	if len(pl.SigningKeys) > 0 && pl.SigningKeysDir != "" {
		p.add(entry, "signing_keys_dir", "set signing_keys (files, all current) or signing_keys_dir (a key directory with a manifest), not both")
	}
	if pl.SigningKeysReload < 0 {
		p.add(entry, "signing_keys_reload", "must be positive")
	}
	if pl.SigningKeysReload == 0 {
		pl.SigningKeysReload = Duration(30 * time.Second)
	}
	if pl.JWKSMaxAge < 0 {
		p.add(entry, "jwks_max_age", "must be positive")
	}
	if pl.JWKSMaxAge == 0 {
		pl.JWKSMaxAge = Duration(keys.DefaultJWKSMaxAge)
	}
	if pl.SigningKeysDir != "" {
		for _, msg := range keys.CheckDir(pl.SigningKeysDir) {
			p.add(entry, "signing_keys_dir", "%s: %s", pl.SigningKeysDir, msg)
		}
		if m, err := keys.ReadManifest(pl.SigningKeysDir); err == nil && m.HasHSMKeys() && pl.HSM == nil {
			p.add(entry, "hsm", "the manifest of %s lists keys with hsm_label: configure the platform's hsm (module, token_label, pin_env)", pl.SigningKeysDir)
		}
	}
	if pl.HSM == nil {
		return
	}
	h := pl.HSM
	if pl.SigningKeysDir == "" {
		p.add(entry, "hsm", "needs signing_keys_dir: HSM keys are listed in its manifest with hsm_label")
	}
	if !keys.HSMSupported() {
		p.add(entry, "hsm", "%v", keys.ErrNoPKCS11)
	}
	if h.Module == "" {
		p.missing(entry, "hsm.module", "the path of the PKCS#11 library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)")
	} else if _, err := os.Stat(h.Module); err != nil {
		p.add(entry, "hsm.module", "%v", err)
	}
	p.required(entry, "hsm.token_label", h.TokenLabel, "")
	if h.PINEnv == "" {
		p.missing(entry, "hsm.pin_env", "the name of the environment variable holding the PIN (e.g. SESAME_HSM_PIN)")
	} else if !envName.MatchString(h.PINEnv) {
		p.add(entry, "hsm.pin_env", "%q: expected the name of the environment variable holding the PIN (e.g. SESAME_HSM_PIN), never the PIN itself", h.PINEnv)
	}
}

// didYouMean is "; did you mean "x"?" when word is close to a known
// value, for messages that already list them.
func didYouMean(word string, known []string) string {
	if s := nearest(word, known); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

// suggestWhere is suggest, saying where the known values are defined
// when there are none.
func suggestWhere(word string, known []string, where string) string {
	if len(known) == 0 {
		return " (none defined under " + where + ")"
	}
	return suggest(word, known)
}

func idpIDs(idps []IdP) []string {
	out := make([]string, 0, len(idps))
	for _, i := range idps {
		if i.ID != "" {
			out = append(out, i.ID)
		}
	}
	return out
}

func dataProviderIDs(dps []DataProvider) []string {
	out := make([]string, 0, len(dps))
	for _, d := range dps {
		if d.ID != "" {
			out = append(out, d.ID)
		}
	}
	return out
}

// scopeNames are the scopes an SP or a data provider may name: the
// identity's and the catalogue's.
func scopeNames(catalogue []DataScope) []string {
	out := slices.Clone(IdentityScopes)
	for _, d := range catalogue {
		if d.Scope != "" {
			out = append(out, d.Scope)
		}
	}
	return out
}
