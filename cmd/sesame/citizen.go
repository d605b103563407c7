package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/dashboard"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/history/postgres"
	"github.com/sesame-id/sesame/internal/history/sqlite"
	"github.com/sesame-id/sesame/internal/mail"
)

// citizen holds what the broker and the citizen space share in one
// process: the history store (and its purge job), and the mail queue
// (with, without SMTP, the development outbox).
type citizen struct {
	history history.Store
	feeder  *history.Feeder
	// names are the SPs' and IdPs' names the feeder writes; a registry
	// reload updates them.
	names  *broker.Names
	mailer *mail.Queue
	outbox *mail.Outbox
	stop   context.CancelFunc
}

// openCitizen opens the history store and the mail queue the config
// asks for; either may be absent.
func openCitizen(cfg *config.Config, log *slog.Logger) (*citizen, []server, error) {
	c := &citizen{stop: func() {}}
	var servers []server
	if h := cfg.History; h != nil {
		var err error
		switch h.Driver {
		case "postgres":
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			c.history, err = postgres.Open(ctx, h.URL)
			cancel()
		default:
			c.history, err = sqlite.Open(h.Path)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("history: %w", err)
		}
		ctx, stop := context.WithCancel(context.Background())
		c.stop = stop
		purger := &history.Purger{Store: c.history, Retention: h.Retention.D(config.DefaultRetention), Every: h.PurgeEvery.D(time.Hour), Now: time.Now, Log: log}
		go purger.Run(ctx)
		log.Info("history store", "driver", h.Driver, "retention", h.Retention.D(config.DefaultRetention).String())
	}
	if m := cfg.Mail; m != nil {
		var sender mail.Sender
		if m.SMTP.Host != "" {
			s, err := mail.NewSMTP(*m)
			if err != nil {
				c.close(log)
				return nil, nil, fmt.Errorf("mail: %w", err)
			}
			sender = s
			log.Info("mail", "smtp", fmt.Sprintf("%s:%d", m.SMTP.Host, m.SMTP.Port), "tls", m.SMTP.TLS)
		} else {
			c.outbox = mail.NewOutbox()
			sender = c.outbox
			if m.OutboxListen != "" {
				servers = append(servers, server{"mail outbox (development)", m.OutboxListen, "http://" + m.OutboxListen + "/", c.outbox.Handler()})
			}
			log.Info("mail", "outbox", "in memory, development only")
		}
		c.mailer = mail.NewQueue(sender, m.Queue, m.Retries, log)
	}
	return c, servers, nil
}

// brokerOptions wires the broker to the history (fed through the audit
// seam, beside the log lines) and the mail queue.
func (c *citizen) brokerOptions(cfg *config.Config, log *slog.Logger) []broker.Option {
	var opts []broker.Option
	if c.history != nil {
		h := cfg.History
		c.names = broker.HistoryNames(cfg.Broker)
		c.feeder = history.NewFeeder(c.history, c.names, history.FeederConfig{
			BatchSize: h.BatchSize, FlushEvery: h.FlushEvery.D(time.Second), Queue: h.Queue,
		}, log)
		opts = append(opts, broker.WithHistory(c.history), broker.WithAudit(auditSinks(log, c.feeder)))
	}
	if c.mailer != nil {
		opts = append(opts, broker.WithMailer(c.mailer))
	}
	return opts
}

// namesSetter returns what keeps the history's names in step with a
// reloaded registry, or nil without a history.
func (c *citizen) namesSetter() func(*config.Broker) {
	if c == nil || c.names == nil {
		return nil
	}
	return c.names.Set
}

// metrics exposes the feeder's and the mail queue's counters with the
// broker's series.
func (c *citizen) metrics(m *broker.Metrics) {
	if f := c.feeder; f != nil {
		const name, help = "sesame_history_rows_total", "Rows of the citizens' history by outcome: written, dropped (queue full), failed (store errors)."
		m.CountFunc(name, help, "written", func() float64 { return float64(f.Stats().Written) })
		m.CountFunc(name, help, "dropped", func() float64 { return float64(f.Stats().Dropped) })
		m.CountFunc(name, help, "failed", func() float64 { return float64(f.Stats().Failed) })
	}
	if q := c.mailer; q != nil {
		const name, help = "sesame_mail_messages_total", "Citizens' e-mails by outcome: sent, retried, dropped (queue full), failed (given up)."
		m.CountFunc(name, help, "sent", func() float64 { return float64(q.Stats().Sent) })
		m.CountFunc(name, help, "retried", func() float64 { return float64(q.Stats().Retried) })
		m.CountFunc(name, help, "dropped", func() float64 { return float64(q.Stats().Dropped) })
		m.CountFunc(name, help, "failed", func() float64 { return float64(q.Stats().Failed) })
	}
}

// mailerOrNil keeps a nil *Queue from becoming a non-nil interface.
func (c *citizen) mailerOrNil() mail.Mailer {
	if c.mailer == nil {
		return nil
	}
	return c.mailer
}

// close flushes the feeder and the mail queue (for up to 10 s), then
// closes the store.
func (c *citizen) close(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c.feeder != nil {
		if err := c.feeder.Close(ctx); err != nil {
			log.Warn("history: rows not written at shutdown", "err", err)
		}
	}
	if c.mailer != nil {
		if err := c.mailer.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("mail: messages not sent at shutdown", "err", err)
		}
	}
	c.stop()
	if c.history != nil {
		_ = c.history.Close()
	}
}

// dashboardOptions are the citizen space's settings that come from other
// sections: the retention, the data providers' names (from the broker
// section of the same file, when there is one) and the proxies.
func dashboardOptions(cfg *config.Config) []dashboard.Option {
	opts := []dashboard.Option{dashboard.WithRetention(cfg.History.Retention.D(config.DefaultRetention))}
	if cfg.Broker != nil {
		opts = append(opts, dashboard.WithDataProviderNames(dashboard.DataProviderNames(cfg.Broker)))
	}
	var proxies []netip.Prefix
	for _, c := range cfg.Dashboard.TrustedProxies {
		if p, err := netip.ParsePrefix(c); err == nil {
			proxies = append(proxies, p.Masked())
		}
	}
	if len(proxies) > 0 {
		opts = append(opts, dashboard.WithTrustedProxies(proxies...))
	}
	return opts
}

func auditSinks(log *slog.Logger, feeder *history.Feeder) audit.Sink {
	return audit.Sinks{audit.Log{Logger: log}, feeder}
}
