package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/history"
)

func mustOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestOpenPragmas(t *testing.T) {
	// A nested folder that does not exist yet, and a name that would be
	// read as DSN options if passed as is.
	path := filepath.Join(t.TempDir(), "a b", "c#d", "history?x=1.db")
	s := mustOpen(t, path)
	if err := s.Append(context.Background(), []history.Entry{{Account: "a", Time: time.Now(), Kind: history.KindData}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if m := fi.Mode().Perm(); m&0o007 != 0 {
			t.Errorf("%s: mode %v, open to others", p, m)
		}
	}
	for _, db := range []struct {
		name      string
		q         func(string) string
		queryOnly string
	}{
		{"writer", func(p string) string { return pragma(t, s.w, p) }, "0"},
		{"reader", func(p string) string { return pragma(t, s.r, p) }, "1"},
	} {
		for p, want := range map[string]string{
			"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000", "query_only": db.queryOnly,
		} {
			if got := db.q(p); got != want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", db.name, p, got, want)
			}
		}
	}
	if _, err := s.r.Exec(`INSERT INTO reports (code, time, account) VALUES ('x', 1, 'a')`); err == nil {
		t.Error("the read-only connections write")
	}
}

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte(strings.Repeat("not a database\n", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		filepath.Join(file, "history.db"), // parent is a file
		file,                              // not a database
	} {
		if s, err := Open(path); err == nil {
			_ = s.Close()
			t.Errorf("Open(%s) = nil error", path)
		} else if !strings.HasPrefix(err.Error(), "history/sqlite: open ") {
			t.Errorf("Open(%s) = %v, want a history/sqlite: error", path, err)
		}
	}
}

// versions returns what schema_migrations holds.
func versions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.r.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestMigrationsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	a := mustOpen(t, path)
	if err := a.Append(context.Background(), []history.Entry{{Account: "acc", Time: time.Now(), Kind: history.KindData}}); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	b := mustOpen(t, path) // reopening applies nothing and keeps the rows
	if got := versions(t, b); !slices.Equal(got, []int{1}) {
		t.Fatalf("schema_migrations = %v, want [1]", got)
	}
	if p, err := b.List(context.Background(), history.Query{Account: "acc"}); err != nil || len(p.Entries) != 1 {
		t.Fatalf("after reopening: %+v, %v", p, err)
	}
	// A version from a newer release is left alone.
	if _, err := b.w.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	c := mustOpen(t, path)
	if got := versions(t, c); !slices.Equal(got, []int{1, 9999}) {
		t.Fatalf("schema_migrations = %v", got)
	}
}

func TestOpenParallel(t *testing.T) {
	// Goroutines opening a new file at once: one migrates, the others
	// wait and find it done.
	path := filepath.Join(t.TempDir(), "new", "history.db")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			s, err := Open(path)
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
	if got := versions(t, mustOpen(t, path)); !slices.Equal(got, []int{1}) {
		t.Fatalf("schema_migrations = %v, want [1]", got)
	}
}

// The helper process: SESAME_HISTORY_CHILD=path,account,batches opens the
// file and appends batches of 10 entries, as a broker would.
func TestMain(m *testing.M) {
	if spec := os.Getenv("SESAME_HISTORY_CHILD"); spec != "" {
		os.Exit(child(spec))
	}
	os.Exit(m.Run())
}

func child(spec string) int {
	parts := strings.Split(spec, ",")
	path, account := parts[0], parts[1]
	batches, _ := strconv.Atoi(parts[2])
	s, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	for b := range batches {
		var batch []history.Entry
		for i := range 10 {
			batch = append(batch, history.Entry{Account: account, Time: time.Now(), Kind: history.KindConnection,
				Code: fmt.Sprintf("%s-%d-%d", account, b, i)})
		}
		if err := s.Append(context.Background(), batch); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, err := s.List(context.Background(), history.Query{Account: account}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func TestProcesses(t *testing.T) {
	// Four processes create, migrate and write one new file at once while
	// this one reads and reports: no SQLITE_BUSY may surface.
	path := filepath.Join(t.TempDir(), "shared", "history.db")
	const procs, batches = 4, 30
	var cmds []*exec.Cmd
	outs := make([]*strings.Builder, procs)
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("SESAME_HISTORY_CHILD=%s,acc%d,%d", path, i, batches))
		outs[i] = &strings.Builder{}
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open beside the children: %v", err)
	}
	defer s.Close()
	reported := 0
	done := make(chan struct{})
	go func() {
		for _, c := range cmds {
			_ = c.Wait()
		}
		close(done)
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		for i := range procs {
			p, err := s.List(context.Background(), history.Query{Account: fmt.Sprint("acc", i), Limit: 5})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if len(p.Entries) > 0 {
				r, err := s.Report(context.Background(), p.Entries[0].Code, time.Now())
				if err != nil {
					t.Fatalf("Report: %v", err)
				}
				if r.First {
					reported++
				}
			}
		}
	}
	for i, c := range cmds {
		if !c.ProcessState.Success() {
			t.Errorf("child %d: %v\n%s", i, c.ProcessState, outs[i])
		}
	}
	for i := range procs {
		n := 0
		q := history.Query{Account: fmt.Sprint("acc", i), Limit: history.MaxLimit}
		for {
			p, err := s.List(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Entries {
				if e.Kind == history.KindConnection {
					n++
				}
			}
			if p.Next == "" {
				break
			}
			q.After = p.Next
		}
		if n != batches*10 {
			t.Errorf("acc%d: %d connections, want %d", i, n, batches*10)
		}
	}
	t.Logf("%d reports made while the children wrote", reported)
}

func TestSchema(t *testing.T) {
	// What the citizen space needs and nothing more: never a name, birth
	// date or e-mail column.
	s := mustOpen(t, filepath.Join(t.TempDir(), "history.db"))
	want := map[string][]string{
		"entries": {"id", "account", "time", "kind", "event", "platform", "sp", "sp_name", "idp", "idp_name",
			"acr", "scopes", "data_provider", "code", "login_id", "detail"},
		"preferences":       {"account", "idps", "allow_future", "updated"},
		"reports":           {"code", "time", "account"},
		"schema_migrations": {"version", "applied_at"},
	}
	rows, err := s.r.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		tables = append(tables, n)
	}
	_ = rows.Close()
	if !slices.Equal(tables, []string{"entries", "preferences", "reports", "schema_migrations"}) {
		t.Fatalf("tables = %v", tables)
	}
	for table, cols := range want {
		rows, err := s.r.Query(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var n string
			_ = rows.Scan(&n)
			got = append(got, n)
		}
		_ = rows.Close()
		if !slices.Equal(got, cols) {
			t.Errorf("%s columns = %v, want %v", table, got, cols)
		}
		for _, c := range got {
			for _, bad := range []string{"name", "birth", "mail", "given", "family"} {
				if strings.Contains(c, bad) && c != "sp_name" && c != "idp_name" {
					t.Errorf("%s.%s looks like an identity attribute", table, c)
				}
			}
		}
	}
}

func TestQueryPlans(t *testing.T) {
	// The indexes serve List (keyset included), Report and Purge.
	s := mustOpen(t, filepath.Join(t.TempDir(), "history.db"))
	for q, want := range map[string]string{
		listSQL(false, false): "USING INDEX entries_list (account=?)",
		listSQL(true, true):   "USING INDEX entries_list (account=? AND time>? AND time<?)",
		`SELECT * FROM entries WHERE kind = 'connection' AND code = ?`: "USING INDEX entries_code (code=?)",
		`SELECT id FROM entries WHERE time < ? LIMIT 10`:               "USING COVERING INDEX entries_time (time<?)",
		`DELETE FROM reports WHERE time < ?`:                           "USING INDEX reports_time (time<?)",
		`SELECT time FROM reports WHERE code = ?`:                      "USING INDEX sqlite_autoindex_reports_1 (code=?)",
	} {
		n := strings.Count(q, "?")
		args := make([]any, n)
		for i := range args {
			args[i] = 1
		}
		rows, err := s.r.Query(`EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			_ = rows.Scan(&id, &parent, &unused, &detail)
			plan = append(plan, detail)
		}
		_ = rows.Close()
		if p := strings.Join(plan, "; "); !strings.Contains(p, want) || strings.Contains(p, "TEMP B-TREE FOR ORDER BY") && strings.HasPrefix(q, "SELECT "+entryColumns) {
			t.Errorf("plan of %s = %s, want %s", q, p, want)
		}
	}
}
