package eidas

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/eidas/light"
	"github.com/sesame-id/sesame/internal/store"
)

// ProxyClientID is the broker's own client through which the proxy
// service logs a French citizen in for a foreign SP: registered on each
// platform when the proxy is configured, it gets its codes at the
// platform's /eidas/proxy/callback and redeems them in process.
const ProxyClientID = "eidas-proxy"

// ProxyClientName is the proxy's client as the citizen reads it, on
// the information page and in the citizen space's history.
const ProxyClientName = "Service d'un autre pays européen (eIDAS)"

// ProxySector is the prefix of the sector of a foreign SP's country: the
// PersonIdentifier sent abroad is pairwise per destination country.
const ProxySector = "eidas-proxy:"

// Proxy is the "Specific Proxy Service": it takes the node's
// LightRequests for French citizens and answers LightResponses.
type Proxy struct {
	nodeURL  string
	request  light.Token
	response light.Token
	fromNode *light.Cache
	toNode   *light.Cache
	issuer   string
	now      func() time.Time
}

// NewProxy builds the proxy service over the store it shares with the
// node.
func NewProxy(e config.EIDAS, st store.Store) (*Proxy, error) {
	if e.Proxy == nil {
		return nil, errors.New("eidas: no proxy configured")
	}
	req, err := light.NewToken(e.Proxy.RequestIssuer, e.Proxy.RequestSecret)
	if err != nil {
		return nil, fmt.Errorf("eidas proxy request token: %w", err)
	}
	req.MaxAge = e.TokenMaxAge.D(0)
	resp, err := light.NewToken(e.Proxy.ResponseIssuer, e.Proxy.ResponseSecret)
	if err != nil {
		return nil, fmt.Errorf("eidas proxy response token: %w", err)
	}
	ttl := e.MessageTTL.D(0)
	return &Proxy{
		nodeURL: strings.TrimSuffix(e.NodeURL, "/"), request: req, response: resp,
		fromNode: light.NewCache(st, light.CacheProxyserviceRequest, ttl),
		toNode:   light.NewCache(st, light.CacheProxyserviceResponse, ttl),
		issuer:   "FR Sésame eIDAS bridge - ProxyService",
		now:      time.Now,
	}, nil
}

// Receive checks the node's token and takes its LightRequest, once.
func (p *Proxy) Receive(ctx context.Context, token string) (*light.Request, error) {
	id, err := p.request.Parse(token, p.now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	req, err := p.fromNode.TakeRequest(ctx, id)
	switch {
	case errors.Is(err, light.ErrUnknownID):
		return nil, fmt.Errorf("%w: %w", ErrUnknownMessage, err)
	case errors.Is(err, light.ErrMalformed):
		return nil, fmt.Errorf("%w: %w", ErrBadToken, err)
	case err != nil:
		return nil, err
	}
	return req, nil
}

// Level is the Sésame level a foreign SP's request asks for, or an error
// naming why it cannot be served (a non-notified level, say).
func Level(req *light.Request) (string, error) {
	acr, ok := ACR(req.LevelOfAssurance)
	if !ok {
		return "", fmt.Errorf("eidas: level of assurance %q is not a notified level", req.LevelOfAssurance)
	}
	return acr, nil
}

// Answer puts the LightResponse in the node's cache and returns the form
// the browser posts to the node.
func (p *Proxy) Answer(ctx context.Context, resp *light.Response) (Form, error) {
	resp.ID = light.NewID()
	resp.Issuer = p.issuer
	if err := p.toNode.PutResponse(ctx, resp); err != nil {
		return Form{}, fmt.Errorf("eidas: answer the node: %w", err)
	}
	return Form{Action: p.nodeURL + "/SpecificProxyServiceResponse", Token: p.response.Make(resp.ID, p.now())}, nil
}

// Success is the LightResponse of a login: the subject pairwise for the
// SP's country, the level reached, and the attributes asked for.
func Success(req *light.Request, sub, acr string, attrs []light.Attribute) *light.Response {
	loa, _ := LoA(acr)
	return &light.Response{
		InResponseToID: req.ID, RelayState: req.RelayState,
		Subject: sub, SubjectNameIDFormat: light.NameIDPersistent, LevelOfAssurance: loa,
		Status: light.Status{StatusCode: light.StatusSuccess}, Attributes: attrs,
	}
}

// Failure is the LightResponse of a login that did not happen, for an
// OAuth error code: Responder/AuthnFailed for the citizen's cancel or an
// authentication failure, Requester/RequestDenied for a request the
// bridge cannot serve. The message is "[code]: description", from our
// own catalogue, never an IdP's text.
func Failure(req *light.Request, code, description string) *light.Response {
	st := light.Status{Failure: true, StatusCode: light.StatusResponder, SubStatusCode: light.SubStatusAuthnFailed}
	if code == "invalid_request" || code == "unmet_authentication_requirements" {
		st.StatusCode, st.SubStatusCode = light.StatusRequester, light.SubStatusRequestDenied
	}
	st.StatusMessage = "[" + code + "]: " + description
	return &light.Response{InResponseToID: req.ID, RelayState: req.RelayState, Status: st}
}
