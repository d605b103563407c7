package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/mail"
	"github.com/sesame-id/sesame/internal/seal"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/store/memstore"
	"github.com/sesame-id/sesame/internal/store/redisstore"
	"github.com/sesame-id/sesame/internal/web"
)

// Broker is every platform of one process over one store.
type Broker struct {
	Platforms []*Platform
	Store     store.Store
	// Backend names the store in use, for the start-up log.
	Backend string
	// Metrics are every platform's series, for a non-public listener.
	Metrics *Metrics
}

// Option adjusts how New builds the broker.
type Option func(*options)

type options struct {
	wrap    func(store.Store) store.Store
	audit   audit.Sink
	history history.Store
	mailer  mail.Mailer
}

// WithHistory makes every platform enforce the accounts each citizen
// allows, as saved in the history store by the citizen space. (The store
// is fed through the audit seam: see history.Feeder.)
func WithHistory(h history.Store) Option {
	return func(o *options) { o.history = h }
}

// WithMailer sends an e-mail to the citizen at each new connection at a
// service, through m (which never blocks a login).
func WithMailer(m mail.Mailer) Option {
	return func(o *options) { o.mailer = m }
}

// WithAudit sends every platform's business events to sink instead of
// the log alone.
func WithAudit(sink audit.Sink) Option {
	return func(o *options) { o.audit = sink }
}

// WithStoreWrapper wraps the store every platform uses, for
// instrumentation (counting round trips, tracing).
func WithStoreWrapper(wrap func(store.Store) store.Store) Option {
	return func(o *options) { o.wrap = wrap }
}

// New opens the store (Redis when an address is configured, else memory)
// and builds each platform.
func New(cfg *config.Broker, log *slog.Logger, opts ...Option) (*Broker, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var keys [][]byte
	for i, k := range cfg.SessionKeys {
		b, err := seal.ParseKey(k)
		if err != nil {
			return nil, fmt.Errorf("broker.session_keys[%d]: %w", i, err)
		}
		keys = append(keys, b)
	}
	box, err := seal.New(keys)
	if err != nil {
		return nil, fmt.Errorf("broker.session_keys: %w", err)
	}
	var proxies []netip.Prefix
	for i, c := range cfg.TrustedProxies {
		pr, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("broker.trusted_proxies[%d]: %w", i, err)
		}
		proxies = append(proxies, pr.Masked())
	}
	rnipp, err := newCivilRegistry(cfg.CivilRegistry)
	if err != nil {
		return nil, err
	}
	b := &Broker{Metrics: NewMetrics()}
	if cfg.Redis.Enabled() {
		rs, err := redisstore.Open(redisstore.Config{
			URL: cfg.Redis.URL, Addrs: cfg.Redis.Addrs, MasterName: cfg.Redis.MasterName,
			Username: cfg.Redis.Username, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
			Timeout: cfg.Redis.Timeout.D(0), TLSCAFile: cfg.Redis.TLSCAFile, TLS: cfg.Redis.TLS,
		})
		if err != nil {
			return nil, fmt.Errorf("broker.redis: %w", err)
		}
		b.Store, b.Backend = rs, "redis"
	} else {
		b.Store, b.Backend = memstore.New(), "memory"
	}
	if o.wrap != nil {
		b.Store = o.wrap(b.Store)
	}
	for _, pc := range cfg.Platforms {
		p, err := NewPlatform(pc, Options{
			Store: b.Store, Box: box, SubSecret: cfg.SubSecret, Theme: web.Theme(cfg.Theme),
			Leeway: cfg.Leeway.D(0), IdPs: cfg.IdentityProviders, Logger: log, Metrics: b.Metrics,
			TrustedProxies: proxies, DataScopes: cfg.DataScopes, Audit: o.audit,
			History: o.history, Mailer: o.mailer, CitizenSpaceURL: cfg.CitizenSpaceURL, EIDAS: cfg.EIDAS,
			Risk: cfg.Risk, Pages: cfg.Pages,
			CivilRegistry: rnipp, FlagRegistryOutage: cfg.CivilRegistry != nil && cfg.CivilRegistry.OnOutage == config.OutageFlag,
		})
		if err != nil {
			_ = b.Close()
			return nil, err
		}
		b.Platforms = append(b.Platforms, p)
	}
	for _, p := range b.Platforms {
		p.peers = b.Platforms
	}
	return b, nil
}

// Close stops the platforms' key reloads, logs out of their HSMs and
// releases the store.
func (b *Broker) Close() error {
	var errs []error
	for _, p := range b.Platforms {
		errs = append(errs, p.closeKeys())
	}
	return errors.Join(append(errs, b.Store.Close())...)
}

// Listen returns the platform's listen address.
func (p *Platform) Listen() string { return p.cfg.Listen }

// Issuer returns the platform's issuer.
func (p *Platform) Issuer() string { return p.cfg.Issuer }
