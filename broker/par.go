package broker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sesame-id/sesame/broker/authreq"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
)

const (
	// requestURIPrefix marks the request_uris this broker issues.
	requestURIPrefix = "urn:ietf:params:oauth:request_uri:"
	// parTTL is a pushed request's life: long enough to send the browser,
	// short enough that a leaked request_uri is soon worthless.
	parTTL = 60 * time.Second
)

// pushed is a validated request waiting for its browser, stored sealed
// under its request_uri.
type pushed struct {
	Request *authreq.Request `json:"req"`
	// Hint is the id_token_hint pushed with it.
	Hint string `json:"hint,omitempty"`
}

// clientAuthParams are the client's credentials, which are no part of
// the authorization request it pushes.
var clientAuthParams = []string{"client_secret", "client_assertion", "client_assertion_type"}

// par is the pushed authorization request endpoint (RFC 9126): the client
// authenticates and posts its authorization request; the broker validates
// it as /authorize would, binds it to the proof's DPoP key when there is
// one, and answers a single-use request_uri for the browser.
func (p *Platform) par(w http.ResponseWriter, r *http.Request) {
	sp, form, proof, ok := p.clientCall(w, r, "/par", func(e *oidcerr.Error) { p.parError(w, r, e) })
	if !ok {
		return
	}
	jkt := ""
	if proof != nil {
		jkt = proof.JKT
	}
	q := url.Values{}
	for k, v := range form {
		q[k] = v
	}
	for _, k := range clientAuthParams {
		q.Del(k)
	}
	switch id := q.Get("client_id"); {
	case id == "":
		q.Set("client_id", sp.ClientID)
	case id != sp.ClientID:
		p.parError(w, r, oidcerr.New(oidcerr.InvalidRequest, "client_id differs from the authenticated client"))
		return
	}
	req, _, oerr := authreq.Parse(q, p.reg(r.Context()), p.authPolicy(r.Context(), true))
	if oerr == nil {
		oerr = p.checkSPPolicy(sp, req)
	}
	if oerr == nil && jkt != "" {
		if req.DPoPJKT != "" && req.DPoPJKT != jkt {
			oerr = oidcerr.New(oidcerr.InvalidRequest, "dpop_jkt differs from the key of the DPoP proof")
		}
		req.DPoPJKT = jkt
	}
	if oerr != nil {
		p.parError(w, r, oerr)
		return
	}
	uri := requestURIPrefix + session.NewID()
	rec, err := p.sessions.Record("par", uri, &pushed{Request: req, Hint: q.Get("id_token_hint")}, parTTL)
	if err == nil {
		err = p.sessions.Write(r.Context(), rec)
	}
	if err != nil {
		p.parError(w, r, storeOAuthError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"request_uri": uri, "expires_in": int(parTTL.Seconds())})
}

func (p *Platform) parError(w http.ResponseWriter, r *http.Request, e *oidcerr.Error) {
	if e.Status == 0 || e.Status == http.StatusUnauthorized && e.Code != oidcerr.InvalidClient {
		e.Status = http.StatusBadRequest
	}
	p.metrics.oauthError(p.cfg.ID, "par", e.Code)
	p.log.InfoContext(r.Context(), "pushed request refused", "error", e.Code, "description", e.Description, "cause", e.Cause)
	e.WriteJSON(w)
}

// authPolicy is the platform's rules for authorization requests.
func (p *Platform) authPolicy(ctx context.Context, pushed bool) authreq.Policy {
	pol := authreq.Policy{
		ACRValues: p.cfg.ACRValues, DefaultACR: p.cfg.DefaultACR, NonceRequired: p.cfg.Nonce == "required",
		ACRErrorCode: p.cfg.ACRError, PKCERequired: p.cfg.RequiresPKCE(), Pushed: pushed,
	}
	for s := range p.reg(ctx).dataScopes {
		pol.DataScopes = append(pol.DataScopes, s)
	}
	return pol
}

// pushedRequest takes the request a request_uri names (RFC 9126 §4): once
// only, for the client that pushed it, which must name itself. Errors
// never redirect: without the request we cannot trust a redirect_uri.
func (p *Platform) pushedRequest(ctx context.Context, q url.Values) (*pushed, *config.SP, *oidcerr.Error) {
	uri, clientID := q.Get("request_uri"), q.Get("client_id")
	if len(q["request_uri"]) != 1 || !strings.HasPrefix(uri, requestURIPrefix) || len(uri) > 128 {
		return nil, nil, oidcerr.New(oidcerr.InvalidRequestURI, "request_uri was not issued by this provider").Page()
	}
	if clientID == "" {
		return nil, nil, oidcerr.New(oidcerr.InvalidRequest, "client_id is required with request_uri").Page()
	}
	var pr pushed
	if err := p.sessions.TakeRecord(ctx, "par", uri, &pr); err != nil {
		if oe := storeOAuthError(err); oe.Code == oidcerr.TemporarilyUnavailable {
			return nil, nil, oe.Page()
		}
		return nil, nil, oidcerr.New(oidcerr.InvalidRequestURI, "request_uri is unknown, expired or already used").Page()
	}
	sp, ok := p.reg(ctx).Client(clientID)
	if pr.Request == nil || pr.Request.ClientID != clientID || !ok || !sp.IsActive() {
		return nil, nil, oidcerr.New(oidcerr.InvalidRequestURI, "request_uri was pushed by another client").Page()
	}
	return &pr, sp, nil
}
