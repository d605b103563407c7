package eidas

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sesame-id/sesame/broker/upstream"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/eidas/light"
	"github.com/sesame-id/sesame/internal/store"
)

// Errors of the node's answer, which the broker turns into pages.
var (
	// ErrBadToken: the LightToken is malformed, of another direction,
	// forged (digest) or too old.
	ErrBadToken = errors.New("eidas: light token refused")
	// ErrUnknownMessage: no message under the token's id (never sent,
	// expired, or already used: a replay).
	ErrUnknownMessage = errors.New("eidas: unknown, expired or replayed light message")
)

// Private caches of the bridge (not the node's): the requests it sent,
// kept to check their answers, and the answers it took from the node,
// held for the flow's callback.
const (
	cacheSent     = "sesameBridgeConnectorSent"
	cacheReceived = "sesameBridgeConnectorReceived"
)

// Connector is the upstream of kind eidas: the "Specific Connector" by
// which a citizen of another member state logs in at a French service.
// A trip goes: Start → the country page → Send (a LightRequest in the
// node's cache, its token posted by the browser) → the node's answer at
// Receive → the flow's callback → Finish.
type Connector struct {
	cfg       config.IdP
	countries []config.EIDASCountry
	// issuer is the platform's: it names the requester in LightRequests
	// (the node answers each issuer at its own URL) and prefixes the
	// bridge's pages.
	issuer, nodeURL string
	request         light.Token
	response        light.Token
	toNode          *light.Cache
	fromNode        *light.Cache
	sent            *light.Cache
	received        *light.Cache
	now             func() time.Time
}

var (
	_ upstream.Upstream = (*Connector)(nil)
	_ upstream.Starter  = (*Connector)(nil)
	_ upstream.Finisher = (*Connector)(nil)
)

// NewConnector builds the connector of one platform (issuer) over the
// store it shares with the node.
func NewConnector(idp config.IdP, e config.EIDAS, issuer string, st store.Store) (*Connector, error) {
	req, err := light.NewToken(e.Connector.RequestIssuer, e.Connector.RequestSecret)
	if err != nil {
		return nil, fmt.Errorf("eidas connector request token: %w", err)
	}
	resp, err := light.NewToken(e.Connector.ResponseIssuer, e.Connector.ResponseSecret)
	if err != nil {
		return nil, fmt.Errorf("eidas connector response token: %w", err)
	}
	resp.MaxAge = e.TokenMaxAge.D(0)
	ttl := e.MessageTTL.D(0)
	return &Connector{
		cfg: idp, countries: e.Countries, issuer: issuer, nodeURL: strings.TrimSuffix(e.NodeURL, "/"),
		request: req, response: resp,
		toNode:   light.NewCache(st, light.CacheConnectorRequest, ttl),
		fromNode: light.NewCache(st, light.CacheConnectorResponse, ttl),
		sent:     light.NewCache(st, cacheSent, ttl),
		received: light.NewCache(st, cacheReceived, ttl),
		now:      time.Now,
	}, nil
}

// Config implements upstream.Upstream.
func (c *Connector) Config() config.IdP { return c.cfg }

// Available implements upstream.Upstream: the node's health shows in its
// answers, not in a circuit of the bridge.
func (c *Connector) Available() bool { return true }

// Level implements upstream.Upstream: an eIDAS level of assurance, one
// for one (see ACR).
func (c *Connector) Level(asserted string) (string, bool) { return ACR(asserted) }

// Status implements upstream.Upstream.
func (c *Connector) Status() string {
	if !c.cfg.IsActive() {
		return "switched off"
	}
	return "ok"
}

// Countries are the countries offered on the country page.
func (c *Connector) Countries() []config.EIDASCountry { return c.countries }

// Start implements upstream.Starter: the trip begins on the bridge's
// country page, which carries the state as an authorization URL would.
func (c *Connector) Start(_ context.Context, t upstream.Trip) (string, error) {
	return c.issuer + "/eidas/connector/country?state=" + url.QueryEscape(t.State), nil
}

// Form is an auto-submitted POST of a LightToken to the node.
type Form struct {
	Action, Token string
}

// Send makes the trip's LightRequest for a citizen of country, asking
// for the trip's level and the attributes of scopes; it puts it in the
// node's cache (and keeps a copy to check the answer) and returns the
// form the browser posts to the node. The request id is the trip's
// nonce and the relayState its state, so the answer is bound to the trip
// twice over.
func (c *Connector) Send(ctx context.Context, t upstream.Trip, country string, scopes []string, spName string) (Form, error) {
	known := false
	for _, k := range c.countries {
		known = known || k.Code == country
	}
	if !known {
		return Form{}, fmt.Errorf("eidas: country %q not offered", country)
	}
	loa, ok := LoA(t.ACR)
	if !ok {
		return Form{}, fmt.Errorf("eidas: level %q has no eIDAS equivalent", t.ACR)
	}
	req := &light.Request{
		ID: t.Nonce, Issuer: c.issuer, CitizenCountryCode: country, LevelOfAssurance: loa,
		NameIDFormat: light.NameIDPersistent, ProviderName: spName, SPType: light.SPTypePublic,
		SPCountryCode: "FR", RelayState: t.State, RequestedAttributes: RequestedAttributes(scopes),
	}
	if err := c.sent.PutRequest(ctx, req); err != nil {
		return Form{}, fmt.Errorf("eidas: keep request: %w", err)
	}
	if err := c.toNode.PutRequest(ctx, req); err != nil {
		return Form{}, fmt.Errorf("eidas: send request: %w", err)
	}
	return Form{Action: c.nodeURL + "/SpecificConnectorRequest", Token: c.request.Make(req.ID, c.now())}, nil
}

// Receive takes the node's answer named by token and holds it for the
// flow: it returns the query of the flow's callback (the relayState as
// state, the answer's id as code). The token's size, issuer, digest and
// age are checked, and the answer is taken once: a replayed token finds
// nothing.
func (c *Connector) Receive(ctx context.Context, token string) (url.Values, error) {
	id, err := c.response.Parse(token, c.now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	resp, err := c.fromNode.TakeResponse(ctx, id)
	switch {
	case errors.Is(err, light.ErrUnknownID):
		return nil, fmt.Errorf("%w: %w", ErrUnknownMessage, err)
	case errors.Is(err, light.ErrMalformed):
		return nil, fmt.Errorf("%w: %w", upstream.ErrRejected, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", upstream.ErrUnavailable, err)
	}
	if err := c.received.PutResponse(ctx, resp); err != nil {
		return nil, fmt.Errorf("%w: hold response: %w", upstream.ErrUnavailable, err)
	}
	return url.Values{"state": {resp.RelayState}, "code": {resp.ID}}, nil
}

// Finish implements upstream.Finisher: the answer held by Receive must
// answer this trip's request (inResponseTo, relayState), succeed, come
// from the country asked, and carry a valid identity, which the flow
// then checks like any other (level, registry exemption, preferences).
func (c *Connector) Finish(ctx context.Context, q url.Values, t upstream.Trip) (*upstream.Result, error) {
	resp, err := c.received.TakeResponse(ctx, q.Get("code"))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", upstream.ErrRejected, err)
	}
	req, err := c.sent.TakeRequest(ctx, t.Nonce)
	if err != nil {
		return nil, fmt.Errorf("%w: the request of this trip is gone: %w", upstream.ErrRejected, err)
	}
	switch {
	case resp.InResponseToID != req.ID:
		return nil, fmt.Errorf("%w: eIDAS answer to another request", upstream.ErrRejected)
	case resp.RelayState != req.RelayState || resp.RelayState != t.State:
		return nil, fmt.Errorf("%w: eIDAS answer with another relayState", upstream.ErrRejected)
	case resp.Status.Failure:
		switch resp.Status.SubStatusCode {
		case light.SubStatusAuthnFailed, light.SubStatusRequestDenied, "":
			return nil, &upstream.DeniedError{Code: "access_denied"}
		}
		return nil, fmt.Errorf("%w: eIDAS failure %s", upstream.ErrRejected, shortStatus(resp.Status.SubStatusCode))
	}
	id := Identity(resp)
	if id.Country() != req.CitizenCountryCode {
		return nil, fmt.Errorf("%w: identity of country %q for a request to %q", upstream.ErrRejected, id.Country(), req.CitizenCountryCode)
	}
	return &upstream.Result{
		Subject: id.EIDAS, ACR: resp.LevelOfAssurance, AMR: []string{"eidas"},
		AuthTime: c.now().UTC().Truncate(time.Second), Identity: id,
	}, nil
}

// shortStatus keeps the last part of a SAML status URN, for logs.
func shortStatus(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}
