package dashboard

// TEST DOUBLE. memHistory is an in-memory history.Store, ours, for the
// dashboard's tests only, while the real stores (history/sqlite,
// history/postgres) are written on other branches; at merge the tests
// switch to the SQLite store. It follows the interface's documented
// semantics: Append assigns ids; List is one account's rows, newest
// first, since Since, after an opaque cursor, capped at MaxLimit, with
// Next empty on the last page; SetPreferences replaces the preferences
// and appends its records together; Report records a KindReport row of
// the connection's account once, answers First false after, and
// ErrUnknownCode for a code that names no connection.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sesame-id/sesame/internal/history"
)

type memHistory struct {
	mu       sync.Mutex
	rows     []history.Entry
	lastID   int64
	prefs    map[string]history.Preferences
	reported map[string]bool
	// fail, when set, is what every call answers (a store that is down).
	fail error
}

func newMemHistory() *memHistory {
	return &memHistory{prefs: map[string]history.Preferences{}, reported: map[string]bool{}}
}

var _ history.Store = (*memHistory)(nil)

func (m *memHistory) Append(ctx context.Context, entries []history.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.append(entries)
	return nil
}

func (m *memHistory) append(entries []history.Entry) {
	for _, e := range entries {
		m.lastID++
		e.ID = m.lastID
		e.Scopes = slices.Clone(e.Scopes)
		m.rows = append(m.rows, e)
	}
}

// newer orders rows newest first: by time, then by id.
func newer(a, b history.Entry) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	return a.ID > b.ID
}

// The cursor is the last row's time and id; the double refuses any other
// text, as a real store would refuse a cursor it did not make.
func encodeCursor(e history.Entry) string {
	return strconv.FormatInt(e.Time.UnixNano(), 10) + "." + strconv.FormatInt(e.ID, 10)
}

func decodeCursor(s string) (history.Entry, error) {
	ts, id, ok := strings.Cut(s, ".")
	n, err1 := strconv.ParseInt(ts, 10, 64)
	i, err2 := strconv.ParseInt(id, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return history.Entry{}, fmt.Errorf("memhistory: bad cursor %q", s)
	}
	return history.Entry{Time: time.Unix(0, n), ID: i}, nil
}

func (m *memHistory) List(ctx context.Context, q history.Query) (history.Page, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return history.Page{}, m.fail
	}
	limit := q.Limit
	if limit <= 0 || limit > history.MaxLimit {
		limit = history.MaxLimit
	}
	var after *history.Entry
	if q.After != "" {
		c, err := decodeCursor(q.After)
		if err != nil {
			return history.Page{}, err
		}
		after = &c
	}
	var rows []history.Entry
	for _, e := range m.rows {
		if e.Account == q.Account && !e.Time.Before(q.Since) && (after == nil || newer(*after, e)) {
			rows = append(rows, e)
		}
	}
	slices.SortFunc(rows, func(a, b history.Entry) int {
		if newer(a, b) {
			return -1
		}
		return 1
	})
	var p history.Page
	if len(rows) > limit {
		rows = rows[:limit]
		p.Next = encodeCursor(rows[limit-1])
	}
	for _, e := range rows {
		e.Scopes = slices.Clone(e.Scopes)
		p.Entries = append(p.Entries, e)
	}
	return p, nil
}

func (m *memHistory) Preferences(ctx context.Context, account string) (history.Preferences, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return history.Preferences{}, false, m.fail
	}
	p, ok := m.prefs[account]
	p.IdPs = maps.Clone(p.IdPs)
	return p, ok, nil
}

func (m *memHistory) SetPreferences(ctx context.Context, p history.Preferences, record []history.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if p.Account == "" {
		return errors.New("memhistory: preferences without an account")
	}
	p.IdPs = maps.Clone(p.IdPs)
	m.prefs[p.Account] = p
	m.append(record)
	return nil
}

func (m *memHistory) Report(ctx context.Context, code string, t time.Time) (history.Report, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return history.Report{}, m.fail
	}
	i := slices.IndexFunc(m.rows, func(e history.Entry) bool { return e.Kind == history.KindConnection && e.Code == code })
	if i < 0 {
		return history.Report{}, history.ErrUnknownCode
	}
	conn := m.rows[i]
	rep := history.Report{Code: code, Time: t, Connection: conn}
	if m.reported[code] {
		return rep, nil
	}
	m.reported[code], rep.First = true, true
	m.append([]history.Entry{{Account: conn.Account, Time: t, Kind: history.KindReport, Event: "CITIZEN_REPORTED",
		Platform: conn.Platform, SP: conn.SP, SPName: conn.SPName, IdP: conn.IdP, IdPName: conn.IdPName, Code: code}})
	return rep, nil
}

func (m *memHistory) Purge(ctx context.Context, before time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, m.fail
	}
	n := len(m.rows)
	m.rows = slices.DeleteFunc(m.rows, func(e history.Entry) bool { return e.Time.Before(before) })
	for code := range m.reported {
		if !slices.ContainsFunc(m.rows, func(e history.Entry) bool { return e.Kind == history.KindConnection && e.Code == code }) {
			delete(m.reported, code)
		}
	}
	return int64(n - len(m.rows)), nil
}

func (m *memHistory) Close() error { return nil }

// Helpers of the tests (not of the interface).

// entries is a copy of every row, in the order written.
func (m *memHistory) entries() []history.Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.rows)
}

// setFail makes every call fail with err (nil: work again).
func (m *memHistory) setFail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}
