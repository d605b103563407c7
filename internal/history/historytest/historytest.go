// Package historytest is the conformance suite of history.Store: the
// SQLite and PostgreSQL stores both run it, so the citizen space and the
// broker can be tested against either and behave the same on both.
package historytest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/history"
)

// Run runs the conformance suite.
//
// open is called with each subtest's t. Its first call for a t must
// return a store on a fresh, empty database; a further call with the same
// t must return another handle on that same database, with its own
// connections, as a second process (the broker beside the citizen space)
// would have. The suite closes the stores it opens; open may also close
// them at t.Cleanup, so Close must tolerate a second call or open must
// not close them. Opener builds such an open from two simpler functions.
func Run(t *testing.T, open func(t *testing.T) history.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"AppendEmpty", testAppendEmpty},
		{"RoundTrip", testRoundTrip},
		{"UTCAndPrecision", testUTCAndPrecision},
		{"AppendAtomic", testAppendAtomic},
		{"IDs", testIDs},
		{"ListOrder", testListOrder},
		{"ListAccount", testListAccount},
		{"ListSince", testListSince},
		{"ListLimit", testListLimit},
		{"LargePage", testLargePage},
		{"Paginate", testPaginate},
		{"PaginateWhileWriting", testPaginateWhileWriting},
		{"BadCursor", testBadCursor},
		{"PreferencesUnknown", testPreferencesUnknown},
		{"PreferencesRoundTrip", testPreferencesRoundTrip},
		{"PreferencesRecord", testPreferencesRecord},
		{"PreferencesAtomic", testPreferencesAtomic},
		{"PreferencesConcurrent", testPreferencesConcurrent},
		{"Report", testReport},
		{"ReportUnknown", testReportUnknown},
		{"ReportConcurrent", testReportConcurrent},
		{"Purge", testPurge},
		{"PurgeReports", testPurgeReports},
		{"PurgeLarge", testPurgeLarge},
		{"TwoHandles", testTwoHandles},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{t: t, open: open}
			e.s = e.reopen()
			tc.fn(t, e)
		})
	}
}

// Opener returns an open for Run: fresh makes an empty database for a
// test and returns its address (a file path, a URL), connect opens a
// handle on an address. The address is remembered per test, so a second
// call for one test connects to the same database.
func Opener(fresh func(t *testing.T) string, connect func(t *testing.T, addr string) history.Store) func(t *testing.T) history.Store {
	var mu sync.Mutex
	addrs := map[*testing.T]string{}
	return func(t *testing.T) history.Store {
		t.Helper()
		mu.Lock()
		addr, ok := addrs[t]
		mu.Unlock()
		if !ok {
			addr = fresh(t)
			mu.Lock()
			addrs[t] = addr
			mu.Unlock()
			t.Cleanup(func() {
				mu.Lock()
				delete(addrs, t)
				mu.Unlock()
			})
		}
		return connect(t, addr)
	}
}

// env is one subtest's database: s is its first handle.
type env struct {
	t    *testing.T
	open func(*testing.T) history.Store
	s    history.Store
}

// reopen returns another handle on the subtest's database, closed at the
// end of the subtest.
func (e *env) reopen() history.Store {
	e.t.Helper()
	s := e.open(e.t)
	var once sync.Once
	e.t.Cleanup(func() { once.Do(func() { _ = s.Close() }) })
	return s
}

// base is the time the suite's rows are written around: recent, so a
// store with a retention bug shows it, and on a whole second.
var base = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)

func ctx() context.Context { return context.Background() }

// conn returns a connection entry of account at base+offset.
func conn(account string, offset time.Duration, code string) history.Entry {
	return history.Entry{
		Account:  account,
		Time:     base.Add(offset),
		Kind:     history.KindConnection,
		Event:    "FC_CODE_ISSUED",
		Platform: "standard",
		SP:       "sp-impots", SPName: "Impôts — Espace particulier",
		IdP: "ameli", IdPName: "Ameli",
		ACR:     "eidas1",
		Scopes:  []string{"openid", "given_name"},
		Code:    code,
		LoginID: "login-" + code,
	}
}

// row returns a minimal entry of account at t.
func row(account string, t time.Time, detail string) history.Entry {
	return history.Entry{Account: account, Time: t, Kind: history.KindData, Detail: detail}
}

func mustAppend(t *testing.T, s history.Store, entries ...history.Entry) {
	t.Helper()
	if err := s.Append(ctx(), entries); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func mustList(t *testing.T, s history.Store, q history.Query) history.Page {
	t.Helper()
	p, err := s.List(ctx(), q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	return p
}

// listAll pages through an account with page size limit and returns every
// entry, failing on a page too long or a Next on an empty page.
func listAll(t *testing.T, s history.Store, q history.Query) []history.Entry {
	t.Helper()
	var all []history.Entry
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("List never ends")
		}
		p := mustList(t, s, q)
		if len(p.Entries) > history.PageLimit(q.Limit) {
			t.Fatalf("page of %d entries for Limit %d", len(p.Entries), q.Limit)
		}
		all = append(all, p.Entries...)
		if p.Next == "" {
			return all
		}
		if len(p.Entries) == 0 {
			t.Fatal("empty page with a Next")
		}
		q.After = p.Next
	}
}

// sameTime reports whether got is want as a store keeps it: in UTC, to
// the millisecond at least.
func sameTime(got, want time.Time) bool {
	d := want.Sub(got)
	return got.Location() == time.UTC && d >= 0 && d < time.Millisecond
}

// checkEntry fails unless got is want as stored: every field equal, Time
// by sameTime, ID assigned.
func checkEntry(t *testing.T, got, want history.Entry) {
	t.Helper()
	if got.ID <= 0 {
		t.Errorf("entry without an ID: %+v", got)
	}
	if !sameTime(got.Time, want.Time) {
		t.Errorf("Time = %v (%v), want %v in UTC", got.Time, got.Time.Location(), want.Time)
	}
	g, w := got, want
	g.ID, w.ID = 0, 0
	g.Time, w.Time = time.Time{}, time.Time{}
	if len(w.Scopes) == 0 {
		w.Scopes = nil
	}
	if fmt.Sprintf("%#v", g) != fmt.Sprintf("%#v", w) {
		t.Errorf("entry\n got %#v\nwant %#v", g, w)
	}
}

// details returns the Detail of each entry, which the suite uses as a
// row's name.
func details(entries []history.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Detail
	}
	return out
}

func testAppendEmpty(t *testing.T, e *env) {
	if err := e.s.Append(ctx(), nil); err != nil {
		t.Fatalf("Append(nil): %v", err)
	}
	if err := e.s.Append(ctx(), []history.Entry{}); err != nil {
		t.Fatalf("Append([]): %v", err)
	}
	p := mustList(t, e.s, history.Query{Account: "acc"})
	if len(p.Entries) != 0 || p.Next != "" {
		t.Fatalf("List of an empty store = %+v", p)
	}
}

func testRoundTrip(t *testing.T, e *env) {
	paris := time.FixedZone("CEST", 2*3600)
	full := history.Entry{
		ID:       999999, // ignored
		Account:  "acc-round",
		Time:     time.Date(2025, 6, 1, 12, 30, 15, 123456789, paris),
		Kind:     history.KindConnection,
		Event:    "FC_CODE_ISSUED",
		Platform: "eidas",
		SP:       "sp-caf", SPName: "Caisse d'allocations familiales — Île-de-France « Mes droits » 🇫🇷",
		IdP: "idp-jp", IdPName: "日本の身元 ✓ \"quoted\" 'single' \\ back",
		ACR:          "eidas2",
		Scopes:       []string{"openid", "given_name", "birthdate", "résidence"},
		DataProvider: "dgfip",
		Code:         "ABCD-1234",
		LoginID:      "0f8fad5b-d9cb-469f-a165-70867728950e",
		Detail:       "block:ameli",
	}
	minimal := history.Entry{Account: "acc-round", Time: base, Kind: history.KindBlocked}
	mustAppend(t, e.s, minimal, full)
	p := mustList(t, e.s, history.Query{Account: "acc-round"})
	if len(p.Entries) != 2 {
		t.Fatalf("List = %d entries, want 2", len(p.Entries))
	}
	checkEntry(t, p.Entries[0], full)
	checkEntry(t, p.Entries[1], minimal)
	if p.Entries[1].Scopes != nil {
		t.Errorf("Scopes of an entry without = %#v, want nil", p.Entries[1].Scopes)
	}
	if p.Entries[0].ID == 999999 {
		t.Error("Append kept the caller's ID")
	}
}

func testUTCAndPrecision(t *testing.T, e *env) {
	// Milliseconds apart in three zones: read back in UTC, in order.
	zones := []*time.Location{time.FixedZone("W", -9*3600), time.UTC, time.FixedZone("E", 13*3600)}
	var want []history.Entry
	for i := range 30 {
		at := base.Add(time.Duration(i) * time.Millisecond).In(zones[i%3])
		want = append(want, row("acc-utc", at, fmt.Sprint(i)))
	}
	mustAppend(t, e.s, want...)
	got := mustList(t, e.s, history.Query{Account: "acc-utc", Limit: 100}).Entries
	if len(got) != len(want) {
		t.Fatalf("List = %d entries, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[len(want)-1-i]
		if g.Detail != w.Detail || !sameTime(g.Time, w.Time) {
			t.Errorf("entry %d = %s at %v, want %s at %v (UTC, ms)", i, g.Detail, g.Time, w.Detail, w.Time)
		}
	}
}

func testAppendAtomic(t *testing.T, e *env) {
	for name, bad := range map[string]history.Entry{
		"no account": {Time: base, Kind: history.KindData},
		"no kind":    {Account: "acc-atomic", Time: base},
	} {
		batch := []history.Entry{row("acc-atomic", base, "a"), row("acc-atomic", base, "b"), bad, row("acc-atomic", base, "c")}
		if err := e.s.Append(ctx(), batch); err == nil {
			t.Errorf("Append of a batch with an entry with %s: no error", name)
		}
	}
	if p := mustList(t, e.s, history.Query{Account: "acc-atomic"}); len(p.Entries) != 0 {
		t.Fatalf("a failed Append wrote %v", details(p.Entries))
	}
	if p := mustList(t, e.s, history.Query{Account: ""}); len(p.Entries) != 0 {
		t.Fatalf("an entry without account was written: %+v", p.Entries)
	}
}

func testIDs(t *testing.T, e *env) {
	var batch []history.Entry
	for i := range 50 {
		batch = append(batch, row("acc-ids", base, fmt.Sprint(i)))
	}
	mustAppend(t, e.s, batch...)
	mustAppend(t, e.s, batch...)
	seen := map[int64]bool{}
	for _, g := range listAll(t, e.s, history.Query{Account: "acc-ids", Limit: 30}) {
		if g.ID <= 0 || seen[g.ID] {
			t.Fatalf("ID %d zero or repeated", g.ID)
		}
		seen[g.ID] = true
	}
	if len(seen) != 100 {
		t.Fatalf("%d distinct IDs, want 100", len(seen))
	}
}

func testListOrder(t *testing.T, e *env) {
	// Written out of order, in three Appends; b1 and b2 share a time, as
	// do the batch c*: among equals, the later written comes first.
	mustAppend(t, e.s, row("acc", base.Add(2*time.Hour), "late"), row("acc", base, "b1"))
	mustAppend(t, e.s, row("acc", base.Add(-time.Hour), "early"), row("acc", base, "b2"))
	mustAppend(t, e.s, row("acc", base.Add(time.Minute), "c1"), row("acc", base.Add(time.Minute), "c2"),
		row("acc", base.Add(time.Minute), "c3"))
	got := details(mustList(t, e.s, history.Query{Account: "acc"}).Entries)
	want := []string{"late", "c3", "c2", "c1", "b2", "b1", "early"}
	if !slices.Equal(got, want) {
		t.Fatalf("List order = %v, want %v", got, want)
	}
}

func testListAccount(t *testing.T, e *env) {
	mustAppend(t, e.s, row("alice", base, "a1"), row("bob", base, "b1"), row("alice", base.Add(time.Second), "a2"),
		row("alice-2", base, "x"), row("Alice", base, "y"))
	if got := details(mustList(t, e.s, history.Query{Account: "alice"}).Entries); !slices.Equal(got, []string{"a2", "a1"}) {
		t.Fatalf("alice's history = %v", got)
	}
	if got := details(mustList(t, e.s, history.Query{Account: "bob"}).Entries); !slices.Equal(got, []string{"b1"}) {
		t.Fatalf("bob's history = %v", got)
	}
	for _, who := range []string{"nobody", "", "%", "alice%", "ALICE"} {
		if p := mustList(t, e.s, history.Query{Account: who}); len(p.Entries) != 0 || p.Next != "" {
			t.Fatalf("history of %q = %+v", who, p)
		}
	}
}

func testListSince(t *testing.T, e *env) {
	for i := range 10 {
		mustAppend(t, e.s, row("acc", base.Add(time.Duration(i)*time.Hour), fmt.Sprint(i)))
	}
	cases := []struct {
		since time.Time
		want  int
	}{
		{time.Time{}, 10},
		{base.Add(-time.Hour), 10},
		{base, 10},
		{base.Add(7 * time.Hour), 3},                   // inclusive
		{base.Add(7*time.Hour + time.Nanosecond), 2},   // a bound below the precision
		{base.Add(7 * time.Hour).In(time.Local), 3},    // any zone
		{base.Add(9*time.Hour + time.Millisecond), 0},  // after the last
		{base.Add(-200 * 24 * time.Hour).Local(), 10},  // long ago
		{time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), 10}, // near the zero time
	}
	for _, c := range cases {
		got := mustList(t, e.s, history.Query{Account: "acc", Since: c.since})
		if len(got.Entries) != c.want {
			t.Errorf("Since %v: %d entries (%v), want %d", c.since, len(got.Entries), details(got.Entries), c.want)
		}
	}
	// Since and paging together.
	all := listAll(t, e.s, history.Query{Account: "acc", Since: base.Add(3 * time.Hour), Limit: 2})
	if got := details(all); !slices.Equal(got, []string{"9", "8", "7", "6", "5", "4", "3"}) {
		t.Fatalf("paged since 3h = %v", got)
	}
}

func testListLimit(t *testing.T, e *env) {
	var batch []history.Entry
	for i := range history.MaxLimit + 50 {
		batch = append(batch, row("acc", base.Add(time.Duration(i)*time.Second), fmt.Sprint(i)))
	}
	mustAppend(t, e.s, batch...)
	for _, c := range []struct{ limit, want int }{
		{0, history.DefaultLimit},
		{-1, history.DefaultLimit},
		{-1000, history.DefaultLimit},
		{1, 1},
		{history.DefaultLimit + 1, history.DefaultLimit + 1},
		{history.MaxLimit, history.MaxLimit},
		{history.MaxLimit + 1, history.MaxLimit},
		{1 << 30, history.MaxLimit},
	} {
		p := mustList(t, e.s, history.Query{Account: "acc", Limit: c.limit})
		if len(p.Entries) != c.want || p.Next == "" {
			t.Errorf("Limit %d: %d entries (Next %q), want %d and a Next", c.limit, len(p.Entries), p.Next, c.want)
		}
	}
	// Exactly a page left: no Next, no empty page after it.
	p := mustList(t, e.s, history.Query{Account: "acc", Since: base.Add(time.Duration(history.MaxLimit+30) * time.Second), Limit: 20})
	if len(p.Entries) != 20 || p.Next != "" {
		t.Errorf("a last full page: %d entries, Next %q; want 20 and none", len(p.Entries), p.Next)
	}
}

func testLargePage(t *testing.T, e *env) {
	// A page of MaxLimit rows, every field filled, long Unicode values:
	// what a citizen sees after a busy month.
	var batch []history.Entry
	long := strings.Repeat("Établissement public — ", 20)
	for i := range history.MaxLimit {
		c := conn("acc-large", time.Duration(i)*time.Minute, fmt.Sprintf("CODE-%04d", i))
		c.SPName = fmt.Sprintf("%s n°%d 🇫🇷", long, i)
		c.Scopes = []string{"openid", "given_name", "family_name", "birthdate", "birthplace", "email", "preferred_username"}
		c.Detail = fmt.Sprint(i)
		batch = append(batch, c)
	}
	mustAppend(t, e.s, batch...)
	p := mustList(t, e.s, history.Query{Account: "acc-large", Limit: history.MaxLimit})
	if len(p.Entries) != history.MaxLimit || p.Next != "" {
		t.Fatalf("page of %d entries, Next %q; want %d and none", len(p.Entries), p.Next, history.MaxLimit)
	}
	for i, g := range p.Entries {
		checkEntry(t, g, batch[len(batch)-1-i])
	}
}

func testPaginate(t *testing.T, e *env) {
	// 137 rows on 9 distinct times, so most page boundaries fall inside a
	// run of equal times, written in several Appends.
	const n = 137
	for i := 0; i < n; i += 10 {
		var batch []history.Entry
		for j := i; j < min(i+10, n); j++ {
			batch = append(batch, row("acc", base.Add(time.Duration((j*7)%9)*time.Second), fmt.Sprint(j)))
		}
		mustAppend(t, e.s, batch...)
	}
	mustAppend(t, e.s, row("other", base, "other"))
	want := mustList(t, e.s, history.Query{Account: "acc", Limit: history.MaxLimit}).Entries
	if len(want) != n {
		t.Fatalf("one page of all = %d entries, want %d", len(want), n)
	}
	for i := 1; i < len(want); i++ {
		a, b := want[i-1], want[i]
		if a.Time.Before(b.Time) || (a.Time.Equal(b.Time) && a.ID <= b.ID) {
			t.Fatalf("entries %d and %d out of (time, id) order: (%v, %d) then (%v, %d)", i-1, i, a.Time, a.ID, b.Time, b.ID)
		}
	}
	for _, limit := range []int{1, 2, 7, 9, 10, 20, 68, 136, 137, 138} {
		got := listAll(t, e.s, history.Query{Account: "acc", Limit: limit})
		if len(got) != n {
			t.Errorf("Limit %d: paging returned %d entries, want %d", limit, len(got), n)
			continue
		}
		for i := range got {
			if got[i].ID != want[i].ID {
				t.Errorf("Limit %d: entry %d is id %d, want %d", limit, i, got[i].ID, want[i].ID)
				break
			}
		}
	}
}

func testPaginateWhileWriting(t *testing.T, e *env) {
	// A cursor is a position, not an offset: rows written or purged
	// between two pages neither repeat nor hide the older rows.
	for i := range 30 {
		mustAppend(t, e.s, row("acc", base.Add(time.Duration(i)*time.Second), fmt.Sprint(i)))
	}
	p1 := mustList(t, e.s, history.Query{Account: "acc", Limit: 10})
	mustAppend(t, e.s, row("acc", base.Add(time.Hour), "new1"), row("acc", base.Add(time.Hour), "new2"),
		row("acc", base.Add(25*time.Second), "25bis")) // newer than the cursor: not on later pages
	if _, err := e.s.Purge(ctx(), base.Add(5*time.Second)); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	rest := listAll(t, e.s, history.Query{Account: "acc", Limit: 10, After: p1.Next})
	var want []string
	for i := 19; i >= 5; i-- {
		want = append(want, fmt.Sprint(i))
	}
	if got := details(rest); !slices.Equal(got, want) {
		t.Fatalf("after the first page = %v, want %v", got, want)
	}
}

func testBadCursor(t *testing.T, e *env) {
	for i := range 30 {
		mustAppend(t, e.s, row("acc", base.Add(time.Duration(i)*time.Second), fmt.Sprint(i)))
	}
	good := mustList(t, e.s, history.Query{Account: "acc", Limit: 5}).Next
	if good == "" {
		t.Fatal("no Next on a first page of 5 out of 30")
	}
	flipped := []byte(good)
	flipped[len(flipped)/2] ^= 0x01
	bad := []string{
		"garbage",
		"!!!!",
		" " + good,
		good + "=",
		good + "A",
		good[:len(good)-1],
		good[:len(good)/2],
		string(flipped),
		strings.ToUpper(good),
		strings.Repeat("A", len(good)),
		strings.Repeat("_", len(good)),
		"1,2",
		"2025-06-01T10:00:00Z|12",
		"' OR 1=1 --",
		"\x00\xff\xfe",
		strings.Repeat("x", 10000),
	}
	for _, after := range bad {
		p, err := func() (p history.Page, err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v", r)
				}
			}()
			return e.s.List(ctx(), history.Query{Account: "acc", After: after})
		}()
		if !errors.Is(err, history.ErrBadCursor) {
			t.Errorf("List with After %q: err %v, want ErrBadCursor", after, err)
		}
		if len(p.Entries) != 0 || p.Next != "" {
			t.Errorf("List with After %q returned a page: %+v", after, p)
		}
	}
	if got := mustList(t, e.s, history.Query{Account: "acc", After: good, Limit: 5}); len(got.Entries) != 5 {
		t.Fatalf("the good cursor then gave %d entries", len(got.Entries))
	}
}

func testPreferencesUnknown(t *testing.T, e *env) {
	for _, acc := range []string{"nobody", ""} {
		p, found, err := e.s.Preferences(ctx(), acc)
		if err != nil || found {
			t.Fatalf("Preferences(%q) = %+v, %v, %v; want not found", acc, p, found, err)
		}
	}
}

func checkPrefs(t *testing.T, s history.Store, want history.Preferences) {
	t.Helper()
	got, found, err := s.Preferences(ctx(), want.Account)
	if err != nil || !found {
		t.Fatalf("Preferences(%q) = found %v, %v", want.Account, found, err)
	}
	if got.IdPs == nil {
		t.Errorf("Preferences(%q).IdPs is nil, want a map", want.Account)
	}
	wantIdPs := want.IdPs
	if wantIdPs == nil {
		wantIdPs = map[string]bool{}
	}
	if got.Account != want.Account || got.AllowFuture != want.AllowFuture || !maps.Equal(got.IdPs, wantIdPs) {
		t.Errorf("Preferences(%q)\n got %+v\nwant %+v", want.Account, got, want)
	}
	if !sameTime(got.Updated, want.Updated) {
		t.Errorf("Preferences(%q).Updated = %v, want %v in UTC", want.Account, got.Updated, want.Updated)
	}
}

func testPreferencesRoundTrip(t *testing.T, e *env) {
	p := history.Preferences{
		Account:     "acc",
		IdPs:        map[string]bool{"ameli": false, "impots": true, "la-poste": true, "identité-numérique 🇫🇷": false, `q"uote`: true},
		AllowFuture: true,
		Updated:     base.Add(123456789 * time.Nanosecond).In(time.FixedZone("X", 5*3600)),
	}
	if err := e.s.SetPreferences(ctx(), p, nil); err != nil {
		t.Fatalf("SetPreferences: %v", err)
	}
	checkPrefs(t, e.s, p)
	got, _, _ := e.s.Preferences(ctx(), "acc")
	if got.Allows("ameli") || !got.Allows("impots") || !got.Allows("new-idp") {
		t.Errorf("Allows on %+v", got)
	}

	// Replace, not merge: impots and the others go.
	p2 := history.Preferences{Account: "acc", IdPs: map[string]bool{"ameli": true}, AllowFuture: false, Updated: base.Add(time.Hour)}
	if err := e.s.SetPreferences(ctx(), p2, []history.Entry{}); err != nil {
		t.Fatalf("SetPreferences: %v", err)
	}
	checkPrefs(t, e.s, p2)

	// Empty and nil maps read back as a non-nil empty map.
	for _, idps := range []map[string]bool{{}, nil} {
		p3 := history.Preferences{Account: "acc", IdPs: idps, AllowFuture: true, Updated: base.Add(2 * time.Hour)}
		if err := e.s.SetPreferences(ctx(), p3, nil); err != nil {
			t.Fatalf("SetPreferences(%#v): %v", idps, err)
		}
		checkPrefs(t, e.s, p3)
	}

	// Another account is untouched, and a purge keeps preferences.
	other := history.Preferences{Account: "other", IdPs: map[string]bool{"x": true}, Updated: base.Add(-400 * 24 * time.Hour)}
	if err := e.s.SetPreferences(ctx(), other, nil); err != nil {
		t.Fatalf("SetPreferences: %v", err)
	}
	if _, err := e.s.Purge(ctx(), base.Add(24*time.Hour)); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	checkPrefs(t, e.s, other)
	checkPrefs(t, e.s, history.Preferences{Account: "acc", AllowFuture: true, Updated: base.Add(2 * time.Hour)})
}

func testPreferencesRecord(t *testing.T, e *env) {
	p := history.Preferences{Account: "acc", IdPs: map[string]bool{"ameli": false}, AllowFuture: true, Updated: base}
	rec := []history.Entry{
		{Account: "acc", Time: base, Kind: history.KindPreferences, Event: "PREFERENCES_CHANGED", IdP: "ameli", IdPName: "Ameli", Detail: "block:ameli"},
		{Account: "acc", Time: base, Kind: history.KindPreferences, Event: "PREFERENCES_CHANGED", Detail: "future:allow"},
	}
	if err := e.s.SetPreferences(ctx(), p, rec); err != nil {
		t.Fatalf("SetPreferences: %v", err)
	}
	got := mustList(t, e.s, history.Query{Account: "acc"}).Entries
	if len(got) != 2 {
		t.Fatalf("record entries = %d, want 2", len(got))
	}
	checkEntry(t, got[0], rec[1])
	checkEntry(t, got[1], rec[0])
}

func testPreferencesAtomic(t *testing.T, e *env) {
	before := history.Preferences{Account: "acc", IdPs: map[string]bool{"ameli": true}, AllowFuture: true, Updated: base}
	if err := e.s.SetPreferences(ctx(), before, nil); err != nil {
		t.Fatalf("SetPreferences: %v", err)
	}
	bad := []history.Entry{
		{Account: "acc", Time: base.Add(time.Hour), Kind: history.KindPreferences, Detail: "block:ameli"},
		{Account: "", Time: base.Add(time.Hour), Kind: history.KindPreferences, Detail: "broken"},
	}
	for _, acc := range []string{"acc", "new"} {
		after := history.Preferences{Account: acc, IdPs: map[string]bool{"ameli": false}, Updated: base.Add(time.Hour)}
		if err := e.s.SetPreferences(ctx(), after, bad); err == nil {
			t.Fatalf("SetPreferences(%s) with a bad record entry: no error", acc)
		}
	}
	checkPrefs(t, e.s, before)
	if _, found, err := e.s.Preferences(ctx(), "new"); found || err != nil {
		t.Fatalf("a failed SetPreferences created preferences (found %v, %v)", found, err)
	}
	if got := mustList(t, e.s, history.Query{Account: "acc"}).Entries; len(got) != 0 {
		t.Fatalf("a failed SetPreferences wrote %v", details(got))
	}
	// The preferences fail, the record (valid) must not be written either.
	good := []history.Entry{{Account: "acc", Time: base, Kind: history.KindPreferences, Detail: "orphan"}}
	if err := e.s.SetPreferences(ctx(), history.Preferences{Updated: base}, good); err == nil {
		t.Fatal("SetPreferences without an account: no error")
	}
	if got := mustList(t, e.s, history.Query{Account: "acc"}).Entries; len(got) != 0 {
		t.Fatalf("a failed SetPreferences wrote %v", details(got))
	}
}

func testPreferencesConcurrent(t *testing.T, e *env) {
	// Concurrent saves of one account (two tabs, two handles): each is a
	// whole replacement, so one of them wins entirely.
	other := e.reopen()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			s := e.s
			if i%2 == 1 {
				s = other
			}
			p := history.Preferences{Account: "acc", IdPs: map[string]bool{fmt.Sprint("idp", i): true, "common": i%3 == 0}, Updated: base}
			rec := []history.Entry{{Account: "acc", Time: base, Kind: history.KindPreferences, Detail: fmt.Sprint(i)}}
			errs <- s.SetPreferences(ctx(), p, rec)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("SetPreferences: %v", err)
		}
	}
	got, found, err := e.s.Preferences(ctx(), "acc")
	if err != nil || !found || len(got.IdPs) != 2 {
		t.Fatalf("after concurrent saves: %+v, %v, %v; want one save's two IdPs", got, found, err)
	}
	if got := len(listAll(t, e.s, history.Query{Account: "acc"})); got != n {
		t.Fatalf("%d record entries, want %d", got, n)
	}
}

func testReport(t *testing.T, e *env) {
	c := conn("alice", 0, "CODE-1")
	mustAppend(t, e.s, c, conn("alice", time.Minute, "CODE-2"), conn("bob", 0, "CODE-B"))
	at := base.Add(time.Hour + 123456789*time.Nanosecond).In(time.FixedZone("X", 3600))

	r, err := e.s.Report(ctx(), "CODE-1", at)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if !r.First || r.Code != "CODE-1" || !sameTime(r.Time, at) {
		t.Errorf("first Report = %+v, want First, CODE-1, at %v", r, at)
	}
	checkEntry(t, r.Connection, c)

	want := history.Entry{
		Account: "alice", Time: at, Kind: history.KindReport, Event: "CITIZEN_REPORTED",
		SP: c.SP, SPName: c.SPName, IdP: c.IdP, IdPName: c.IdPName, Code: "CODE-1",
	}
	got := mustList(t, e.s, history.Query{Account: "alice"}).Entries
	if len(got) != 3 {
		t.Fatalf("alice's history = %d entries, want 3", len(got))
	}
	rep := got[0]
	// The copy of the connection's other fields (Platform...) is the
	// store's choice; these must be there.
	if rep.Kind != want.Kind || rep.Event != want.Event || rep.Account != want.Account || rep.Code != want.Code ||
		rep.SP != want.SP || rep.SPName != want.SPName || rep.IdP != want.IdP || rep.IdPName != want.IdPName ||
		!sameTime(rep.Time, at) || rep.ID <= 0 {
		t.Errorf("report entry\n got %+v\nwant %+v", rep, want)
	}

	// Again, from another handle, later: nothing recorded.
	r2, err := e.reopen().Report(ctx(), "CODE-1", at.Add(time.Hour))
	if err != nil {
		t.Fatalf("second Report: %v", err)
	}
	if r2.First || r2.Code != "CODE-1" || !sameTime(r2.Time, at) {
		t.Errorf("second Report = %+v, want not First, time of the first (%v)", r2, at)
	}
	checkEntry(t, r2.Connection, c)
	if n := len(mustList(t, e.s, history.Query{Account: "alice"}).Entries); n != 3 {
		t.Errorf("second Report recorded: %d entries", n)
	}

	// Bob's code goes to bob's history, whoever reports it.
	if r, err := e.s.Report(ctx(), "CODE-B", at); err != nil || !r.First || r.Connection.Account != "bob" {
		t.Fatalf("Report(CODE-B) = %+v, %v", r, err)
	}
	if got := mustList(t, e.s, history.Query{Account: "bob"}).Entries; len(got) != 2 || got[0].Kind != history.KindReport {
		t.Fatalf("bob's history after his report = %+v", got)
	}
}

func testReportUnknown(t *testing.T, e *env) {
	noCode := conn("alice", 0, "")
	data := history.Entry{Account: "alice", Time: base, Kind: history.KindData, Code: "DATA-CODE"}
	rep := history.Entry{Account: "alice", Time: base, Kind: history.KindReport, Code: "REP-CODE"}
	mustAppend(t, e.s, noCode, data, rep, conn("alice", 0, "REAL"))
	for _, code := range []string{"", "NOPE", "DATA-CODE", "REP-CODE", "real", "REAL ", "%", "RE_L"} {
		r, err := e.s.Report(ctx(), code, base)
		if !errors.Is(err, history.ErrUnknownCode) {
			t.Errorf("Report(%q) = %+v, %v; want ErrUnknownCode", code, r, err)
		}
	}
	if n := len(mustList(t, e.s, history.Query{Account: "alice"}).Entries); n != 4 {
		t.Errorf("failed reports recorded: %d entries, want 4", n)
	}
	if r, err := e.s.Report(ctx(), "REAL", base); err != nil || !r.First {
		t.Errorf("Report(REAL) = %+v, %v", r, err)
	}
}

func testReportConcurrent(t *testing.T, e *env) {
	// Each round, racers report one code at once on two handles: a code is
	// single-use, so exactly one is First and one entry is recorded.
	other := e.reopen()
	const rounds, racers = 5, 24
	for round := range rounds {
		code := fmt.Sprint("RACE-", round)
		mustAppend(t, e.s, conn("acc", time.Duration(round)*time.Minute, code))
		var wg sync.WaitGroup
		var mu sync.Mutex
		firsts := 0
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				s := e.s
				if i%2 == 1 {
					s = other
				}
				<-start
				r, err := s.Report(ctx(), code, base.Add(time.Hour))
				if err != nil {
					t.Errorf("Report: %v", err)
					return
				}
				if r.First {
					mu.Lock()
					firsts++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if firsts != 1 {
			t.Fatalf("round %d: %d reports answered First, want 1", round, firsts)
		}
	}
	reports := 0
	for _, g := range listAll(t, e.s, history.Query{Account: "acc"}) {
		if g.Kind == history.KindReport {
			reports++
		}
	}
	if reports != rounds {
		t.Fatalf("%d report entries, want %d", reports, rounds)
	}
}

func testPurge(t *testing.T, e *env) {
	day := 24 * time.Hour
	now := base
	mustAppend(t, e.s,
		row("a", now.Add(-200*day), "old1"),
		row("b", now.Add(-184*day), "old2"),
		row("a", now.Add(-183*day-time.Millisecond), "old3"),
		row("a", now.Add(-183*day), "edge"), // == before: kept
		row("a", now.Add(-182*day), "kept1"),
		row("b", now, "kept2"),
	)
	if err := e.s.SetPreferences(ctx(), history.Preferences{Account: "a", IdPs: map[string]bool{"x": true}, Updated: now.Add(-300 * day)}, nil); err != nil {
		t.Fatalf("SetPreferences: %v", err)
	}
	n, err := e.s.Purge(ctx(), now.Add(-183*day))
	if err != nil || n != 3 {
		t.Fatalf("Purge = %d, %v; want 3", n, err)
	}
	if got := details(mustList(t, e.s, history.Query{Account: "a"}).Entries); !slices.Equal(got, []string{"kept1", "edge"}) {
		t.Errorf("a after purge = %v", got)
	}
	if got := details(mustList(t, e.s, history.Query{Account: "b"}).Entries); !slices.Equal(got, []string{"kept2"}) {
		t.Errorf("b after purge = %v", got)
	}
	if _, found, err := e.s.Preferences(ctx(), "a"); !found || err != nil {
		t.Errorf("Purge removed preferences (found %v, %v)", found, err)
	}
	if n, err := e.s.Purge(ctx(), now.Add(-183*day)); err != nil || n != 0 {
		t.Errorf("second Purge = %d, %v; want 0", n, err)
	}
	if n, err := e.s.Purge(ctx(), time.Time{}); err != nil || n != 0 {
		t.Errorf("Purge(zero time) = %d, %v; want 0", n, err)
	}
}

func testPurgeReports(t *testing.T, e *env) {
	day := 24 * time.Hour
	// A recent connection reported long ago (a clock jump, an old
	// backup): purging the old report frees the code again.
	mustAppend(t, e.s, conn("a", 0, "RECENT"), conn("a", -300*day, "OLD"))
	if r, err := e.s.Report(ctx(), "RECENT", base.Add(-250*day)); err != nil || !r.First {
		t.Fatalf("Report(RECENT) = %+v, %v", r, err)
	}
	if r, err := e.s.Report(ctx(), "OLD", base.Add(-1*day)); err != nil || !r.First {
		t.Fatalf("Report(OLD) = %+v, %v", r, err)
	}
	n, err := e.s.Purge(ctx(), base.Add(-200*day))
	if err != nil || n != 2 { // the OLD connection, RECENT's report entry
		t.Fatalf("Purge = %d, %v; want 2", n, err)
	}
	if r, err := e.s.Report(ctx(), "RECENT", base); err != nil || !r.First {
		t.Fatalf("Report(RECENT) after its report was purged = %+v, %v; want First", r, err)
	}
	if _, err := e.s.Report(ctx(), "OLD", base); !errors.Is(err, history.ErrUnknownCode) {
		t.Fatalf("Report(OLD) after its connection was purged: %v, want ErrUnknownCode", err)
	}
}

func testPurgeLarge(t *testing.T, e *env) {
	// More rows than a store would sensibly delete in one statement.
	const old, kept = 12345, 50
	batch := make([]history.Entry, 0, 1000)
	for i := range old + kept {
		at := base.Add(-time.Duration(i) * time.Second)
		if i >= kept {
			at = base.Add(-400*24*time.Hour - time.Duration(i)*time.Second)
		}
		batch = append(batch, row(fmt.Sprint("acc", i%7), at, ""))
		if len(batch) == cap(batch) {
			mustAppend(t, e.s, batch...)
			batch = batch[:0]
		}
	}
	mustAppend(t, e.s, batch...)
	n, err := e.s.Purge(ctx(), base.Add(-365*24*time.Hour))
	if err != nil || n != old {
		t.Fatalf("Purge = %d, %v; want %d", n, err, old)
	}
	total := 0
	for i := range 7 {
		total += len(listAll(t, e.s, history.Query{Account: fmt.Sprint("acc", i), Limit: history.MaxLimit}))
	}
	if total != kept {
		t.Fatalf("%d rows left, want %d", total, kept)
	}
}

func testTwoHandles(t *testing.T, e *env) {
	// The broker appends while the citizen space lists, on two handles of
	// one database, as two processes do. Busy or locked errors must not
	// surface.
	other := e.reopen()
	mustAppend(t, e.s, row("seed", base, "from-1"))
	if got := details(mustList(t, other, history.Query{Account: "seed"}).Entries); !slices.Equal(got, []string{"from-1"}) {
		t.Fatalf("second handle sees %v", got)
	}
	const writers, batches, perBatch = 4, 25, 8
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	stop := make(chan struct{})
	for w := range writers {
		s := []history.Store{e.s, other}[w%2]
		wg.Go(func() {
			for b := range batches {
				var batch []history.Entry
				for i := range perBatch {
					batch = append(batch, row(fmt.Sprint("acc", w), base.Add(time.Duration(b*perBatch+i)*time.Millisecond), ""))
				}
				if err := s.Append(ctx(), batch); err != nil {
					errs <- fmt.Errorf("writer %d: Append: %w", w, err)
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 4 {
		s := []history.Store{e.s, other}[r%2]
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, err := s.List(ctx(), history.Query{Account: fmt.Sprint("acc", r), Limit: 50})
				if err != nil {
					errs <- fmt.Errorf("reader %d: List: %w", r, err)
					return
				}
				if p.Next != "" {
					if _, err := s.List(ctx(), history.Query{Account: fmt.Sprint("acc", r), After: p.Next}); err != nil {
						errs <- fmt.Errorf("reader %d: List: %w", r, err)
						return
					}
				}
				if _, _, err := s.Preferences(ctx(), "seed"); err != nil {
					errs <- fmt.Errorf("reader %d: Preferences: %w", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range writers {
		for _, s := range []history.Store{e.s, other} {
			if n := len(listAll(t, s, history.Query{Account: fmt.Sprint("acc", w), Limit: history.MaxLimit})); n != batches*perBatch {
				t.Errorf("acc%d: %d rows, want %d", w, n, batches*perBatch)
			}
		}
	}
}

func testCanceledContext(t *testing.T, e *env) {
	c, cancel := context.WithCancel(ctx())
	cancel()
	if err := e.s.Append(c, []history.Entry{row("acc", base, "x")}); err == nil {
		t.Error("Append with a canceled context: no error")
	}
	if _, err := e.s.List(c, history.Query{Account: "acc"}); err == nil {
		t.Error("List with a canceled context: no error")
	}
	if _, err := e.s.Report(c, "X", base); err == nil || errors.Is(err, history.ErrUnknownCode) {
		t.Errorf("Report with a canceled context: %v, want the context's error", err)
	}
	// The store still works afterwards.
	mustAppend(t, e.s, row("acc", base, "y"))
	if got := details(mustList(t, e.s, history.Query{Account: "acc"}).Entries); !slices.Equal(got, []string{"y"}) {
		t.Fatalf("after the canceled calls = %v", got)
	}
}
