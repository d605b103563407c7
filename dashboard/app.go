package dashboard

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/mail"
	"github.com/sesame-id/sesame/internal/seal"
	"github.com/sesame-id/sesame/internal/web"
)

// Cookie names carry the component's prefix because, in development, the
// broker, the mock IdPs, the demo SP and the space share localhost, and
// browsers ignore ports.
const (
	sessionCookie = "sesame_espace"
	txCookie      = "sesame_espace_tx"
	langCookie    = "sesame_espace_lang"
	reportCookie  = "sesame_espace_signalement"
)

const (
	// sessionTTL is short and fixed from the login: the space shows a
	// person's whole trail, on computers that may be shared.
	sessionTTL = 15 * time.Minute
	// txTTL is how long a citizen may take at the broker and the IdP.
	txTTL = 10 * time.Minute
	// httpTimeout bounds every call to the broker: a stuck broker must
	// give the citizen an error page, not a spinning tab.
	httpTimeout = 10 * time.Second
	// storeTimeout bounds every call to the history store.
	storeTimeout = 5 * time.Second
	// maxForm bounds the forms, a few short fields each (the accounts
	// form has one per IdP).
	maxForm = 16 << 10
)

//go:embed templates
var templates embed.FS

// App is the citizen space's HTTP handler.
type App struct {
	cfg    config.Dashboard
	store  history.Store
	mailer mail.Mailer
	log    *slog.Logger
	opt    options
	box    *seal.Box
	// secure gives cookies Secure when the space is served over https.
	secure bool
	// pages has one renderer per language, since the layout's brand line
	// is fixed per renderer; menu renders the menu partial.
	pages      map[string]*web.Renderer
	menu       *template.Template
	idpNames   map[string]string
	dataScopes map[string]config.DataScope
	broker     *brokerClient
	reports    *limiter
	handler    http.Handler
}

// Option adjusts what New builds.
type Option func(*options)

type options struct {
	retention     time.Duration
	now           func() time.Time
	client        *http.Client
	platformNames map[string]string
	dpNames       map[string]string
	reportLimit   int
	reportWindow  time.Duration
	proxies       []netip.Prefix
}

// WithRetention is how far back the history is shown; it should be the
// history store's retention (config.History.Retention). Default:
// config.DefaultRetention, six months, as FranceConnect shows.
func WithRetention(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.retention = d
		}
	}
}

// WithClock makes the space read the time from now (tests of the
// retention and of session expiry).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// WithHTTPClient is the client of the calls to the broker (default: a
// 10-second timeout over http.DefaultTransport).
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) {
		if c != nil {
			o.client = c
		}
	}
}

// WithPlatformNames names the broker's platforms in the history, by
// platform id (default: std is "Sésame", plus "Sésame+"; an unknown id is
// shown as is).
func WithPlatformNames(names map[string]string) Option {
	return func(o *options) {
		for k, v := range names {
			o.platformNames[k] = v
		}
	}
}

// WithDataProviderNames names the data providers in the history, keyed
// by what the rows hold in DataProvider (the broker writes the data
// provider's client_id there); default: that value as is.
func WithDataProviderNames(names map[string]string) Option {
	return func(o *options) {
		for k, v := range names {
			o.dpNames[k] = v
		}
	}
}

// DataProviderNames are the names of the data providers of b's
// platforms, keyed by client_id as the history rows hold them, for
// WithDataProviderNames: without them the space would show the citizen a
// client_id ("dp-dgfip") as the administration that received their data.
// A nil b (a space configured without the broker's section) gives none.
func DataProviderNames(b *config.Broker) map[string]string {
	names := map[string]string{}
	if b == nil {
		return names
	}
	for _, pl := range b.Platforms {
		for _, dp := range pl.DataProviders {
			if dp.Name != "" {
				names[dp.ClientID] = dp.Name
			}
		}
	}
	return names
}

// WithReportRateLimit lets each network (an IPv4 address, an IPv6 /64)
// post n reports per window (default 10 per 10 minutes): a code is too
// long to guess, but nobody should get to try.
func WithReportRateLimit(n int, window time.Duration) Option {
	return func(o *options) {
		if n > 0 && window > 0 {
			o.reportLimit, o.reportWindow = n, window
		}
	}
}

// WithTrustedProxies names the reverse proxies in front of the space, as
// the broker's trusted_proxies: the rate limit then keys on the client
// they name in X-Forwarded-For, not on the proxy (which would put every
// citizen under one limit).
func WithTrustedProxies(proxies ...netip.Prefix) Option {
	return func(o *options) {
		for _, p := range proxies {
			o.proxies = append(o.proxies, p.Masked())
		}
	}
}

// New builds the citizen space. cfg is the validated dashboard section;
// store is the history it shows and writes; mailer may be nil (no
// e-mails); log may be nil (slog.Default). Discovery of the broker is
// lazy and retried, so the space starts even when the broker is not up.
func New(cfg *config.Dashboard, store history.Store, mailer mail.Mailer, log *slog.Logger, opts ...Option) (*App, error) {
	if cfg == nil {
		return nil, errors.New("dashboard: no dashboard configuration")
	}
	if store == nil {
		return nil, errors.New("dashboard: no history store")
	}
	if log == nil {
		log = slog.Default()
	}
	o := options{
		retention: config.DefaultRetention, now: time.Now, client: &http.Client{Timeout: httpTimeout},
		platformNames: map[string]string{"std": "Sésame", "plus": "Sésame+"}, dpNames: map[string]string{},
		reportLimit: 10, reportWindow: 10 * time.Minute,
	}
	for _, opt := range opts {
		opt(&o)
	}
	c := *cfg
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	base, err := url.Parse(c.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errors.New("dashboard: base_url must be an absolute http(s) URL")
	}
	if c.Issuer == "" || c.ClientID == "" {
		return nil, errors.New("dashboard: issuer and client_id are required")
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "given_name", "email"}
	}
	if !slices.Contains(c.Scopes, "openid") {
		return nil, errors.New("dashboard: scopes must contain openid")
	}
	if c.PageSize <= 0 {
		c.PageSize = 20
	}
	key, err := seal.ParseKey(c.CookieKey)
	if err != nil {
		return nil, fmt.Errorf("dashboard: cookie_key: %w", err)
	}
	box, err := seal.New([][]byte{key})
	if err != nil {
		return nil, fmt.Errorf("dashboard: cookie_key: %w", err)
	}
	a := &App{
		cfg: c, store: store, mailer: mailer, log: log, opt: o, box: box, secure: base.Scheme == "https",
		idpNames: map[string]string{}, dataScopes: map[string]config.DataScope{},
		reports: newLimiter(o.reportLimit, o.reportWindow),
	}
	a.broker = &brokerClient{issuer: c.Issuer, clientID: c.ClientID, secret: c.ClientSecret,
		redirect: c.BaseURL + "/callback", scopes: c.Scopes, client: o.client}
	for _, idp := range c.IdentityProviders {
		a.idpNames[idp.ID] = idp.Name
	}
	for _, d := range c.DataScopes {
		a.dataScopes[d.Scope] = d
	}
	if err := a.parseTemplates(web.Theme(c.Theme)); err != nil {
		return nil, err
	}
	a.handler = a.routes()
	return a, nil
}

// parseTemplates builds one renderer per language, and the menu partial
// (which every page with a menu includes as HTML, since the shared
// renderer gives each page file its own template set).
func (a *App) parseTemplates(theme web.Theme) error {
	if theme == "" {
		theme = web.ThemeDSFR
	}
	a.pages = map[string]*web.Renderer{}
	for _, lang := range []string{langFR, langEN} {
		r, err := web.NewRenderer(theme, t(lang, "brand"), templates, "templates/*.html")
		if err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
		a.pages[lang] = r
	}
	menu, err := template.ParseFS(templates, "templates/partials/menu.html")
	if err != nil {
		return fmt.Errorf("dashboard: menu: %w", err)
	}
	a.menu = menu
	return nil
}

// ServeHTTP serves the citizen space.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.handler.ServeHTTP(w, r)
}

// route is one path and the handler of each method.
type route struct {
	path    string
	methods map[string]http.HandlerFunc
}

func (a *App) routeTable() []route {
	get := func(h http.HandlerFunc) map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{http.MethodGet: h}
	}
	return []route{
		{"/{$}", get(a.home)},
		{"/login", get(a.login)},
		{"/callback", get(a.callback)},
		{"/logout", map[string]http.HandlerFunc{http.MethodPost: a.logout}},
		{"/historique", get(a.history)},
		{"/comptes", map[string]http.HandlerFunc{http.MethodGet: a.accounts, http.MethodPost: a.saveAccounts}},
		{"/signalement", map[string]http.HandlerFunc{http.MethodGet: a.reportPage, http.MethodPost: a.report}},
		{"/healthz", get(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
		})},
	}
}

// routes builds the mux, then wraps it: correlation id, security headers,
// a recover that turns a bug into the 500 page (never a stack trace),
// the header-size check and the language.
func (a *App) routes() http.Handler {
	m := http.NewServeMux()
	for _, rt := range a.routeTable() {
		var allow []string
		for method, h := range rt.methods {
			m.HandleFunc(method+" "+rt.path, h)
			allow = append(allow, method)
			if method == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		slices.Sort(allow)
		// Any other method gets the documented page, not net/http's
		// bare 405.
		m.HandleFunc(rt.path, a.methodNotAllowed(strings.Join(allow, ", ")))
	}
	m.Handle("/static/", http.StripPrefix("/static/", a.pages[langFR].Assets()))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { a.fail(w, r, web.ErrNotFound) })
	return web.WithCorrelationID(web.SecureHeaders(a.recover(a.withLang(m))))
}

func (a *App) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		a.fail(w, r, web.ErrMethodNotAllowed)
	}
}

// recover answers a panic with the 500 page, and a request whose headers
// are too large with the 431 page.
func (a *App) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.ErrorContext(r.Context(), "dashboard: panic", "err", fmt.Sprint(v), "path", r.URL.Path,
					"correlation_id", web.CorrelationID(r.Context()))
				a.fail(w, r, web.ErrInternal)
			}
		}()
		if web.HeaderSize(r) > web.MaxHeaderBytes {
			a.fail(w, r, web.ErrHeadersTooLarge)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// now is the space's clock, in UTC as the store keeps it.
func (a *App) now() time.Time { return a.opt.now().UTC() }
