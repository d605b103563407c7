// Package broker is Sésame's federation broker: an OpenID provider toward
// service providers and a relying party toward identity providers. One
// Platform serves one assurance product (standard or "+") on its own issuer.
package broker

import (
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sesame-id/sesame/broker/civilregistry"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/risk"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/dpop"
	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/keys"
	"github.com/sesame-id/sesame/internal/mail"
	"github.com/sesame-id/sesame/internal/seal"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/web"
)

//go:embed templates/*.html
var templates embed.FS

// Platform is one issuer: its config, keys, registries and sessions.
type Platform struct {
	cfg       config.Platform
	subSecret []byte
	signer    *keys.Ring
	sessions  *session.Store
	kv        store.Store
	pages     *web.Renderer
	// current is the registry of SPs, data providers and IdPs. A reload
	// swaps it whole; each request reads it once (see reg).
	current atomic.Pointer[registry]
	// leeway is the clock skew accepted on IdPs' tokens, kept to build
	// the IdPs of a reloaded registry.
	leeway  time.Duration
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	metrics *Metrics
	secure  bool
	// draining is set at SIGTERM: readiness fails so the load balancer
	// stops sending new logins while those under way finish.
	draining atomic.Bool
	// storeDown is the store's state at the last readiness probe, so
	// that its changes, not every failing probe, are logged.
	storeDown atomic.Bool
	// backchannelSlots bounds back-channel logout deliveries under way.
	backchannelSlots chan struct{}
	// blocked holds the sources over their token-failure limit.
	blocked blocklist
	// proxies are the trusted reverse proxies' ranges (see clientIP).
	proxies []netip.Prefix
	// nonces issues DPoP server nonces; nil when the platform wants none.
	nonces *dpop.Nonces
	// audit receives the platform's business events.
	audit audit.Sink
	// history holds the citizens' preferences (nil: none enforced);
	// mailer sends connection e-mails (nil: none); spaceURL is the
	// citizen space.
	history  history.Store
	mailer   mail.Mailer
	spaceURL string
	// eidas is the eIDAS bridge's configuration (nil: none).
	eidas *config.EIDAS
	// peers are the platforms of this process, itself included: an IdP's
	// back-channel logout ends sessions on each of them.
	peers []*Platform
	// risk is the suspicious-context rule; nil: off.
	risk risk.All
	// civilRegistry checks identities (nil: no check); flagOutage lets a
	// login through when it cannot answer.
	civilRegistry civilregistry.Registry
	flagOutage    bool
	// legal are the operator's words on the legal pages (nil: none given).
	legal *config.Pages

	// hsm holds the platform's HSM session, if its keys live in one;
	// keysStop ends the periodic reload of the keys, keysDone says it
	// ended.
	hsm      keys.HSM
	keysStop chan struct{}
	keysDone chan struct{}
}

// Drain makes readiness fail from now on, ahead of a graceful shutdown.
func (p *Platform) Drain() { p.draining.Store(true) }

// Options are what a platform shares with the others of its process.
type Options struct {
	Store     store.Store
	Box       *seal.Box
	SubSecret string
	Theme     web.Theme
	Leeway    time.Duration
	// IdPs is the broker-wide IdP registry; the platform takes the ones
	// its config lists.
	IdPs   []config.IdP
	Logger *slog.Logger
	// Metrics, when set, receives the platform's series.
	Metrics *Metrics
	// TrustedProxies are the ranges whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// DataScopes is the data-scope catalogue.
	DataScopes []config.DataScope
	// Audit receives business events; nil: one log line each, through
	// Logger.
	Audit audit.Sink
	// History, when set, holds the accounts each citizen allows: a login
	// through a blocked one is refused right after the IdP answers.
	History history.Store
	// Mailer, when set, sends the e-mail of each new connection.
	Mailer mail.Mailer
	// CitizenSpaceURL is the citizen space, linked from e-mails and from
	// the page of a blocked account.
	CitizenSpaceURL string
	// EIDAS is the eIDAS bridge's configuration, for the IdPs of kind
	// eidas and the proxy service; nil: no bridge.
	EIDAS *config.EIDAS
	// Risk is the suspicious-context rule's config; nil: off.
	Risk *config.Risk
	// CivilRegistry, when set, checks every identity of the IdPs that
	// are not exempt; FlagRegistryOutage lets a login through, flagged,
	// when it cannot answer (else the login is refused).
	CivilRegistry      civilregistry.Registry
	FlagRegistryOutage bool
	// Pages are the operator's words on the legal pages; nil: none.
	Pages *config.Pages
}

// NewPlatform builds the platform's handler. Signing keys come from the
// configured key directory or files or, when none is set, are generated
// (dev only).
func NewPlatform(cfg config.Platform, opt Options) (*Platform, error) {
	p := &Platform{
		cfg:       cfg,
		subSecret: []byte(opt.SubSecret),
		kv:        opt.Store,
		leeway:    opt.Leeway,
		log:       opt.Logger,
		metrics:   opt.Metrics,
		proxies:   opt.TrustedProxies,
		eidas:     opt.EIDAS,

		backchannelSlots: make(chan struct{}, backchannelSlots),
		secure:           strings.HasPrefix(cfg.Issuer, "https://"),
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("platform", cfg.ID)
	p.audit = opt.Audit
	p.history, p.mailer, p.spaceURL = opt.History, opt.Mailer, opt.CitizenSpaceURL
	p.civilRegistry, p.flagOutage = opt.CivilRegistry, opt.FlagRegistryOutage
	if p.audit == nil {
		p.audit = audit.Log{Logger: opt.Logger}
		if opt.Logger == nil {
			p.audit = audit.Log{Logger: slog.Default()}
		}
	}
	var err error
	if p.signer, err = p.openKeys(cfg); err != nil {
		_ = p.closeKeys()
		return nil, fmt.Errorf("platform %s: signing keys: %w", cfg.ID, err)
	}
	// From here on, a failure must close the HSM session openKeys opened.
	ok := false
	defer func() {
		if !ok {
			_ = p.closeKeys()
		}
	}()
	reg, err := p.buildRegistry(cfg, opt.IdPs, opt.DataScopes, nil)
	if err != nil {
		return nil, err
	}
	p.setRegistry(reg)
	// "+" sessions have a fixed life (FC+: 10 min, not sliding).
	p.sessions = session.New(opt.Store, opt.Box, cfg.Namespace, cfg.SessionTTL.D(30*time.Minute), !cfg.IsPlus())
	p.legal = opt.Pages
	layout := pageLayout(cfg, opt.Pages)
	p.pages, err = web.NewRenderer(opt.Theme, layout.Tagline.FR, templates, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("platform %s: %w", cfg.ID, err)
	}
	p.pages.SetMessages(messages)
	p.pages.SetLayout(layout)
	if p.risk, err = newRiskRule(opt.Risk, opt.Store, cfg.Namespace, p.subSecret); err != nil {
		return nil, fmt.Errorf("platform %s: %w", cfg.ID, err)
	}
	if cfg.DPoPNonces() {
		if p.nonces, err = newDPoPNonces(p.subSecret, cfg.Namespace); err != nil {
			return nil, fmt.Errorf("platform %s: %w", cfg.ID, err)
		}
	}
	p.peers = []*Platform{p}
	p.routes()
	p.startKeyWatch()
	ok = true
	return p, nil
}

// spKeysClient fetches SPs' jwks_uri: short timeout, no redirects.
var spKeysClient = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Client returns the SP registered under id in the current registry.
func (p *Platform) Client(id string) (*config.SP, bool) { return p.current.Load().Client(id) }

// route is one path of the platform and the handler of each method.
type route struct {
	path    string
	methods map[string]http.HandlerFunc
	// api answers in JSON (for SPs and data providers), not with pages.
	api bool
}

func (p *Platform) routeTable() []route {
	both := func(h http.HandlerFunc) map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{http.MethodGet: h, http.MethodPost: h}
	}
	get := func(h http.HandlerFunc) map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{http.MethodGet: h}
	}
	post := func(h http.HandlerFunc) map[string]http.HandlerFunc {
		return map[string]http.HandlerFunc{http.MethodPost: h}
	}
	return []route{
		{"/.well-known/openid-configuration", get(p.discovery), true},
		{"/jwks", get(keys.JWKSHandlerMaxAge(p.signer, p.cfg.JWKSMaxAge.D(keys.DefaultJWKSMaxAge)).ServeHTTP), true},
		{"/authorize", both(p.authorize), false},
		{"/authorize/choose", map[string]http.HandlerFunc{http.MethodGet: p.chooser, http.MethodPost: p.choose}, false},
		{"/idp/callback", get(p.callback), false},
		{"/authorize/consent", map[string]http.HandlerFunc{http.MethodGet: p.consentPage, http.MethodPost: p.consent}, false},
		{"/token", post(p.token), true},
		{"/par", post(p.par), true},
		{"/introspect", post(p.introspect), true},
		{"/revoke", post(p.revoke), true},
		{"/api/v2/checktoken", post(p.checktoken), true},
		{"/userinfo", both(p.userinfo), true},
		{"/session/end", both(p.endSession), false},
		{"/idp/logout/callback", get(p.logoutCallback), false},
		{"/idp/{idp}/backchannel-logout", post(p.idpBackchannelLogout), true},
		{"/eidas/connector/country", map[string]http.HandlerFunc{http.MethodGet: p.eidasCountryPage, http.MethodPost: p.eidasSend}, false},
		{"/eidas/connector/response", post(p.eidasResponse), false},
		{"/eidas/proxy/request", post(p.proxyRequest), false},
		{"/eidas/proxy/start", get(p.proxyStart), false},
		{"/eidas/proxy/callback", get(p.proxyCallback), false},
		{"/healthz", get(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }), true},
		{"/readyz", get(p.ready), true},
		{"/sesame", get(p.infoPage("about.html", "about.title")), false},
		{"/accessibilite", get(p.infoPage("accessibility.html", "a11y.title")), false},
		{"/mentions-legales", get(p.infoPage("legal.html", "legal.title")), false},
		{"/donnees-personnelles", get(p.infoPage("privacy.html", "privacy.title")), false},
		{"/cookies", get(p.infoPage("cookies.html", "cookies.title")), false},
		{"/button", get(p.buttonPage), false},
	}
}

func (p *Platform) routes() {
	m := http.NewServeMux()
	for _, rt := range p.routeTable() {
		var allow []string
		for method, h := range rt.methods {
			m.HandleFunc(method+" "+rt.path, h)
			allow = append(allow, method)
			if method == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		slices.Sort(allow)
		// Any other method gets the documented answer, not net/http's
		// bare 405.
		m.HandleFunc(rt.path, p.methodNotAllowed(strings.Join(allow, ", "), rt.api))
	}
	m.Handle("/static/", http.StripPrefix("/static/", p.pages.Assets()))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { p.pages.RenderError(w, r, web.ErrNotFound) })
	p.mux = m
	// The language is outermost: the metrics read the route the mux sets
	// on the request it is given, which must be the one they hold.
	p.handler = web.WithLanguage(p.metrics.observe(p.cfg.ID, web.SecureHeaders(m)), p.langCookie(), p.secure)
}

// methodNotAllowed answers a method a path does not take: JSON for the
// endpoints SPs call, the error page for the browser's.
func (p *Platform) methodNotAllowed(allow string, api bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		if api {
			e := oidcerr.New(oidcerr.InvalidRequest, "this endpoint takes "+allow)
			e.Status = http.StatusMethodNotAllowed
			e.WriteJSON(w)
			return
		}
		p.pages.RenderError(w, r, web.ErrMethodNotAllowed)
	}
}

// ServeHTTP serves the platform with a correlation id on every request and
// a recover that turns a bug into a clean error page, never a stack trace.
func (p *Platform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	web.WithCorrelationID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				p.log.ErrorContext(r.Context(), "panic", "err", fmt.Sprint(v), "path", r.URL.Path, "correlation_id", web.CorrelationID(r.Context()))
				p.pages.RenderError(w, r, web.ErrInternal)
			}
		}()
		if web.HeaderSize(r) > web.MaxHeaderBytes {
			web.SecureHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p.pages.RenderError(w, r, web.ErrHeadersTooLarge)
			})).ServeHTTP(w, r)
			return
		}
		// One registry for the whole request, whatever a reload does
		// meanwhile.
		p.handler.ServeHTTP(w, r.WithContext(p.withRegistry(r.Context())))
	})).ServeHTTP(w, r)
}

// Handler exposes the platform as an http.Handler.
func (p *Platform) Handler() http.Handler { return p }

// Signer returns the platform's live keys (for tests).
func (p *Platform) Signer() *keys.Ring { return p.signer }

// --- cookies

func (p *Platform) setCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: p.cfg.Cookie, Value: id, Path: "/", HttpOnly: true, Secure: p.secure,
		// Lax: the IdP's callback is a top-level GET navigation from
		// another site and must carry the cookie; cross-site POSTs must not.
		SameSite: http.SameSiteLaxMode,
	})
}

func (p *Platform) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: p.cfg.Cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
}

// pendingCookie names the cookie of a request waiting at the chooser.
func (p *Platform) pendingCookie() string { return p.cfg.Cookie + "_req" }

func (p *Platform) setPendingCookie(w http.ResponseWriter, v string) {
	http.SetCookie(w, &http.Cookie{
		Name: p.pendingCookie(), Value: v, Path: "/", MaxAge: int(session.PendingTTL.Seconds()),
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
}

func (p *Platform) clearPendingCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: p.pendingCookie(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
}

// sessionCookie is the browser's session id, "" when it has none.
func (p *Platform) sessionCookie(r *http.Request) string {
	if c, err := r.Cookie(p.cfg.Cookie); err == nil {
		return c.Value
	}
	return ""
}

// pendingRequest opens the browser's pending request, nil when it has
// none that is valid.
func (p *Platform) pendingRequest(r *http.Request) *session.Session {
	c, err := r.Cookie(p.pendingCookie())
	if err != nil {
		return nil
	}
	sess, err := p.sessions.OpenPending(c.Value)
	if err != nil {
		return nil
	}
	noteLang(r, sess)
	return sess
}

// loadSession reads the browser's session; err is nil and sess nil when
// the browser has none.
func (p *Platform) loadSession(r *http.Request) (*session.Session, error) {
	c, err := r.Cookie(p.cfg.Cookie)
	if err != nil {
		return nil, nil
	}
	sess, err := p.sessions.Load(r.Context(), c.Value)
	if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrCorrupt) {
		return nil, nil
	}
	noteLang(r, sess)
	return sess, err
}

// redirect sends a 303 so a browser never re-POSTs a form to the target.
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// successURL is the authorization response: code, state and iss.
func (p *Platform) successURL(redirectURI, code, state string) string {
	q := url.Values{"code": {code}, "iss": {p.cfg.Issuer}}
	if state != "" {
		q.Set("state", state)
	}
	sep := "?"
	if strings.Contains(redirectURI, "?") {
		sep = "&"
	}
	return redirectURI + sep + q.Encode()
}
