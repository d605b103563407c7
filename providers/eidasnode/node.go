// Package eidasnode is the mock eIDAS node: a real HTTP server speaking the
// eIDAS-Node's light protocol (internal/eidas/light) to Sésame's bridge,
// in both directions.
//
//   - Connector side (a foreign citizen logs in to a French SP): the bridge
//     posts a LightToken to SpecificConnectorRequest; the node takes the
//     LightRequest from the shared store and shows the demo IdP of the
//     citizen's country, with a few test citizens, a level of assurance
//     and failure scenarios; it answers with a LightResponse and an
//     auto-submitted form to the bridge.
//   - Proxy-service side (a French citizen logs in to a foreign SP): the
//     mock foreign SP page builds a LightRequest and posts its token to
//     the bridge; the bridge's answer comes back to
//     SpecificProxyServiceResponse, where the node checks it and shows
//     what the foreign SP would receive.
//
// Messages wait in the four EC caches of a store.Store shared with the
// bridge: the broker's memory store inside `sesame dev`, Redis otherwise.
package eidasnode

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/eidas/light"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/web"
)

//go:embed templates/*.html
var templatesFS embed.FS

// autosubmitJS submits the page's form once loaded: the CSP forbids
// inline script, so it is a file of its own; without JavaScript the form's
// button does the same.
const autosubmitJS = `document.addEventListener("DOMContentLoaded", function () {
  var f = document.getElementById("autopost");
  if (f) { f.submit(); }
});
`

// maxBody bounds every request body: a token form is about 1 KB.
const maxBody = 64 << 10

// Lifetimes of the node's own state, kept in the same store.
const (
	// loginTTL is how long a tester may stay on the demo IdP page.
	loginTTL = 15 * time.Minute
	// sentTTL is how long the mock SP waits for the bridge's answer (a
	// French citizen's whole login at Sésame).
	sentTTL = 30 * time.Minute
)

// Scenario is what the demo IdP answers.
type Scenario string

// The scenarios of the demo IdP page.
const (
	// ScenarioSuccess: the citizen's identity at the chosen level.
	ScenarioSuccess Scenario = "success"
	// ScenarioCancelled: the citizen cancelled (Requester/RequestDenied).
	ScenarioCancelled Scenario = "cancelled"
	// ScenarioAuthnFailed: the authentication failed (Responder/AuthnFailed).
	ScenarioAuthnFailed Scenario = "authn_failed"
	// ScenarioLoATooLow: a success at a level below the one asked.
	ScenarioLoATooLow Scenario = "loa_too_low"
	// ScenarioBadDigest: a good response under a token signed with the
	// wrong secret.
	ScenarioBadDigest Scenario = "bad_digest"
	// ScenarioExpiredToken: a token dated an hour ago.
	ScenarioExpiredToken Scenario = "expired_token"
	// ScenarioUnknownRequest: a response to a request id the bridge never
	// sent.
	ScenarioUnknownRequest Scenario = "unknown_request"
	// ScenarioWrongRelayState: a response whose relayState was changed.
	ScenarioWrongRelayState Scenario = "wrong_relay_state"
)

// Scenarios lists them in the page's order.
var Scenarios = []Scenario{ScenarioSuccess, ScenarioCancelled, ScenarioAuthnFailed, ScenarioLoATooLow,
	ScenarioBadDigest, ScenarioExpiredToken, ScenarioUnknownRequest, ScenarioWrongRelayState}

// belowLow is the level answered by ScenarioLoATooLow when low was asked:
// a non-notified level, which satisfies no notified one.
const belowLow = "urn:sesame:mock:loa:none"

// Node is the mock eIDAS node; it is an http.Handler serving every path
// under its BaseURL.
type Node struct {
	base string // BaseURL without trailing slash
	path string // its URL path
	cfg  config.EIDASNode
	st   store.Store

	connReq, connResp, proxyReq, proxyResp light.Token
	// The caches, named for who writes them.
	connReqCache, connRespCache, proxyReqCache, proxyRespCache *light.Cache

	pages   *web.Renderer
	handler http.Handler
	log     *slog.Logger
	// now is the clock of tokens; tests move it.
	now func() time.Time
}

// New builds the node of cfg over st, the store shared with the bridge.
// cfg must have passed config validation (BaseURL is then set).
func New(cfg config.EIDASNode, st store.Store) (*Node, error) {
	if st == nil {
		return nil, errors.New("eidasnode: no store")
	}
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("eidasnode: base_url %q: expected an absolute http(s) URL", cfg.BaseURL)
	}
	if len(cfg.ConnectorResponseURLs) == 0 || cfg.ProxyRequestURL == "" {
		return nil, errors.New("eidasnode: connector_response_urls and proxy_request_url are required")
	}
	n := &Node{base: base, path: strings.TrimSuffix(u.Path, "/"), cfg: cfg, st: st, log: slog.Default(), now: time.Now}
	for _, t := range []struct {
		dst            *light.Token
		issuer, secret string
		field          string
	}{
		{&n.connReq, light.IssuerConnectorRequest, cfg.ConnectorRequestSecret, "connector_request_secret"},
		{&n.connResp, light.IssuerConnectorResponse, cfg.ConnectorResponseSecret, "connector_response_secret"},
		{&n.proxyReq, light.IssuerProxyserviceRequest, cfg.ProxyRequestSecret, "proxy_request_secret"},
		{&n.proxyResp, light.IssuerProxyserviceResponse, cfg.ProxyResponseSecret, "proxy_response_secret"},
	} {
		tok, err := light.NewToken(t.issuer, t.secret)
		if err != nil {
			return nil, fmt.Errorf("eidasnode: %s: %w", t.field, err)
		}
		tok.MaxAge = cfg.TokenMaxAge.D(light.DefaultTokenMaxAge)
		*t.dst = tok
	}
	n.connReqCache = light.NewCache(st, light.CacheConnectorRequest, 0)
	n.connRespCache = light.NewCache(st, light.CacheConnectorResponse, 0)
	n.proxyReqCache = light.NewCache(st, light.CacheProxyserviceRequest, 0)
	n.proxyRespCache = light.NewCache(st, light.CacheProxyserviceResponse, 0)
	if n.pages, err = web.NewRenderer(web.ThemeNeutral, "Nœud eIDAS de test", templatesFS, "templates/*.html"); err != nil {
		return nil, fmt.Errorf("eidasnode: %w", err)
	}
	mux := http.NewServeMux()
	p := n.path
	mux.HandleFunc("GET "+p+"/{$}", n.index)
	mux.HandleFunc("GET "+p+"/autosubmit.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write([]byte(autosubmitJS))
	})
	mux.HandleFunc("POST "+p+"/SpecificConnectorRequest", n.connectorRequest)
	mux.HandleFunc("POST "+p+"/idp", n.idpSubmit)
	mux.HandleFunc("GET "+p+"/sp", n.spForm)
	mux.HandleFunc("POST "+p+"/sp", n.spSubmit)
	mux.HandleFunc("POST "+p+"/SpecificProxyServiceResponse", n.proxyResponse)
	// Assets are served by the providers' server at /static/; anything
	// else under the node is a clean 404 page.
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) { n.pages.RenderError(w, r, web.ErrNotFound) })
	n.handler = web.WithCorrelationID(web.SecureHeaders(mux))
	return n, nil
}

// ServeHTTP serves the node's pages and endpoints.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) { n.handler.ServeHTTP(w, r) }

// BaseURL returns the node's public URL (no trailing slash).
func (n *Node) BaseURL() string { return n.base }

// SetClock replaces the node's clock (token dates); for tests.
func (n *Node) SetClock(now func() time.Time) { n.now = now }

// Person-facing errors of the node. Codes start with S75 (S7: the mocks).
var (
	errBadForm = web.Error{Code: "S750400", Status: http.StatusBadRequest,
		MessageFR: "Le formulaire reçu par le nœud eIDAS de test est illisible ou incomplet.",
		MessageEN: "The form the test eIDAS node received is unreadable or incomplete."}
	errBadToken = web.Error{Code: "S750401", Status: http.StatusBadRequest,
		MessageFR: "Le jeton (LightToken) reçu est refusé : mal formé, d'un autre émetteur, d'empreinte fausse ou expiré.",
		MessageEN: "The LightToken received is refused: malformed, from another issuer, with a wrong digest, or expired."}
	errUnknownMessage = web.Error{Code: "S750402", Status: http.StatusBadRequest,
		MessageFR: "Aucun message n'attend sous ce jeton : inconnu, expiré ou déjà utilisé (rejeu).",
		MessageEN: "No message waits under this token: unknown, expired or already used (replay)."}
	errBadMessage = web.Error{Code: "S750403", Status: http.StatusBadRequest,
		MessageFR: "Le message (LightRequest ou LightResponse) lu dans le cache est invalide.",
		MessageEN: "The message (LightRequest or LightResponse) read from the cache is invalid."}
	errUnknownRequest = web.Error{Code: "S750404", Status: http.StatusBadRequest,
		MessageFR: "La réponse ne correspond à aucune demande envoyée par ce service de test (inResponseToId inconnu).",
		MessageEN: "The response matches no request this test service sent (unknown inResponseToId)."}
	errRelayState = web.Error{Code: "S750405", Status: http.StatusBadRequest,
		MessageFR: "La réponse ne rapporte pas l'état (relayState) de la demande : elle est refusée.",
		MessageEN: "The response does not carry the request's relayState back: it is refused."}
	errNoConnector = web.Error{Code: "S750406", Status: http.StatusBadRequest,
		MessageFR: "Le nœud de test ne sait pas où répondre à l'émetteur de cette demande (connector_response_urls).",
		MessageEN: "The test node does not know where to answer this request's issuer (connector_response_urls)."}
	errLoginGone = web.Error{Code: "S750410", Status: http.StatusBadRequest,
		MessageFR: "Cette connexion de test a expiré ou a déjà été terminée. Recommencez depuis le service.",
		MessageEN: "This test login has expired or was already finished. Start again from the service."}
	errUnavailable = web.Error{Code: "S750503", Status: http.StatusServiceUnavailable,
		MessageFR: "Le stockage partagé du nœud eIDAS de test ne répond pas. Réessayez dans une minute.",
		MessageEN: "The test eIDAS node's shared store does not answer. Try again in a minute."}
)

// fail renders e, logging the detail that the page does not show.
func (n *Node) fail(w http.ResponseWriter, r *http.Request, e web.Error, detail error) {
	n.log.WarnContext(r.Context(), "eidasnode: refused", "code", e.Code, "path", r.URL.Path, "err", detail,
		"correlation_id", web.CorrelationID(r.Context()))
	n.pages.RenderError(w, r, e)
}

// storeFault maps a cache error: a store outage is a 503, anything else
// an unknown message.
func (n *Node) storeFault(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, light.ErrUnknownID) {
		n.fail(w, r, errUnknownMessage, err)
		return
	}
	if errors.Is(err, light.ErrMalformed) {
		n.fail(w, r, errBadMessage, err)
		return
	}
	n.fail(w, r, errUnavailable, err)
}

func (n *Node) form(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		n.fail(w, r, errBadForm, err)
		return false
	}
	return true
}

// autopost renders the auto-submitted form carrying token to action.
func (n *Node) autopost(w http.ResponseWriter, r *http.Request, title, action, token string) {
	n.pages.Render(w, r, http.StatusOK, "autopost.html", web.Page{
		Title: title, Lang: web.PreferredLang(r),
		Body: struct{ Action, Token, Script string }{action, token, n.path + "/autosubmit.js"},
	})
}

// putJSON and takeJSON keep the node's own state in the shared store, so
// that a node of several replicas behaves as one.
func (n *Node) putJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("eidasnode: encode %s: %w", key, err)
	}
	if err := n.st.Put(ctx, "eidasnode:"+key, b, ttl); err != nil {
		return fmt.Errorf("eidasnode: store %s: %w", strings.SplitN(key, ":", 2)[0], err)
	}
	return nil
}

func (n *Node) takeJSON(ctx context.Context, key string, v any) error {
	b, err := n.st.Take(ctx, "eidasnode:"+key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("eidasnode: decode %s: %w", strings.SplitN(key, ":", 2)[0], err)
	}
	return nil
}

func (n *Node) index(w http.ResponseWriter, r *http.Request) {
	type country struct {
		Code, Name string
		Citizens   []Citizen
	}
	var cs []country
	for _, c := range countryCodes() {
		cs = append(cs, country{c, Countries[c], citizens[c]})
	}
	n.pages.Render(w, r, http.StatusOK, "index.html", web.Page{
		Title: "Nœud eIDAS de test", Lang: web.PreferredLang(r),
		Body: struct {
			Base      string
			Countries []country
			Scenarios []Scenario
		}{n.base, cs, Scenarios},
	})
}

// clientIP is the browser's address as the node sees it, for the
// LightResponse's ipAddress.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || len(host) > 64 {
		return ""
	}
	return host
}
