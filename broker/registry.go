package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker/clientkeys"
	"github.com/sesame-id/sesame/broker/eidas"
	"github.com/sesame-id/sesame/broker/upstream"
	"github.com/sesame-id/sesame/config"
)

// registry is one platform's SPs, data providers, data-scope catalogue
// and IdPs. It is never modified once built: a reload builds a new one
// and swaps the platform's pointer, and every request takes the pointer
// once, at its start (see Platform.reg), so it sees one registry from its
// first lookup to its last, never an SP of the old one with an IdP of the
// new one.
type registry struct {
	clients map[string]*config.SP
	spKeys  map[string]*clientkeys.Keys
	// dps are the data providers by client_id, dpKeys their keys, and
	// dataScopes the catalogue by scope.
	dps        map[string]*config.DataProvider
	dpKeys     map[string]*clientkeys.Keys
	dataScopes map[string]config.DataScope
	// idps are the platform's IdPs, in chooser order.
	idps []upstream.Upstream
	// idpConfigs are the registrations the IdPs were built from, by id,
	// so that a reload keeps the Provider (its discovery, its circuit
	// breaker) of an IdP whose registration did not change.
	idpConfigs map[string]config.IdP
}

// Client implements authreq.Registry.
func (g *registry) Client(id string) (*config.SP, bool) {
	sp, ok := g.clients[id]
	return sp, ok
}

func (g *registry) idp(id string) (upstream.Upstream, bool) {
	for _, u := range g.idps {
		if u.Config().ID == id {
			return u, true
		}
	}
	return nil, false
}

// regKey keys a request's registry in its context, per platform, since
// one request may look at its peers (an IdP's back-channel logout).
type regKey struct{ p *Platform }

// withRegistry pins the platform's current registry in ctx, for the
// whole of one request.
func (p *Platform) withRegistry(ctx context.Context) context.Context {
	return context.WithValue(ctx, regKey{p}, p.current.Load())
}

// reg returns the registry pinned in ctx for this request, or the
// current one outside a request (or on a peer platform).
func (p *Platform) reg(ctx context.Context) *registry {
	if g, ok := ctx.Value(regKey{p}).(*registry); ok {
		return g
	}
	return p.current.Load()
}

// buildRegistry builds the registry of cfg's SPs, data providers and
// IdPs, taking IdP registrations from idps and the catalogue from scopes.
// What prev already holds for an unchanged entry (an SP's fetched keys,
// an IdP's discovery and circuit breaker) is carried over, so a reload
// costs no refetch and does not reset an open circuit. It fails on what
// config validation cannot know: an SP asking for a signing algorithm
// with no key loaded.
func (p *Platform) buildRegistry(cfg config.Platform, idps []config.IdP, scopes []config.DataScope, prev *registry) (*registry, error) {
	g := &registry{
		clients:    map[string]*config.SP{},
		spKeys:     map[string]*clientkeys.Keys{},
		dps:        map[string]*config.DataProvider{},
		dpKeys:     map[string]*clientkeys.Keys{},
		dataScopes: map[string]config.DataScope{},
		idpConfigs: map[string]config.IdP{},
	}
	if prev == nil {
		prev = &registry{}
	}
	// keysFor reuses the previous keys of a party whose key source did
	// not change: a jwks_uri already fetched is not fetched again.
	keysFor := func(jwks, jwksURI string, old *clientkeys.Keys, oldJWKS, oldURI string) (*clientkeys.Keys, error) {
		if old != nil && jwks == oldJWKS && jwksURI == oldURI {
			return old, nil
		}
		return clientkeys.New(jwks, jwksURI, spKeysClient)
	}
	for i := range cfg.ServiceProviders {
		sp := &cfg.ServiceProviders[i]
		if !p.signer.Has(jose.SignatureAlgorithm(sp.IDTokenSignedResponseAlg)) {
			return nil, fmt.Errorf("platform %s: SP %s wants %s id_tokens but no such key is loaded", cfg.ID, sp.ClientID, sp.IDTokenSignedResponseAlg)
		}
		g.clients[sp.ClientID] = sp
		if sp.JWKS == "" && sp.JWKSURI == "" {
			continue
		}
		var oldJWKS, oldURI string
		if o, ok := prev.clients[sp.ClientID]; ok {
			oldJWKS, oldURI = string(o.JWKS), o.JWKSURI
		}
		k, err := keysFor(string(sp.JWKS), sp.JWKSURI, prev.spKeys[sp.ClientID], oldJWKS, oldURI)
		if err != nil {
			return nil, fmt.Errorf("platform %s: SP %s: %w", cfg.ID, sp.ClientID, err)
		}
		g.spKeys[sp.ClientID] = k
	}
	if p.eidas != nil && p.eidas.Proxy != nil {
		if _, taken := g.clients[eidas.ProxyClientID]; taken {
			return nil, fmt.Errorf("platform %s: client_id %s is the eIDAS proxy's own", cfg.ID, eidas.ProxyClientID)
		}
		g.clients[eidas.ProxyClientID] = proxyClient(cfg, idps, p.eidas)
	}
	for i := range cfg.DataProviders {
		dp := &cfg.DataProviders[i]
		g.dps[dp.ClientID] = dp
		if dp.JWKS == "" && dp.JWKSURI == "" {
			continue
		}
		var oldJWKS, oldURI string
		if o, ok := prev.dps[dp.ClientID]; ok {
			oldJWKS, oldURI = o.JWKS, o.JWKSURI
		}
		k, err := keysFor(dp.JWKS, dp.JWKSURI, prev.dpKeys[dp.ClientID], oldJWKS, oldURI)
		if err != nil {
			return nil, fmt.Errorf("platform %s: data provider %s: %w", cfg.ID, dp.ID, err)
		}
		g.dpKeys[dp.ClientID] = k
	}
	for _, d := range scopes {
		g.dataScopes[d.Scope] = d
	}
	byID := map[string]config.IdP{}
	for _, idp := range idps {
		byID[idp.ID] = idp
	}
	for _, id := range cfg.IdentityProviders {
		idp, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("platform %s: unknown IdP %q", cfg.ID, id)
		}
		g.idpConfigs[id] = idp
		if old, ok := prev.idp(id); ok && config.Same(prev.idpConfigs[id], idp) {
			g.idps = append(g.idps, old)
			continue
		}
		up, err := p.newUpstream(cfg, idp)
		if err != nil {
			return nil, fmt.Errorf("platform %s: IdP %s: %w", cfg.ID, id, err)
		}
		g.idps = append(g.idps, up)
	}
	return g, nil
}

// newUpstream builds the upstream of one IdP registration, of its kind.
func (p *Platform) newUpstream(cfg config.Platform, idp config.IdP) (upstream.Upstream, error) {
	if idp.IsEIDAS() {
		if p.eidas == nil {
			return nil, errors.New("an IdP of kind eidas needs the broker's eidas section")
		}
		return eidas.NewConnector(idp, *p.eidas, cfg.Issuer, p.kv)
	}
	return upstream.New(idp, cfg.Issuer+"/idp/callback", cfg.Issuer+"/idp/logout/callback", p.leeway), nil
}

// setRegistry installs g as the platform's registry: requests already
// under way keep the one they started with, new ones get g.
func (p *Platform) setRegistry(g *registry) { p.current.Store(g) }
