// Package sqlite is the embedded history store: one SQLite file, no
// service to run, through the pure-Go driver modernc.org/sqlite (no cgo).
//
// The broker and the citizen space open the same file from two
// processes. The file is in WAL mode, so readers never wait for the
// writer; writers take the lock at BEGIN (BEGIN IMMEDIATE) and wait for
// each other under busy_timeout, so a write never fails with SQLITE_BUSY
// halfway through a transaction. Within one process, writes go through a
// single connection, so they queue in Go instead of polling the file
// lock.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite" // also the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/history/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a writer waits for another process's write
// transaction before failing: far longer than any of ours lasts (Purge
// deletes in batches for that reason), so only a stuck process makes it
// fail.
const busyTimeout = 10 * time.Second

// purgeBatch bounds the rows one Purge transaction deletes, so the
// broker's appends wait for a purge a few milliseconds at a time.
const purgeBatch = 5000

// reportEvent is the Event of the KindReport entry Report appends.
const reportEvent = "CITIZEN_REPORTED"

// Store is a history.Store in one SQLite file.
type Store struct {
	w *sql.DB // one connection; BEGIN IMMEDIATE
	r *sql.DB // read-only connections

	// Prepared once: parsing a statement costs SQLite about a third of a
	// page's List.
	insert *sql.Stmt       // on w
	list   [2][2]*sql.Stmt // on r, by [Since set][After set]
}

var _ history.Store = (*Store)(nil)

// Open opens (creating it and its folder if need be) the SQLite file at
// path and brings its schema up to date. Several Stores, in one process
// or several, may open one file at once.
func Open(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("history/sqlite: open %s: %w", path, err)
	}
	// 0750: the history is personal data; the group lets the citizen
	// space run as another user of the broker's group.
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("history/sqlite: open %s: %w", path, err)
	}
	// SQLite would create the file 0644; the history is personal data.
	// Its -wal and -shm files take the mode of the file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("history/sqlite: open %s: %w", path, err)
	}
	_ = f.Close()
	// A file: URI, so a path holding '?' or '#' is not read as options.
	base := (&url.URL{Scheme: "file", Path: abs}).String()
	// No journal_mode here: WAL is a property of the file, set once by
	// setWAL, and a journal_mode pragma on every new connection can fail
	// at once with SQLITE_BUSY while another process converts the file
	// (the change does not wait under busy_timeout). synchronous stays
	// FULL: a blocked account or a report must survive a power cut, and
	// a batch of the broker is one commit, so one fsync.
	common := url.Values{"_pragma": {
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"foreign_keys(1)",
	}}
	wq := url.Values{"_txlock": {"immediate"}, "_pragma": common["_pragma"]}
	rq := url.Values{"_pragma": append(append([]string(nil), common["_pragma"]...), "query_only(1)")}

	w, err := sql.Open("sqlite", base+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("history/sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := setWAL(context.Background(), w); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("history/sqlite: open %s: %w", path, err)
	}
	if err := migrateDB(context.Background(), w); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("history/sqlite: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"?"+rq.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("history/sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s := &Store{w: w, r: r}
	if err := s.prepare(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("history/sqlite: open %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) prepare() error {
	var err error
	if s.insert, err = s.w.Prepare(insertEntry); err != nil {
		return err
	}
	for since := range 2 {
		for after := range 2 {
			if s.list[since][after], err = s.r.Prepare(listSQL(since == 1, after == 1)); err != nil {
				return err
			}
		}
	}
	return nil
}

// listSQL is List's query; its arguments are the account, Since if
// since, the cursor's time and id if after, and the limit.
func listSQL(since, after bool) string {
	q := `SELECT ` + entryColumns + ` FROM entries WHERE account = ?`
	if since {
		q += ` AND time >= ?`
	}
	if after {
		q += ` AND (time, id) < (?, ?)`
	}
	return q + ` ORDER BY time DESC, id DESC LIMIT ?`
}

// setWAL puts the file in WAL mode, in which readers never wait for the
// writer. The change needs the file to itself and answers SQLITE_BUSY at
// once when another process has it open, so it is retried here for up to
// busyTimeout; a file already in WAL mode needs no lock.
func setWAL(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		var mode string
		err := db.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode)
		switch {
		case err == nil && strings.EqualFold(mode, "wal"):
			return nil
		case err == nil:
			return fmt.Errorf("journal mode %s, not wal", mode)
		case !isBusy(err) || time.Now().After(deadline):
			return fmt.Errorf("journal mode: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// isBusy reports an SQLITE_BUSY of any extended kind.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// migrateDB applies the embedded migrations not yet recorded, in one
// immediate transaction: a second process opening the file at the same
// time waits for it, then finds every version recorded.
func migrateDB(ctx context.Context, db *sql.DB) error {
	ms, err := migrate.Load(migrations, "migrations")
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			_ = rows.Close()
			return fmt.Errorf("migrate: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
			m.Version, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes the file.
func (s *Store) Close() error {
	// Closing the DBs closes their statements.
	return errors.Join(s.r.Close(), s.w.Close())
}

// micros is how a time is stored: Unix microseconds, UTC.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// ceilMicros is a bound of a comparison with stored times: rounding it
// up keeps "time >= since" and "time < before" exact for a bound with
// nanoseconds.
func ceilMicros(t time.Time) int64 {
	v := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		v++
	}
	return v
}

const insertEntry = `INSERT INTO entries
	(account, time, kind, event, platform, sp, sp_name, idp, idp_name, acr, scopes, data_provider, code, login_id, detail)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// Append writes entries in one transaction.
func (s *Store) Append(ctx context.Context, entries []history.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.appendTx(ctx, tx, entries) }); err != nil {
		return fmt.Errorf("history/sqlite: append: %w", err)
	}
	return nil
}

func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, entries []history.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	st := tx.StmtContext(ctx, s.insert)
	defer st.Close()
	for i, e := range entries {
		scopes, err := json.Marshal(nonNil(e.Scopes))
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if _, err := st.ExecContext(ctx, e.Account, micros(e.Time), e.Kind, e.Event, e.Platform,
			e.SP, e.SPName, e.IdP, e.IdPName, e.ACR, string(scopes), e.DataProvider, e.Code, e.LoginID, e.Detail); err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE), committing when
// it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

const entryColumns = `id, account, time, kind, event, platform, sp, sp_name, idp, idp_name, acr, scopes, data_provider, code, login_id, detail`

type scanner interface{ Scan(dest ...any) error }

func scanEntry(row scanner) (history.Entry, error) {
	var e history.Entry
	var t int64
	var scopes string
	if err := row.Scan(&e.ID, &e.Account, &t, &e.Kind, &e.Event, &e.Platform, &e.SP, &e.SPName,
		&e.IdP, &e.IdPName, &e.ACR, &scopes, &e.DataProvider, &e.Code, &e.LoginID, &e.Detail); err != nil {
		return e, err
	}
	e.Time = fromMicros(t)
	if err := json.Unmarshal([]byte(scopes), &e.Scopes); err != nil {
		return e, fmt.Errorf("entry %d: scopes: %w", e.ID, err)
	}
	if len(e.Scopes) == 0 {
		e.Scopes = nil
	}
	return e, nil
}

// List returns a page of an account's history, newest first.
func (s *Store) List(ctx context.Context, q history.Query) (history.Page, error) {
	limit := history.PageLimit(q.Limit)
	args := []any{q.Account}
	since, after := 0, 0
	if !q.Since.IsZero() {
		since = 1
		args = append(args, ceilMicros(q.Since))
	}
	if q.After != "" {
		at, aid, err := history.DecodeCursor(q.After)
		if err != nil {
			return history.Page{}, fmt.Errorf("history/sqlite: list: %w", err)
		}
		after = 1
		args = append(args, micros(at), aid)
	}
	// One row more than the page tells whether there is a next page, so
	// the last page has no Next (and no empty page follows it).
	args = append(args, limit+1)
	rows, err := s.list[since][after].QueryContext(ctx, args...)
	if err != nil {
		return history.Page{}, fmt.Errorf("history/sqlite: list: %w", err)
	}
	defer rows.Close()
	var p history.Page
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return history.Page{}, fmt.Errorf("history/sqlite: list: %w", err)
		}
		p.Entries = append(p.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return history.Page{}, fmt.Errorf("history/sqlite: list: %w", err)
	}
	if len(p.Entries) > limit {
		p.Entries = p.Entries[:limit]
		last := p.Entries[limit-1]
		p.Next = history.EncodeCursor(last.Time, last.ID)
	}
	return p, nil
}

// Preferences returns the account's preferences.
func (s *Store) Preferences(ctx context.Context, account string) (history.Preferences, bool, error) {
	p := history.Preferences{Account: account}
	var idps string
	var updated int64
	err := s.r.QueryRowContext(ctx, `SELECT idps, allow_future, updated FROM preferences WHERE account = ?`, account).
		Scan(&idps, &p.AllowFuture, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return history.Preferences{}, false, nil
	}
	if err != nil {
		return history.Preferences{}, false, fmt.Errorf("history/sqlite: preferences: %w", err)
	}
	if err := json.Unmarshal([]byte(idps), &p.IdPs); err != nil {
		return history.Preferences{}, false, fmt.Errorf("history/sqlite: preferences: idps: %w", err)
	}
	if p.IdPs == nil {
		p.IdPs = map[string]bool{}
	}
	p.Updated = fromMicros(updated)
	return p, true, nil
}

// SetPreferences replaces the account's preferences and appends record,
// in one transaction.
func (s *Store) SetPreferences(ctx context.Context, p history.Preferences, record []history.Entry) error {
	idps := p.IdPs
	if idps == nil {
		idps = map[string]bool{}
	}
	b, err := json.Marshal(idps)
	if err != nil {
		return fmt.Errorf("history/sqlite: set preferences: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO preferences (account, idps, allow_future, updated)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (account) DO UPDATE SET
				idps = excluded.idps, allow_future = excluded.allow_future, updated = excluded.updated`,
			p.Account, string(b), p.AllowFuture, micros(p.Updated)); err != nil {
			return err
		}
		return s.appendTx(ctx, tx, record)
	})
	if err != nil {
		return fmt.Errorf("history/sqlite: set preferences: %w", err)
	}
	return nil
}

// Report records a report of the connection code names.
func (s *Store) Report(ctx context.Context, code string, t time.Time) (history.Report, error) {
	if code == "" {
		return history.Report{}, fmt.Errorf("history/sqlite: report: %w", history.ErrUnknownCode)
	}
	var r history.Report
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		conn, err := scanEntry(tx.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM entries
			WHERE kind = 'connection' AND code = ? ORDER BY time DESC, id DESC LIMIT 1`, code))
		if errors.Is(err, sql.ErrNoRows) {
			return history.ErrUnknownCode
		}
		if err != nil {
			return err
		}
		r = history.Report{Code: code, Connection: conn}
		// The primary key makes the code single-use; BEGIN IMMEDIATE
		// already serialises reports, the key keeps it true if that
		// changes.
		res, err := tx.ExecContext(ctx, `INSERT INTO reports (code, time, account) VALUES (?, ?, ?)
			ON CONFLICT (code) DO NOTHING`, code, micros(t), conn.Account)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var first int64
			if err := tx.QueryRowContext(ctx, `SELECT time FROM reports WHERE code = ?`, code).Scan(&first); err != nil {
				return err
			}
			r.Time = fromMicros(first)
			return nil
		}
		r.First, r.Time = true, fromMicros(micros(t))
		return s.appendTx(ctx, tx, []history.Entry{{
			Account: conn.Account, Time: t, Kind: history.KindReport, Event: reportEvent,
			Platform: conn.Platform, SP: conn.SP, SPName: conn.SPName, IdP: conn.IdP, IdPName: conn.IdPName,
			Code: code,
		}})
	})
	if err != nil {
		return history.Report{}, fmt.Errorf("history/sqlite: report: %w", err)
	}
	return r, nil
}

// Purge deletes the entries and reports older than before, entries in
// batches of purgeBatch so no transaction holds the write lock long.
func (s *Store) Purge(ctx context.Context, before time.Time) (int64, error) {
	cut := ceilMicros(before)
	var total int64
	for {
		var n int64
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE id IN
				(SELECT id FROM entries WHERE time < ? LIMIT ?)`, cut, purgeBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("history/sqlite: purge: %w", err)
		}
		total += n
		if n < purgeBatch {
			break
		}
	}
	if err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM reports WHERE time < ?`, cut)
		return err
	}); err != nil {
		return total, fmt.Errorf("history/sqlite: purge: %w", err)
	}
	return total, nil
}
