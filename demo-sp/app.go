// Package demosp is the demo service provider: an ordinary OpenID Connect
// relying party of the Sésame broker, built only on go-oidc, x/oauth2 and
// go-jose, so that it shows an administration exactly what its own
// integration must do (state, nonce, PKCE, iss, acr and userinfo checks,
// RP-initiated logout) and, on the "+" platform, what more it takes
// (private_key_jwt, pushed authorization requests, DPoP-bound tokens,
// decrypting the id_token and userinfo, ES256 only).
package demosp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

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
	// sessionTTL and plusSessionTTL match the broker's sessions on each
	// platform, so the demo SP never outlives what it is demonstrating.
	sessionTTL     = 30 * time.Minute
	plusSessionTTL = 10 * time.Minute
	// httpTimeout bounds every call to the broker: a stuck broker must give
	// the citizen an error page, not a spinning tab.
	httpTimeout = 10 * time.Second
)

// App is the demo SP's HTTP handler.
type App struct {
	cfg     config.DemoSP
	secure  bool // cookies get Secure when the SP is served over https
	client  *http.Client
	pages   *web.Renderer
	handler http.Handler
	keys    *spKeys

	// std is the standard platform; plus is nil unless demo_sp.plus is set.
	std, plus *platform

	txs      *store[pending]
	sessions *store[session]

	// data are the data providers called after each login.
	data []dataProvider
}

// pending is a login or logout in progress, bound to the browser by the
// sesame_demosp_tx cookie.
type pending struct {
	Logout   bool
	Platform string // the platform the flow was started on: its id
	State    string
	Nonce    string
	Verifier string
	ACR      string
}

// New builds the demo SP. Discovery of each issuer is lazy and retried, so
// the demo SP starts even when the broker is not up yet. Its keys are read
// from cfg.Keys, or generated when that is empty.
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
	if len(c.Scopes) == 0 {
		c.Scopes = []string{oidc.ScopeOpenID, "identite_pivot", "email"}
	}
	std, err := newPlatform(platformStd, c.Issuer, c.ClientID, c.ClientSecret, "", c.Scopes, c.ACRValues)
	if err != nil {
		return nil, err
	}
	var plus *platform
	if p := c.Plus; p != nil {
		scopes := p.Scopes
		if len(scopes) == 0 {
			scopes = c.Scopes
		}
		if plus, err = newPlatform(platformPlus, p.Issuer, p.ClientID, p.ClientSecret, p.AuthMethod, scopes, p.ACRValues); err != nil {
			return nil, err
		}
		plus.par, plus.dpop = p.PAR, p.DPoP
	}
	var k *spKeys
	if c.Keys != "" {
		k, err = loadKeys(c.Keys)
	} else {
		k, err = generateKeys()
	}
	if err != nil {
		return nil, err
	}
	pages, err := newPages()
	if err != nil {
		return nil, err
	}
	data, err := newDataProviders(c.DataProviders)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: httpTimeout}
	std.calls, std.data = client, newDataClient(http.DefaultTransport)
	if plus != nil {
		plus.calls, plus.data = client, newDataClient(http.DefaultTransport)
		if plus.dpop {
			// One DPoP key for the process, made here, never stored.
			t, err := newDPoPTransport(http.DefaultTransport)
			if err != nil {
				return nil, err
			}
			plus.calls = &http.Client{Timeout: httpTimeout, Transport: t}
			plus.data = newDataClient(t)
		}
	}
	a := &App{
		cfg:      c,
		secure:   base.Scheme == "https",
		client:   client,
		pages:    pages,
		keys:     k,
		std:      std,
		plus:     plus,
		txs:      newStore[pending](),
		sessions: newStore[session](),
		data:     data,
	}
	a.handler = web.SecureHeaders(web.WithCorrelationID(web.WithLanguage(a.routes(), langCookie, a.secure)))
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
	mux.HandleFunc("GET /jwks", a.jwks)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, errNotFound)
	})
	return mux
}

// platforms lists the platforms the demo SP can log in on, standard first.
func (a *App) platforms() []*platform {
	if a.plus == nil {
		return []*platform{a.std}
	}
	return []*platform{a.std, a.plus}
}

// platform returns the platform with the given id; an empty id is the
// standard platform, so forms and scripts written before "+" still work.
func (a *App) platform(id string) (*platform, bool) {
	switch id {
	case "", platformStd:
		return a.std, true
	case platformPlus:
		return a.plus, a.plus != nil
	}
	return nil, false
}

// ctx carries the demo SP's HTTP client to go-oidc and x/oauth2, which both
// read it from the context; without it they would use http.DefaultClient,
// which has no timeout.
func (a *App) ctx(r *http.Request) context.Context {
	return oidc.ClientContext(r.Context(), a.client)
}

// setCookie sets a cookie for ttl; a ttl of 0 makes a browser-session
// cookie, which has no Max-Age.
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
