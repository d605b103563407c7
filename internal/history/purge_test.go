package history_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/history/sqlite"
)

const day = 24 * time.Hour

// retention is config.DefaultRetention (183 days), repeated here since
// config is above this package.
const retention = 183 * day

// observed is a real store that tells the test when each purge is done,
// so the test waits for purges instead of sleeping.
type observed struct {
	history.Store
	done chan int64
}

func (o observed) Purge(ctx context.Context, before time.Time) (int64, error) {
	n, err := o.Store.Purge(ctx, before)
	o.done <- n
	return n, err
}

// clock is a fake time.Now the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func openSQLite(t *testing.T) history.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ages(t *testing.T, s history.Store) []string {
	t.Helper()
	p, err := s.List(context.Background(), history.Query{Account: "acc", Limit: history.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range p.Entries {
		out = append(out, e.Detail)
	}
	return out
}

func TestPurgerRun(t *testing.T) {
	clk := &clock{now: time.Date(2025, 9, 1, 3, 0, 0, 0, time.UTC)}
	s := openSQLite(t)
	var rows []history.Entry
	for _, age := range []int{200, 184, 182, 10, 0} {
		rows = append(rows, history.Entry{Account: "acc", Time: clk.Now().Add(-time.Duration(age) * day),
			Kind: history.KindConnection, Detail: strconv.Itoa(age)})
	}
	if err := s.Append(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPreferences(context.Background(), history.Preferences{Account: "acc", Updated: clk.Now().Add(-400 * day)}, nil); err != nil {
		t.Fatal(err)
	}

	obs := observed{Store: s, done: make(chan int64)}
	ticks := make(chan time.Time)
	var logs bytes.Buffer
	p := &history.Purger{Store: obs, Retention: retention, Every: time.Hour, Now: clk.Now, Ticks: ticks,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- p.Run(ctx) }()

	wait := func() int64 {
		t.Helper()
		select {
		case n := <-obs.done:
			return n
		case <-time.After(10 * time.Second):
			t.Fatal("no purge")
			return 0
		}
	}

	// At start: the rows 200 and 184 days old go, 182 stays.
	if n := wait(); n != 2 {
		t.Fatalf("first purge deleted %d, want 2", n)
	}
	if got, want := ages(t, s), []string{"0", "10", "182"}; !slices.Equal(got, want) {
		t.Fatalf("after the first purge: %v, want %v", got, want)
	}

	// A tick an hour later deletes nothing; two days later, the row then
	// 184 days old goes.
	clk.Add(time.Hour)
	ticks <- clk.Now()
	if n := wait(); n != 0 {
		t.Fatalf("purge an hour later deleted %d", n)
	}
	clk.Add(2 * day)
	ticks <- clk.Now()
	if n := wait(); n != 1 {
		t.Fatalf("purge two days later deleted %d, want 1", n)
	}
	if got, want := ages(t, s), []string{"0", "10"}; !slices.Equal(got, want) {
		t.Fatalf("after two days: %v, want %v", got, want)
	}
	if _, found, err := s.Preferences(context.Background(), "acc"); !found || err != nil {
		t.Fatalf("preferences purged: %v %v", found, err)
	}

	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !strings.Contains(logs.String(), "history purged") || !strings.Contains(logs.String(), "entries=2") {
		t.Errorf("log = %q", logs.String())
	}
}

func TestPurgerTicker(t *testing.T) {
	// The real ticker, with a tiny period: purges keep coming.
	s := openSQLite(t)
	obs := observed{Store: s, done: make(chan int64)}
	p := &history.Purger{Store: obs, Retention: retention, Every: time.Millisecond,
		Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	for i := range 3 {
		select {
		case <-obs.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d purges", i)
		}
	}
	cancel()
	// A purge may be under way: drain it, so Run can return.
	for {
		select {
		case <-obs.done:
			continue
		case err := <-ran:
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			return
		}
	}
}

func TestPurgerFailureLogged(t *testing.T) {
	// A purge that fails is logged and Run goes on to the next tick.
	s := openSQLite(t)
	_ = s.Close()
	var mu sync.Mutex
	var logs bytes.Buffer
	ticks := make(chan time.Time)
	p := &history.Purger{Store: s, Retention: retention, Every: time.Hour, Ticks: ticks,
		Log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- p.Run(ctx) }()
	ticks <- time.Now() // received only once the first purge is done
	ticks <- time.Now()
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "history purge failed"); n < 2 {
		t.Fatalf("%d failures logged, want at least 2: %q", n, logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestPurgerRefuses(t *testing.T) {
	s := openSQLite(t)
	for name, p := range map[string]*history.Purger{
		"no store":      {Retention: retention, Every: time.Hour},
		"retention 0":   {Store: s, Every: time.Hour},
		"retention < 0": {Store: s, Retention: -day, Every: time.Hour},
		"every 0":       {Store: s, Retention: retention},
	} {
		if err := p.Run(context.Background()); err == nil {
			t.Errorf("%s: Run = nil", name)
		}
	}
	if _, err := (&history.Purger{Store: s}).PurgeOnce(context.Background()); err == nil {
		t.Error("PurgeOnce without retention = nil")
	}
}

func TestPurgeOnce(t *testing.T) {
	s := openSQLite(t)
	now := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	if err := s.Append(context.Background(), []history.Entry{
		{Account: "acc", Time: now.Add(-184 * day), Kind: history.KindData, Detail: "184"},
		{Account: "acc", Time: now.Add(-182 * day), Kind: history.KindData, Detail: "182"},
	}); err != nil {
		t.Fatal(err)
	}
	p := &history.Purger{Store: s, Retention: retention, Now: func() time.Time { return now }}
	if n, err := p.PurgeOnce(context.Background()); n != 1 || err != nil {
		t.Fatalf("PurgeOnce = %d, %v; want 1", n, err)
	}
	if got := ages(t, s); !slices.Equal(got, []string{"182"}) {
		t.Fatalf("left %v", got)
	}
}
