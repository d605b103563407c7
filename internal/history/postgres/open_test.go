package postgres

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/testpg"
)

func mustOpen(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func versions(t *testing.T, s *Store) []int32 {
	t.Helper()
	rows, _ := s.pool.Query(context.Background(), `SELECT version FROM schema_migrations ORDER BY version`)
	v, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpenParallel(t *testing.T) {
	// Processes starting at once on a new database: the advisory lock
	// lets one migrate, the others then find it done.
	url := testpg.Shared(t).NewDB(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := Open(context.Background(), url)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := mustOpen(t, url)
	if got := versions(t, s); !slices.Equal(got, []int32{1}) {
		t.Fatalf("schema_migrations = %v, want [1]", got)
	}
	if err := s.Append(context.Background(), []history.Entry{{Account: "a", Time: time.Now(), Kind: history.KindData}}); err != nil {
		t.Fatal(err)
	}
	// Reopening keeps the rows; a version from a newer release is left
	// alone.
	if _, err := s.pool.Exec(context.Background(), `INSERT INTO schema_migrations (version) VALUES (9999)`); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, url)
	if got := versions(t, s2); !slices.Equal(got, []int32{1, 9999}) {
		t.Fatalf("schema_migrations = %v", got)
	}
	if p, err := s2.List(context.Background(), history.Query{Account: "a"}); err != nil || len(p.Entries) != 1 {
		t.Fatalf("after reopening: %+v, %v", p, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := testpg.Shared(t)
	for _, url := range []string{
		"postgres://sesame:s3cr3t-pw@127.0.0.1:1/x?connect_timeout=2", // nobody listens
		"postgres://sesame:s3cr3t-pw@127.0.0.1:notaport/x",            // unparsable
		strings.Replace(srv.URL(), "/postgres?", "/no_such_db?", 1),
	} {
		s, err := Open(ctx, url)
		if err == nil {
			_ = s.Close()
			t.Errorf("Open(%s) = nil error", url)
			continue
		}
		if !strings.HasPrefix(err.Error(), "history/postgres: open: ") {
			t.Errorf("Open(%s) = %v, want a history/postgres: error", url, err)
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("Open's error shows the password: %v", err)
		}
	}
}

func TestSchema(t *testing.T) {
	// What the citizen space needs and nothing more: never a name, birth
	// date or e-mail column.
	s := mustOpen(t, testpg.Shared(t).NewDB(t))
	got := map[string][]string{}
	rows, _ := s.pool.Query(context.Background(), `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`)
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		got[table] = append(got[table], col)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"entries": {"id", "account", "time", "kind", "event", "platform", "sp", "sp_name", "idp", "idp_name",
			"acr", "scopes", "data_provider", "code", "login_id", "detail"},
		"preferences":       {"account", "idps", "allow_future", "updated"},
		"reports":           {"code", "time", "account"},
		"schema_migrations": {"version", "applied_at"},
	}
	if len(got) != len(want) {
		t.Errorf("tables = %v", got)
	}
	for table, cols := range want {
		if !slices.Equal(got[table], cols) {
			t.Errorf("%s columns = %v, want %v", table, got[table], cols)
		}
	}
}

func TestQueryPlans(t *testing.T) {
	// The indexes can serve List (the keyset row comparison included),
	// Report and Purge. The tables are small, so sequential scans are
	// switched off to ask whether an index can do it.
	s := mustOpen(t, testpg.Shared(t).NewDB(t))
	ctx := context.Background()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for q, want := range map[string]string{
		`SELECT * FROM entries WHERE account = 'a' ORDER BY time DESC, id DESC LIMIT 21`:                                                                                                         "Index Scan using entries_list",
		`SELECT * FROM entries WHERE account = 'a' AND time >= '` + now.Format(time.RFC3339) + `' AND (time, id) < ('` + now.Format(time.RFC3339) + `', 5) ORDER BY time DESC, id DESC LIMIT 21`: "AND (ROW(\"time\", id) < ROW(",
		`SELECT * FROM entries WHERE kind = 'connection' AND code = 'x' ORDER BY time DESC, id DESC LIMIT 1`:                                                                                     "entries_code",
		`DELETE FROM entries WHERE id IN (SELECT id FROM entries WHERE time < now() LIMIT 10)`:                                                                                                   "entries_time",
		`DELETE FROM reports WHERE time < now()`: "reports_time",
	} {
		rows, _ := conn.Query(ctx, `EXPLAIN `+q)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		if plan := strings.Join(lines, "\n"); !strings.Contains(plan, want) || strings.Contains(plan, "Sort") && strings.Contains(q, "account =") {
			t.Errorf("plan of %s:\n%s\nwant %s", q, plan, want)
		}
	}
}
