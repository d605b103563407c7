// Package demosp is the demo service provider: an ordinary OpenID Connect
// relying party of the Sésame broker, built only on go-oidc and x/oauth2, so
// that it shows an administration exactly what its own integration must do
// (state, nonce, PKCE, iss, acr and userinfo checks, RP-initiated logout).
package demosp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/web"
)

// Cookie names carry the component's prefix because, in dev, the broker, the
// mock IdPs and the demo SP share localhost and browsers ignore ports.
const (
	txCookie      = "sesame_demosp_tx"
	sessionCookie = "sesame_demosp_sid"
)

const (
	// txTTL is how long a citizen may take at the broker and the IdP.
	txTTL = 10 * time.Minute
	// sessionTTL matches the broker's standard session, so the demo SP never
	// outlives what it is demonstrating.
	sessionTTL = 30 * time.Minute
	// httpTimeout bounds every call to the broker: a stuck broker must give
	// the citizen an error page, not a spinning tab.
	httpTimeout = 10 * time.Second
)

// App is the demo SP's HTTP handler.
type App struct {
	cfg        config.DemoSP
	defaultACR string
	secure     bool // cookies get Secure when the SP is served over https
	client     *http.Client
	pages      *web.Renderer
	handler    http.Handler

	txs      *store[pending]
	sessions *store[session]

	discMu sync.Mutex
	disc   *discovery
}

// pending is a login or logout in progress, bound to the browser by the
// sesame_demosp_tx cookie.
type pending struct {
	Logout   bool
	State    string
	Nonce    string
	Verifier string
	ACR      string
}

// discovery is what the demo SP learned from the issuer's metadata.
type discovery struct {
	provider    *oidc.Provider
	oauth       *oauth2.Config
	verifier    *oidc.IDTokenVerifier
	endSession  string
	issRequired bool
}

// New builds the demo SP. Discovery of the issuer is lazy and retried, so the demo SP starts even when the broker is not up yet.
func New(cfg *config.DemoSP) (*App, error) {
	if cfg == nil {
		return nil, errors.New("demosp: no demo_sp configuration")
	}
	c := *cfg
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	base, err := url.Parse(c.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errors.New("demosp: base_url must be an absolute http(s) URL")
	}
	if c.Issuer == "" || c.ClientID == "" {
		return nil, errors.New("demosp: issuer and client_id are required")
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{oidc.ScopeOpenID, "identite_pivot", "email"}
	}
	if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		return nil, errors.New("demosp: scopes must contain openid")
	}
	def := c.ACRValues
	if def == "" {
		def = levels[0]
	}
	if levelRank(def) < 0 {
		return nil, errors.New("demosp: acr_values must be one of " + strings.Join(levels, ", "))
	}
	pages, err := newPages()
	if err != nil {
		return nil, err
	}
	a := &App{
		cfg:        c,
		defaultACR: def,
		secure:     base.Scheme == "https",
		client:     &http.Client{Timeout: httpTimeout},
		pages:      pages,
		txs:        newStore[pending](),
		sessions:   newStore[session](),
	}
	a.handler = web.SecureHeaders(web.WithCorrelationID(a.routes()))
	return a, nil
}

// ServeHTTP serves the demo SP's pages and endpoints.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.handler.ServeHTTP(w, r)
}

func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", web.Assets())
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("GET /me", a.me)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /logged-out", a.loggedOut)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, errNotFound)
	})
	return mux
}

// ctx carries the demo SP's HTTP client to go-oidc and x/oauth2, which both
// read it from the context; without it they would use http.DefaultClient,
// which has no timeout.
func (a *App) ctx(r *http.Request) context.Context {
	return oidc.ClientContext(r.Context(), a.client)
}

// discover fetches the issuer's metadata on first need and keeps it once it
// succeeded; a failure is not cached, so the next request tries again. The
// lock also stops a burst of requests from all hitting a broker that is
// starting up.
func (a *App) discover(r *http.Request) (*discovery, error) {
	a.discMu.Lock()
	defer a.discMu.Unlock()
	if a.disc != nil {
		return a.disc, nil
	}
	p, err := oidc.NewProvider(a.ctx(r), a.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		EndSession  string   `json:"end_session_endpoint"`
		ISSResponse bool     `json:"authorization_response_iss_parameter_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, err
	}
	ep := p.Endpoint()
	// x/oauth2's auto-detection retries a failed exchange with the other
	// method; a spent authorization code cannot be retried, so pick the
	// method the provider says it accepts.
	switch {
	case slices.Contains(meta.AuthMethods, "client_secret_basic"):
		ep.AuthStyle = oauth2.AuthStyleInHeader
	case slices.Contains(meta.AuthMethods, "client_secret_post"):
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	a.disc = &discovery{
		provider: p,
		oauth: &oauth2.Config{
			ClientID:     a.cfg.ClientID,
			ClientSecret: a.cfg.ClientSecret,
			Endpoint:     ep,
			RedirectURL:  a.cfg.BaseURL + "/callback",
			Scopes:       a.cfg.Scopes,
		},
		verifier: p.Verifier(&oidc.Config{
			ClientID:             a.cfg.ClientID,
			SupportedSigningAlgs: []string{oidc.ES256, oidc.RS256},
		}),
		endSession:  meta.EndSession,
		issRequired: meta.ISSResponse,
	}
	return a.disc, nil
}

func (a *App) setCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(ttl.Seconds()),
		HttpOnly: true,
		Secure:   a.secure,
		// Lax, not Strict: the return from the broker is a cross-site
		// top-level navigation, and it must carry the cookie.
		SameSite: http.SameSiteLaxMode,
	})
}

func (a *App) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode,
	})
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}
