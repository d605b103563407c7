package history_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/history"
)

type names struct{}

func (names) SPName(platform, sp string) string { return platform + "/" + sp + " name" }
func (names) IdPName(idp string) string         { return idp + " name" }

const acct = "0123456789abcdef0123456789abcdef"

// Only a connection, data passed on and a blocked login make rows; every
// other event, and any event without an account, stays in the log.
func TestEntryOf(t *testing.T) {
	for _, tc := range []struct {
		e    audit.Event
		kind string
	}{
		{audit.Event{Name: audit.CodeIssued, Outcome: "ok", Account: acct, Code: "ABCDE-FGHJK"}, history.KindConnection},
		{audit.Event{Name: audit.Introspection, Outcome: "ok", Account: acct, DataProvider: "dp-dgfip"}, history.KindData},
		{audit.Event{Name: audit.Introspection, Outcome: "inactive", Account: acct}, ""},
		{audit.Event{Name: audit.IdPBlocked, Outcome: "S020040", Account: acct}, history.KindBlocked},
		{audit.Event{Name: audit.TokenIssued, Outcome: "ok", Account: acct}, ""},
		{audit.Event{Name: audit.IdentityVerified, Outcome: "ok", Account: acct}, ""},
		{audit.Event{Name: audit.CodeIssued, Outcome: "ok"}, ""},
	} {
		en, ok := history.EntryOf(tc.e)
		if ok != (tc.kind != "") || en.Kind != tc.kind {
			t.Errorf("%s/%s: row %v kind %q, want %q", tc.e.Name, tc.e.Outcome, ok, en.Kind, tc.kind)
		}
	}
}

// Rows reach the store in batches, with the names as they are; Close
// writes what waits.
func TestFeederWrites(t *testing.T) {
	s := openSQLite(t)
	f := history.NewFeeder(s, names{}, history.FeederConfig{BatchSize: 10, FlushEvery: time.Hour}, nil)
	ctx := context.Background()
	for i := range 25 {
		f.Record(ctx, audit.Event{Name: audit.CodeIssued, Outcome: "ok", Account: acct, Platform: "std", SP: "sp", IdP: "impots",
			ACR: "eidas1", Scopes: []string{"openid", "email"}, Code: "ABCDE-FGH" + string(rune('A'+i%20)) + "K", LoginID: "login"})
	}
	// Two batches of 10 are written without waiting for the hour; five wait.
	waitRows(t, s, 20)
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rows := waitRows(t, s, 25)
	r := rows[0]
	if r.SPName != "std/sp name" || r.IdPName != "impots name" || r.Kind != history.KindConnection || r.ACR != "eidas1" || len(r.Scopes) != 2 || r.LoginID != "login" {
		t.Errorf("row %+v", r)
	}
	if st := f.Stats(); st.Written != 25 || st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
	// After Close, events are counted as dropped, never block.
	f.Record(ctx, audit.Event{Name: audit.CodeIssued, Outcome: "ok", Account: acct})
	if f.Stats().Dropped != 1 {
		t.Errorf("an event after Close: %+v", f.Stats())
	}
}

// A store that is down never slows Record: the queue fills, then rows are
// dropped and counted; a batch the store refuses three times is counted
// as failed.
func TestFeederStoreDown(t *testing.T) {
	down := &failing{Store: openSQLite(t)}
	down.fail.Store(true)
	f := history.NewFeeder(down, nil, history.FeederConfig{BatchSize: 5, FlushEvery: 10 * time.Millisecond, Queue: 20}, nil)
	start := time.Now()
	for range 1000 {
		f.Record(context.Background(), audit.Event{Name: audit.CodeIssued, Outcome: "ok", Account: acct})
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("1,000 events took %v with the store down", d)
	}
	if st := f.Stats(); st.Dropped < 900 {
		t.Errorf("stats %+v: want most of 1,000 dropped by a queue of 20", st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.Stats().Failed == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if f.Stats().Failed == 0 {
		t.Errorf("no batch counted as failed: %+v", f.Stats())
	}
	down.fail.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// failing is a real store that refuses appends while fail is set.
type failing struct {
	history.Store
	fail atomic.Bool
}

func (f *failing) Append(ctx context.Context, es []history.Entry) error {
	if f.fail.Load() {
		return errors.New("store down")
	}
	return f.Store.Append(ctx, es)
}

func waitRows(t *testing.T, s history.Store, n int) []history.Entry {
	t.Helper()
	var p history.Page
	for range 300 {
		var err error
		p, err = s.List(context.Background(), history.Query{Account: acct, Limit: history.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) >= n {
			return p.Entries
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d rows, want %d", len(p.Entries), n)
	return nil
}
