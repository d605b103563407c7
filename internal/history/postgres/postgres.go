// Package postgres is the history store on PostgreSQL, through pgx, for
// a deployment with several broker and citizen-space machines (where one
// SQLite file cannot be shared).
//
// Every method is one statement or one short transaction at READ
// COMMITTED; the single use of a report code rests on the reports primary
// key (INSERT ... ON CONFLICT DO NOTHING), not on a lock.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/history/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the pg_advisory_xact_lock key that serialises the
// migrations of processes starting at once (advisory locks are per
// database, so other databases of the server do not share it). Its
// bytes spell "sesHIST".
const migrationLock int64 = 0x73657348495354

// purgeBatch bounds the rows one DELETE of Purge removes, so a purge of
// months of history is many short statements, not one that holds its
// locks and its WAL for minutes.
const purgeBatch = 5000

// reportEvent is the Event of the KindReport entry Report appends.
const reportEvent = "CITIZEN_REPORTED"

// Store is a history.Store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

var _ history.Store = (*Store)(nil)

// Open connects to the database at url (postgres://...) and brings its
// schema up to date. Several processes may Open one database at once.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message redacts the password.
		return nil, fmt.Errorf("history/postgres: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("history/postgres: open: %w", err)
	}
	if err := migrateDB(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("history/postgres: open: %w", err)
	}
	return &Store{pool: pool}, nil
}

// migrateDB applies the embedded migrations not yet recorded, in one
// transaction under an advisory lock: a second process starting at once
// waits on the lock, then finds every version recorded. PostgreSQL DDL is
// transactional, so a failed migration leaves nothing behind.
func migrateDB(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migrate.Load(migrations, "migrations")
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		rows, _ := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		applied := map[int]bool{}
		for _, v := range versions {
			applied[int(v)] = true
		}
		for _, m := range ms {
			if applied[m.Version] {
				continue
			}
			// No arguments: pgx sends it as a simple query, which may hold
			// several statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migrate: %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.Version); err != nil {
				return fmt.Errorf("migrate: %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

// Close closes the pool's connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// utc cuts t to what timestamptz keeps (microseconds), in UTC.
func utc(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// ceilUTC is a bound of a comparison with stored times: rounding it up
// keeps "time >= since" and "time < before" exact for a bound with
// nanoseconds.
func ceilUTC(t time.Time) time.Time {
	c := utc(t)
	if c.Before(t) {
		c = c.Add(time.Microsecond)
	}
	return c
}

var entryCopyColumns = []string{"account", "time", "kind", "event", "platform", "sp", "sp_name",
	"idp", "idp_name", "acr", "scopes", "data_provider", "code", "login_id", "detail"}

// copier is a pool or a transaction.
type copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
}

// Append writes entries with one COPY: a single statement, so all or
// none, and one round trip for a batch of the broker.
func (s *Store) Append(ctx context.Context, entries []history.Entry) error {
	if err := appendEntries(ctx, s.pool, entries); err != nil {
		return fmt.Errorf("history/postgres: append: %w", err)
	}
	return nil
}

func appendEntries(ctx context.Context, c copier, entries []history.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	_, err := c.CopyFrom(ctx, pgx.Identifier{"entries"}, entryCopyColumns,
		pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
			e := entries[i]
			scopes := e.Scopes
			if scopes == nil {
				scopes = []string{} // NULL would break NOT NULL
			}
			return []any{e.Account, utc(e.Time), e.Kind, e.Event, e.Platform, e.SP, e.SPName,
				e.IdP, e.IdPName, e.ACR, scopes, e.DataProvider, e.Code, e.LoginID, e.Detail}, nil
		}))
	return err
}

const entryColumns = `id, account, time, kind, event, platform, sp, sp_name, idp, idp_name, acr, scopes, data_provider, code, login_id, detail`

func scanEntry(row pgx.Row) (history.Entry, error) {
	var e history.Entry
	if err := row.Scan(&e.ID, &e.Account, &e.Time, &e.Kind, &e.Event, &e.Platform, &e.SP, &e.SPName,
		&e.IdP, &e.IdPName, &e.ACR, &e.Scopes, &e.DataProvider, &e.Code, &e.LoginID, &e.Detail); err != nil {
		return e, err
	}
	e.Time = e.Time.UTC()
	if len(e.Scopes) == 0 {
		e.Scopes = nil
	}
	return e, nil
}

// List returns a page of an account's history, newest first.
func (s *Store) List(ctx context.Context, q history.Query) (history.Page, error) {
	limit := history.PageLimit(q.Limit)
	sql := `SELECT ` + entryColumns + ` FROM entries WHERE account = $1`
	args := []any{q.Account}
	if !q.Since.IsZero() {
		args = append(args, ceilUTC(q.Since))
		sql += fmt.Sprintf(` AND time >= $%d`, len(args))
	}
	if q.After != "" {
		at, aid, err := history.DecodeCursor(q.After)
		if err != nil {
			return history.Page{}, fmt.Errorf("history/postgres: list: %w", err)
		}
		args = append(args, at, aid)
		sql += fmt.Sprintf(` AND (time, id) < ($%d, $%d)`, len(args)-1, len(args))
	}
	// One row more than the page tells whether there is a next page, so
	// the last page has no Next (and no empty page follows it).
	args = append(args, limit+1)
	sql += fmt.Sprintf(` ORDER BY time DESC, id DESC LIMIT $%d`, len(args))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return history.Page{}, fmt.Errorf("history/postgres: list: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (history.Entry, error) { return scanEntry(r) })
	if err != nil {
		return history.Page{}, fmt.Errorf("history/postgres: list: %w", err)
	}
	p := history.Page{Entries: entries}
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
	err := s.pool.QueryRow(ctx, `SELECT idps, allow_future, updated FROM preferences WHERE account = $1`, account).
		Scan(&p.IdPs, &p.AllowFuture, &p.Updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return history.Preferences{}, false, nil
	}
	if err != nil {
		return history.Preferences{}, false, fmt.Errorf("history/postgres: preferences: %w", err)
	}
	if p.IdPs == nil {
		p.IdPs = map[string]bool{}
	}
	p.Updated = p.Updated.UTC()
	return p, true, nil
}

// SetPreferences replaces the account's preferences and appends record,
// in one transaction.
func (s *Store) SetPreferences(ctx context.Context, p history.Preferences, record []history.Entry) error {
	idps := p.IdPs
	if idps == nil {
		idps = map[string]bool{} // JSON null would read back as no map
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO preferences (account, idps, allow_future, updated)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (account) DO UPDATE SET
				idps = excluded.idps, allow_future = excluded.allow_future, updated = excluded.updated`,
			p.Account, idps, p.AllowFuture, utc(p.Updated)); err != nil {
			return err
		}
		return appendEntries(ctx, tx, record)
	})
	if err != nil {
		return fmt.Errorf("history/postgres: set preferences: %w", err)
	}
	return nil
}

// Report records a report of the connection code names.
func (s *Store) Report(ctx context.Context, code string, t time.Time) (history.Report, error) {
	if code == "" {
		return history.Report{}, fmt.Errorf("history/postgres: report: %w", history.ErrUnknownCode)
	}
	var r history.Report
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		conn, err := scanEntry(tx.QueryRow(ctx, `SELECT `+entryColumns+` FROM entries
			WHERE kind = 'connection' AND code = $1 ORDER BY time DESC, id DESC LIMIT 1`, code))
		if errors.Is(err, pgx.ErrNoRows) {
			return history.ErrUnknownCode
		}
		if err != nil {
			return err
		}
		r = history.Report{Code: code, Connection: conn}
		// Of concurrent reports of one code, the first INSERT wins; the
		// others wait for its commit and then insert nothing.
		tag, err := tx.Exec(ctx, `INSERT INTO reports (code, time, account) VALUES ($1, $2, $3)
			ON CONFLICT (code) DO NOTHING`, code, utc(t), conn.Account)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			if err := tx.QueryRow(ctx, `SELECT time FROM reports WHERE code = $1`, code).Scan(&r.Time); err != nil {
				return err
			}
			r.Time = r.Time.UTC()
			return nil
		}
		r.First, r.Time = true, utc(t)
		return appendEntries(ctx, tx, []history.Entry{{
			Account: conn.Account, Time: t, Kind: history.KindReport, Event: reportEvent,
			Platform: conn.Platform, SP: conn.SP, SPName: conn.SPName, IdP: conn.IdP, IdPName: conn.IdPName,
			Code: code,
		}})
	})
	if err != nil {
		return history.Report{}, fmt.Errorf("history/postgres: report: %w", err)
	}
	return r, nil
}

// Purge deletes the entries and reports older than before, entries in
// batches of purgeBatch.
func (s *Store) Purge(ctx context.Context, before time.Time) (int64, error) {
	cut := ceilUTC(before)
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM entries WHERE id IN
			(SELECT id FROM entries WHERE time < $1 LIMIT $2)`, cut, purgeBatch)
		if err != nil {
			return total, fmt.Errorf("history/postgres: purge: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < purgeBatch {
			break
		}
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM reports WHERE time < $1`, cut); err != nil {
		return total, fmt.Errorf("history/postgres: purge: %w", err)
	}
	return total, nil
}
