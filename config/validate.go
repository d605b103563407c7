package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// KnownACR are the levels Sésame understands, lowest first.
var KnownACR = []string{"eidas1", "eidas2", "eidas3"}

// Problems lists every validation error of a file, each naming the entry
// and the field, so an operator fixes them all in one pass.
type Problems struct {
	File  string
	Items []string
}

func (p *Problems) Error() string {
	return fmt.Sprintf("%s: %d problem(s):\n  - %s", p.File, len(p.Items), strings.Join(p.Items, "\n  - "))
}

// Is lets callers test for ErrInvalid.
func (p *Problems) Is(target error) bool { return target == ErrInvalid }

func (p *Problems) add(entry, field, format string, args ...any) {
	p.Items = append(p.Items, fmt.Sprintf("%s: %s: %s", entry, field, fmt.Sprintf(format, args...)))
}

// Validate checks every section present and fills defaults.
func (c *Config) Validate() error {
	p := &Problems{File: c.File}
	if c.Broker == nil && c.Providers == nil && c.DemoSP == nil {
		p.add("(file)", "broker/providers/demo_sp", "at least one section is required")
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
	if len(p.Items) > 0 {
		return p
	}
	return nil
}

func (b *Broker) validate(p *Problems) {
	if len(b.SubSecret) < 32 {
		p.add("broker", "sub_secret", "must be at least 32 characters (it keys the pairwise sub HMAC)")
	}
	if len(b.SessionKeys) == 0 {
		p.add("broker", "session_keys", "at least one base64 32-byte key is required (generate one with `sesame keys session`)")
	}
	switch b.Theme {
	case "":
		b.Theme = "neutral"
	case "dsfr", "neutral":
	default:
		p.add("broker", "theme", "%q: expected dsfr or neutral", b.Theme)
	}
	if b.Redis.URL != "" && len(b.Redis.Addrs) > 0 {
		p.add("broker", "redis", "set url or addrs, not both")
	}
	if b.Redis.URL != "" {
		if u, err := url.Parse(b.Redis.URL); err != nil || !slices.Contains([]string{"redis", "rediss", "unix"}, u.Scheme) {
			p.add("broker", "redis.url", "expected redis://, rediss:// or unix:// URL")
		}
	}

	idps := map[string]bool{}
	for i := range b.IdentityProviders {
		idp := &b.IdentityProviders[i]
		entry := fmt.Sprintf("broker.identity_providers[%d] (%s)", i, idp.ID)
		if idp.ID == "" {
			p.add(entry, "id", "is required")
		} else if idps[idp.ID] {
			p.add(entry, "id", "duplicate id %q", idp.ID)
		}
		idps[idp.ID] = true
		if idp.Name == "" {
			idp.Name = idp.ID
		}
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
		if idp.ClientID == "" {
			p.add(entry, "client_id", "is required")
		}
		if len(idp.ClientSecret) < 32 {
			p.add(entry, "client_secret", "must be at least 32 characters")
		}
		if len(idp.ACRValues) == 0 {
			p.add(entry, "acr_values", "list the levels this IdP may assert (eidas1, eidas2, eidas3)")
		}
		for _, a := range idp.ACRValues {
			if !slices.Contains(KnownACR, a) {
				p.add(entry, "acr_values", "%q: expected one of %s", a, strings.Join(KnownACR, ", "))
			}
		}
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

	if len(b.Platforms) == 0 {
		p.add("broker", "platforms", "at least one platform is required")
	}
	ids := map[string]bool{}
	namespaces := map[string]bool{}
	cookies := map[string]bool{}
	for i := range b.Platforms {
		pl := &b.Platforms[i]
		entry := fmt.Sprintf("broker.platforms[%d] (%s)", i, pl.ID)
		if pl.ID == "" {
			p.add(entry, "id", "is required")
		} else if ids[pl.ID] {
			p.add(entry, "id", "duplicate id %q", pl.ID)
		}
		ids[pl.ID] = true
		if _, _, err := net.SplitHostPort(pl.Listen); err != nil {
			p.add(entry, "listen", "expected host:port, got %q", pl.Listen)
		}
		if err := checkURL(pl.Issuer, false); err != nil {
			p.add(entry, "issuer", "%v", err)
		} else if u, _ := url.Parse(pl.Issuer); u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/") {
			p.add(entry, "issuer", "must have no query, fragment or trailing slash")
		}
		if len(pl.ACRValues) == 0 {
			pl.ACRValues = []string{"eidas1"}
		}
		for _, a := range pl.ACRValues {
			if !slices.Contains(KnownACR, a) {
				p.add(entry, "acr_values", "%q: expected one of %s", a, strings.Join(KnownACR, ", "))
			}
		}
		if pl.DefaultACR == "" {
			pl.DefaultACR = pl.ACRValues[0]
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
		if len(pl.IdentityProviders) == 0 {
			p.add(entry, "identity_providers", "list at least one IdP id")
		}
		for _, id := range pl.IdentityProviders {
			if !idps[id] {
				p.add(entry, "identity_providers", "%q is not defined under broker.identity_providers", id)
			}
		}
		pl.validateSPs(entry, p)
	}
}

var validAuthMethods = []string{"client_secret_basic", "client_secret_post"}

func (pl *Platform) validateSPs(platform string, p *Problems) {
	clients := map[string]bool{}
	for j := range pl.ServiceProviders {
		sp := &pl.ServiceProviders[j]
		entry := fmt.Sprintf("%s.service_providers[%d] (%s)", platform, j, sp.ClientID)
		if sp.ClientID == "" {
			p.add(entry, "client_id", "is required")
		} else if clients[sp.ClientID] {
			p.add(entry, "client_id", "duplicate client_id %q", sp.ClientID)
		}
		clients[sp.ClientID] = true
		if len(sp.ClientSecret) < 32 {
			p.add(entry, "client_secret", "must be at least 32 characters")
		}
		if sp.Name == "" {
			sp.Name = sp.ClientID
		}
		if sp.Sector == "" {
			p.add(entry, "sector", "is required: SPs of one sector share pairwise subs")
		}
		if len(sp.RedirectURIs) == 0 {
			p.add(entry, "redirect_uris", "at least one is required")
		}
		for _, u := range sp.RedirectURIs {
			if err := checkURL(u, true); err != nil {
				p.add(entry, "redirect_uris", "%q: %v", u, err)
			} else if strings.Contains(u, "#") {
				p.add(entry, "redirect_uris", "%q: must not contain a fragment", u)
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
		switch sp.UserinfoSignedResponseAlg {
		case "", "ES256", "RS256":
		default:
			p.add(entry, "userinfo_signed_response_alg", "%q: expected ES256, RS256 or empty for plain JSON", sp.UserinfoSignedResponseAlg)
		}
		if len(sp.TokenEndpointAuthMethods) == 0 {
			sp.TokenEndpointAuthMethods = validAuthMethods
		}
		for _, m := range sp.TokenEndpointAuthMethods {
			if !slices.Contains(validAuthMethods, m) {
				p.add(entry, "token_endpoint_auth_methods", "%q: expected %s", m, strings.Join(validAuthMethods, " or "))
			}
		}
	}
}

func (pr *Providers) validate(p *Problems) {
	if _, _, err := net.SplitHostPort(pr.Listen); err != nil {
		p.add("providers", "listen", "expected host:port, got %q", pr.Listen)
	}
	if err := checkURL(pr.BaseURL, false); err != nil {
		p.add("providers", "base_url", "%v", err)
	}
	pr.BaseURL = strings.TrimSuffix(pr.BaseURL, "/")
	seen := map[string]bool{}
	for i := range pr.IdPs {
		m := &pr.IdPs[i]
		entry := fmt.Sprintf("providers.idps[%d] (%s)", i, m.ID)
		if m.ID == "" || strings.ContainsAny(m.ID, "/?#% ") {
			p.add(entry, "id", "is required and must be a plain path segment")
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
		for _, a := range m.ACRValues {
			if !slices.Contains(KnownACR, a) {
				p.add(entry, "acr_values", "%q: expected one of %s", a, strings.Join(KnownACR, ", "))
			}
		}
		for k, cl := range m.Clients {
			ce := fmt.Sprintf("%s.clients[%d] (%s)", entry, k, cl.ClientID)
			if cl.ClientID == "" {
				p.add(ce, "client_id", "is required")
			}
			if len(cl.ClientSecret) < 32 {
				p.add(ce, "client_secret", "must be at least 32 characters")
			}
			if len(cl.RedirectURIs) == 0 {
				p.add(ce, "redirect_uris", "at least one is required")
			}
		}
	}
}

func (d *DemoSP) validate(p *Problems) {
	if _, _, err := net.SplitHostPort(d.Listen); err != nil {
		p.add("demo_sp", "listen", "expected host:port, got %q", d.Listen)
	}
	if err := checkURL(d.BaseURL, false); err != nil {
		p.add("demo_sp", "base_url", "%v", err)
	}
	d.BaseURL = strings.TrimSuffix(d.BaseURL, "/")
	if err := checkURL(d.Issuer, false); err != nil {
		p.add("demo_sp", "issuer", "%v", err)
	}
	if d.ClientID == "" {
		p.add("demo_sp", "client_id", "is required")
	}
	if d.ClientSecret == "" {
		p.add("demo_sp", "client_secret", "is required")
	}
	if len(d.Scopes) == 0 {
		d.Scopes = []string{"openid", "identite_pivot", "email"}
	}
	if d.ACRValues == "" {
		d.ACRValues = "eidas1"
	}
}

// checkURL accepts absolute http(s) URLs. Plain http is allowed only for
// loopback hosts, because dev runs on localhost and production must not leak
// codes over clear text.
func checkURL(raw string, allowQuery bool) error {
	if raw == "" {
		return errors.New("is required")
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
