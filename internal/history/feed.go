package history

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sesame-id/sesame/internal/audit"
)

// Names gives the names the citizen reads for a platform's SP and for an
// IdP, as they are when the row is written.
type Names interface {
	SPName(platform, clientID string) string
	IdPName(id string) string
}

// Feeder is the audit sink that feeds the history store. Record never
// waits for the store: events that make history rows go to a bounded
// queue that one goroutine writes in batches (a batch every FlushEvery,
// or as soon as BatchSize rows wait). So the history adds no round trip
// to any step of a login. What a crash can lose is what waits in the
// queue: at most FlushEvery of events in normal running (the audit log
// line of each is written before, as the step happens, and is the trail
// of record).
type Feeder struct {
	store      Store
	names      Names
	log        *slog.Logger
	batch      int
	flushEvery time.Duration
	queue      chan Entry
	done       chan struct{}
	closeOnce  sync.Once
	closing    atomic.Bool

	written, dropped, failed atomic.Int64
}

// FeederConfig sizes a Feeder; zero fields take the defaults (batches of
// 100, a flush every second, 10,000 rows waiting at most).
type FeederConfig struct {
	BatchSize  int
	FlushEvery time.Duration
	Queue      int
}

// NewFeeder starts the goroutine that writes to s; Close stops it.
func NewFeeder(s Store, names Names, cfg FeederConfig, log *slog.Logger) *Feeder {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = time.Second
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 10000
	}
	if log == nil {
		log = slog.Default()
	}
	f := &Feeder{store: s, names: names, log: log, batch: cfg.BatchSize, flushEvery: cfg.FlushEvery,
		queue: make(chan Entry, cfg.Queue), done: make(chan struct{})}
	go f.run()
	return f
}

// EntryOf maps an audit event to the history row it makes, if any: a
// connection (a code issued), data passed on (an introspection answered
// active) and a login refused through a blocked account. Every other
// event stays in the log only.
func EntryOf(e audit.Event) (Entry, bool) {
	if e.Account == "" {
		return Entry{}, false
	}
	en := Entry{Account: e.Account, Event: e.Name, Platform: e.Platform, SP: e.SP, IdP: e.IdP, ACR: e.ACR,
		Scopes: e.Scopes, LoginID: e.LoginID, Code: e.Code}
	switch {
	case e.Name == audit.CodeIssued && e.Outcome == "ok":
		en.Kind = KindConnection
	case e.Name == audit.Introspection && e.Outcome == "ok":
		en.Kind, en.DataProvider = KindData, e.DataProvider
	case e.Name == audit.IdPBlocked:
		en.Kind, en.Detail = KindBlocked, e.Outcome
	default:
		return Entry{}, false
	}
	return en, true
}

// Record implements audit.Sink.
func (f *Feeder) Record(_ context.Context, e audit.Event) {
	en, ok := EntryOf(e)
	if !ok {
		return
	}
	en.Time = time.Now().UTC()
	if f.names != nil {
		en.SPName, en.IdPName = f.names.SPName(e.Platform, e.SP), f.names.IdPName(e.IdP)
	}
	if f.closing.Load() {
		f.dropped.Add(1)
		return
	}
	select {
	case f.queue <- en:
	default:
		// The store is too slow or down for long: the row is lost to
		// the history (not to the log), and counted.
		if f.dropped.Add(1)%1000 == 1 {
			f.log.Warn("history: queue full, rows dropped", "dropped", f.dropped.Load())
		}
	}
}

// Stats are the feeder's counters since it started.
type Stats struct{ Written, Dropped, Failed int64 }

// Stats reads the counters.
func (f *Feeder) Stats() Stats {
	return Stats{Written: f.written.Load(), Dropped: f.dropped.Load(), Failed: f.failed.Load()}
}

// Close writes what waits, until ctx ends, and stops the feeder.
func (f *Feeder) Close(ctx context.Context) error {
	f.closeOnce.Do(func() {
		f.closing.Store(true)
		close(f.queue)
	})
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *Feeder) run() {
	defer close(f.done)
	tick := time.NewTicker(f.flushEvery)
	defer tick.Stop()
	var rows []Entry
	for {
		select {
		case en, ok := <-f.queue:
			if !ok {
				f.write(rows)
				return
			}
			rows = append(rows, en)
			if len(rows) >= f.batch {
				f.write(rows)
				rows = rows[:0]
			}
		case <-tick.C:
			if len(rows) > 0 {
				f.write(rows)
				rows = rows[:0]
			}
		}
	}
}

// write appends one batch, trying three times over about a second; a
// batch that still fails is dropped and counted (the log lines hold it).
func (f *Feeder) write(rows []Entry) {
	if len(rows) == 0 {
		return
	}
	var err error
	for attempt, wait := 0, 100*time.Millisecond; attempt < 3; attempt, wait = attempt+1, wait*3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = f.store.Append(ctx, rows)
		cancel()
		if err == nil {
			f.written.Add(int64(len(rows)))
			return
		}
		time.Sleep(wait)
	}
	f.failed.Add(int64(len(rows)))
	f.log.Error("history: batch lost", "rows", len(rows), "err", err)
}
