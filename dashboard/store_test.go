package dashboard

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/history/sqlite"
)

// testStore is the real SQLite history store (the project tests on real
// databases, not doubles), wrapped with the two things the tests need
// that a store does not offer: making it fail as a store that is down
// does, and reading every row back. It is thin on purpose: each call is
// delegated as is, so what the tests see is SQLite's behaviour.
type testStore struct {
	history.Store

	mu sync.Mutex
	// fail, when set, is what every call answers, before it reaches the
	// database (a store that is down).
	fail error
	// accounts are the accounts rows were written for. A store lists one
	// account at a time, and rows written by the broker (a login at an SP
	// before the person logs in to the space) name accounts the test
	// cannot know otherwise: the account id is a keyed hash of the pivot
	// identity, computed in the broker.
	accounts map[string]bool
}

var _ history.Store = (*testStore)(nil)

// newTestStore opens a fresh SQLite file under the test's temporary
// folder, closed when the test ends.
func newTestStore(t *testing.T) *testStore {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &testStore{Store: s, accounts: map[string]bool{}}
}

// setFail makes every call fail with err (nil: work again).
func (s *testStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// check answers the injected failure, and notes the accounts about to be
// written.
func (s *testStore) check(entries []history.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	for _, e := range entries {
		s.accounts[e.Account] = true
	}
	return nil
}

func (s *testStore) Append(ctx context.Context, entries []history.Entry) error {
	if err := s.check(entries); err != nil {
		return err
	}
	return s.Store.Append(ctx, entries)
}

func (s *testStore) List(ctx context.Context, q history.Query) (history.Page, error) {
	if err := s.check(nil); err != nil {
		return history.Page{}, err
	}
	return s.Store.List(ctx, q)
}

func (s *testStore) Preferences(ctx context.Context, account string) (history.Preferences, bool, error) {
	if err := s.check(nil); err != nil {
		return history.Preferences{}, false, err
	}
	return s.Store.Preferences(ctx, account)
}

func (s *testStore) SetPreferences(ctx context.Context, p history.Preferences, record []history.Entry) error {
	if err := s.check(record); err != nil {
		return err
	}
	return s.Store.SetPreferences(ctx, p, record)
}

// Report's row is of the connection's account, which an Append noted.
func (s *testStore) Report(ctx context.Context, code string, t time.Time) (history.Report, error) {
	if err := s.check(nil); err != nil {
		return history.Report{}, err
	}
	return s.Store.Report(ctx, code, t)
}

func (s *testStore) Purge(ctx context.Context, before time.Time) (int64, error) {
	if err := s.check(nil); err != nil {
		return 0, err
	}
	return s.Store.Purge(ctx, before)
}

// entries is every row of every account written, in the order written
// (by id), read back through List, page by page. It ignores an injected
// failure: it is the test looking, not the space.
func (s *testStore) entries(t *testing.T) []history.Entry {
	t.Helper()
	s.mu.Lock()
	accounts := make([]string, 0, len(s.accounts))
	for a := range s.accounts {
		accounts = append(accounts, a)
	}
	s.mu.Unlock()
	var rows []history.Entry
	for _, a := range accounts {
		q := history.Query{Account: a, Limit: history.MaxLimit}
		for {
			p, err := s.Store.List(context.Background(), q)
			if err != nil {
				t.Fatalf("list %s: %v", a, err)
			}
			rows = append(rows, p.Entries...)
			if p.Next == "" {
				break
			}
			q.After = p.Next
		}
	}
	slices.SortFunc(rows, func(a, b history.Entry) int { return cmp.Compare(a.ID, b.ID) })
	return rows
}
