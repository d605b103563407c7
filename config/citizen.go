package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/sesame-id/sesame/internal/seal"
)

// History is the durable store of the citizen's history and preferences,
// shared by the broker (which feeds it and reads preferences) and the
// citizen space (which shows it). Absent: no history is kept and no
// preference is enforced (the audit log lines remain).
type History struct {
	// Driver is "sqlite" (the default: one file, no service) or
	// "postgres".
	Driver string `yaml:"driver"`
	// Path is the SQLite file (default data/history.db); its folder is
	// created.
	Path string `yaml:"path"`
	// URL is the PostgreSQL connection string (postgres://...).
	URL string `yaml:"url"`
	// Retention is how long rows are kept and shown: 6 months by default
	// (4392h, 183 days). Older rows are purged every PurgeEvery (1h).
	Retention  Duration `yaml:"retention"`
	PurgeEvery Duration `yaml:"purge_every"`
	// BatchSize and FlushEvery bound what the broker holds in memory
	// before it writes to the store (100 events, 1s): what a crash can
	// lose from the history (the audit log lines hold everything).
	BatchSize  int      `yaml:"batch_size"`
	FlushEvery Duration `yaml:"flush_every"`
	// Queue bounds the events waiting to be written (default 10000);
	// beyond, events are dropped from the history, counted and logged.
	Queue int `yaml:"queue"`
}

// DefaultRetention is six months of history, as FranceConnect shows.
const DefaultRetention = 183 * 24 * time.Hour

// Mail sends the citizen's e-mails: one per new connection at a service,
// one per change of preferences. Absent: no e-mail.
type Mail struct {
	// From is the sender, e.g. "Sésame <ne-pas-repondre@sesame.gouv.fr>".
	From string `yaml:"from"`
	// SMTP is the relay; without a host, mail goes to the in-memory
	// outbox (development), served at OutboxListen.
	SMTP SMTP `yaml:"smtp"`
	// OutboxListen serves the development outbox in the browser (only
	// without SMTP; keep it on loopback).
	OutboxListen string `yaml:"outbox_listen"`
	// Queue bounds the messages waiting (default 1000); Retries is how
	// many times a failed delivery is tried again (default 5, backing
	// off from 1s).
	Queue   int `yaml:"queue"`
	Retries int `yaml:"retries"`
}

// SMTP is a mail relay.
type SMTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS is "starttls" (default on port 587), "tls" (implicit, port 465)
	// or "none" (a relay on loopback only).
	TLS string `yaml:"tls"`
	// TLSCAFile is a PEM file of CAs for a relay with a private CA.
	TLSCAFile string   `yaml:"tls_ca_file"`
	Timeout   Duration `yaml:"timeout"`
}

// Dashboard is the citizen space, "Mon espace Sésame": an SP of the
// broker that shows the citizen their history and lets them choose the
// accounts they allow.
type Dashboard struct {
	Listen  string `yaml:"listen"`
	BaseURL string `yaml:"base_url"`
	// Issuer is the broker platform the citizen logs in at (standard).
	Issuer       string   `yaml:"issuer"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret string   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
	// CookieKey is a base64 AES-256 key sealing the dashboard's session
	// cookie.
	CookieKey string `yaml:"cookie_key"`
	// Theme is "dsfr" (default) or "neutral".
	Theme string `yaml:"theme"`
	// IdentityProviders are the accounts the citizen may block or allow,
	// and DataScopes the labels of the data passed on; both default to the
	// broker section's of the same file.
	IdentityProviders []DashboardIdP `yaml:"identity_providers"`
	DataScopes        []DataScope    `yaml:"data_scopes"`
	// PageSize is the history's page size (default 20).
	PageSize int `yaml:"page_size"`
	// TrustedProxies are the CIDR ranges of the reverse proxies in front
	// of the space, as the broker's: its rate limit then counts the
	// client they name in X-Forwarded-For.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// DashboardIdP is an account as the citizen space shows it.
type DashboardIdP struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

func (h *History) validate(p *Problems) {
	switch h.Driver {
	case "", "sqlite":
		h.Driver = "sqlite"
		if h.Path == "" {
			h.Path = "data/history.db"
		}
	case "postgres":
		if h.URL == "" {
			p.missing("history", "url", "a postgres:// URL with the postgres driver")
		} else if !strings.HasPrefix(h.URL, "postgres://") && !strings.HasPrefix(h.URL, "postgresql://") {
			p.add("history", "url", "expected a postgres:// URL with the postgres driver")
		}
	default:
		p.add("history", "driver", "%q: expected sqlite or postgres", h.Driver)
	}
	if h.Retention == 0 {
		h.Retention = Duration(DefaultRetention)
	}
	if h.Retention.D(0) < 24*time.Hour {
		p.add("history", "retention", "%s: at least 24h", time.Duration(h.Retention))
	}
	h.PurgeEvery = Duration(h.PurgeEvery.D(time.Hour))
	h.FlushEvery = Duration(h.FlushEvery.D(time.Second))
	if h.BatchSize <= 0 {
		h.BatchSize = 100
	}
	if h.Queue <= 0 {
		h.Queue = 10000
	}
}

func (m *Mail) validate(p *Problems) {
	if m.From == "" {
		p.missing("mail", "from", "an address, e.g. \"Sésame <ne-pas-repondre@example.gouv.fr>\"")
	} else if !strings.Contains(m.From, "@") {
		p.add("mail", "from", "%q: expected an address, e.g. \"Sésame <ne-pas-repondre@example.gouv.fr>\"", m.From)
	}
	s := &m.SMTP
	if s.Host != "" {
		switch s.TLS {
		case "":
			s.TLS = "starttls"
		case "starttls", "tls":
		case "none":
			if !isLoopback(s.Host) {
				p.add("mail.smtp", "tls", "none is only for a relay on loopback (%s is not)", s.Host)
			}
		default:
			p.add("mail.smtp", "tls", "%q: expected starttls, tls or none", s.TLS)
		}
		if s.Port == 0 {
			s.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[s.TLS]
		}
		s.Timeout = Duration(s.Timeout.D(10 * time.Second))
	} else if m.OutboxListen != "" {
		if _, _, err := net.SplitHostPort(m.OutboxListen); err != nil {
			p.add("mail", "outbox_listen", "expected host:port, got %q", m.OutboxListen)
		}
	}
	if m.Queue <= 0 {
		m.Queue = 1000
	}
	if m.Retries < 0 {
		p.add("mail", "retries", "must not be negative")
	} else if m.Retries == 0 {
		m.Retries = 5
	}
}

func (d *Dashboard) validate(b *Broker, p *Problems) {
	p.listen("dashboard", "listen", d.Listen)
	if err := checkURL(d.BaseURL, false); err != nil {
		p.add("dashboard", "base_url", "%v", err)
	}
	d.BaseURL = strings.TrimSuffix(d.BaseURL, "/")
	if err := checkURL(d.Issuer, false); err != nil {
		p.add("dashboard", "issuer", "%v", err)
	}
	p.required("dashboard", "client_id", d.ClientID, "")
	p.secret("dashboard", "client_secret", d.ClientSecret, "")
	if len(d.Scopes) == 0 {
		d.Scopes = []string{"openid", "given_name", "email"}
	}
	if strings.TrimSpace(d.CookieKey) == "" {
		p.missing("dashboard", "cookie_key", "a base64 32-byte key (make one with: sesame keys session)")
	} else if _, err := seal.ParseKey(d.CookieKey); err != nil {
		p.add("dashboard", "cookie_key", "%v (make one with: sesame keys session)", err)
	}
	switch d.Theme {
	case "":
		d.Theme = "dsfr"
	case "dsfr", "neutral":
	default:
		p.add("dashboard", "theme", "%q: expected dsfr or neutral", d.Theme)
	}
	if d.PageSize <= 0 {
		d.PageSize = 20
	}
	for i, cidr := range d.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			p.add("dashboard", fmt.Sprintf("trusted_proxies[%d]", i), "%q: expected a CIDR range such as 10.0.0.0/8", cidr)
		}
	}
	if b != nil {
		if len(d.IdentityProviders) == 0 {
			for _, idp := range b.IdentityProviders {
				d.IdentityProviders = append(d.IdentityProviders, DashboardIdP{ID: idp.ID, Name: idp.Name})
			}
		}
		if len(d.DataScopes) == 0 {
			d.DataScopes = b.DataScopes
		}
	}
	if len(d.IdentityProviders) == 0 {
		p.missing("dashboard", "identity_providers", "required without a broker section in the same file")
	}
	for i, idp := range d.IdentityProviders {
		e := fmt.Sprintf("dashboard.identity_providers[%d]", i)
		p.required(e, "id", idp.ID, "")
		p.required(e, "name", idp.Name, "")
	}
}
