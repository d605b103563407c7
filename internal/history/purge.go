package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Purger deletes the history older than Retention, at start and then
// every Every, so the store holds no more than the citizen is shown (six
// months by default, see config.DefaultRetention).
//
// Several processes may run a Purger on one database (the broker and the
// citizen space both do): a purge deletes by time, so the second finds
// nothing left to delete.
type Purger struct {
	// Store is the history purged.
	Store Store
	// Retention is how long rows are kept; it must be positive (a zero
	// would purge the whole history).
	Retention time.Duration
	// Every is the time between purges.
	Every time.Duration
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
	// Log receives a line per purge that deleted rows, and per failure
	// (slog.Default when nil).
	Log *slog.Logger
	// Ticks, when not nil, replaces the ticker of period Every: each value
	// received starts a purge. Tests drive the Purger with it instead of
	// waiting.
	Ticks <-chan time.Time
}

// Run purges at once, then every Every, until ctx is done; it then
// returns nil. A failed purge is logged and tried again at the next
// tick, since the next one deletes what this one left. It returns an
// error only for a Purger it cannot run.
func (p *Purger) Run(ctx context.Context) error {
	if err := p.check(); err != nil {
		return err
	}
	ticks := p.Ticks
	if ticks == nil {
		if p.Every <= 0 {
			return fmt.Errorf("history: purger: every %v: must be positive", p.Every)
		}
		tk := time.NewTicker(p.Every)
		defer tk.Stop()
		ticks = tk.C
	}
	for {
		if _, err := p.PurgeOnce(ctx); err != nil && ctx.Err() == nil {
			p.log().Error("history purge failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
	}
}

// PurgeOnce deletes the rows older than Now()-Retention and answers how
// many history entries went.
func (p *Purger) PurgeOnce(ctx context.Context) (int64, error) {
	if err := p.check(); err != nil {
		return 0, err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	before := now().Add(-p.Retention)
	start := time.Now()
	n, err := p.Store.Purge(ctx, before)
	if err != nil {
		return n, fmt.Errorf("history: purge before %s: %w", before.UTC().Format(time.RFC3339), err)
	}
	if n > 0 {
		p.log().Info("history purged", "entries", n, "before", before.UTC(), "took", time.Since(start))
	}
	return n, nil
}

func (p *Purger) check() error {
	if p.Store == nil {
		return errors.New("history: purger: no store")
	}
	if p.Retention <= 0 {
		return fmt.Errorf("history: purger: retention %v: must be positive", p.Retention)
	}
	return nil
}

func (p *Purger) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}
