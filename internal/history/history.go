// Package history is the seam of the citizen's history: a durable store
// of what the citizen space shows ("Mon espace Sésame"): each use of an
// identity at a service, each data exchange, each refusal of a blocked
// account, each change of preferences and each "ce n'était pas moi"
// report, and the citizen's choice of the accounts (IdPs) they allow.
//
// A row names the person by an account id (a keyed hash of the pivot
// identity, see broker), never by an identity attribute. The broker feeds
// the store asynchronously from its audit events (Feeder); the citizen
// space reads it and writes preferences and reports.
//
// Implementations: history/sqlite (embedded default, pure Go) and
// history/postgres (pgx). Both pass historytest.Run.
package history

import (
	"context"
	"errors"
	"time"
)

// Kinds of Entry.
const (
	// KindConnection is a login at a service: a code was issued to it.
	KindConnection = "connection"
	// KindData is a data provider that received data scopes about the
	// citizen for a service (an introspection that answered active).
	KindData = "data"
	// KindBlocked is a login refused because the citizen blocked the
	// account used.
	KindBlocked = "blocked"
	// KindPreferences is a change of the allowed accounts.
	KindPreferences = "preferences"
	// KindReport is a "ce n'était pas moi" report of a connection.
	KindReport = "report"
)

// Entry is one row of a citizen's history. It holds what the citizen
// space shows and nothing more: no name, birth date or e-mail.
//
// Account and Kind are required: a store refuses an entry without them
// (and then the whole Append), since a row nobody can list is lost.
// Time is kept to the microsecond, in UTC; Scopes come back nil when
// empty.
type Entry struct {
	// ID is assigned by the store (Append ignores it).
	ID      int64
	Account string
	Time    time.Time
	Kind    string
	// Event is the audit event the row comes from (FC_CODE_ISSUED...).
	Event    string
	Platform string
	// SP is a client_id, SPName its name when the row was written.
	SP, SPName string
	// IdP is an IdP id, IdPName its name when the row was written.
	IdP, IdPName string
	// ACR is the level obtained (eidas1, eidas2, eidas3).
	ACR string
	// Scopes are the scopes passed on (a connection), or served (data).
	Scopes []string
	// DataProvider is the data provider's client_id (a data row), as the
	// audit events name it.
	DataProvider string
	// Code is the connection code of a connection (also in its e-mail),
	// or the code a report is about.
	Code string
	// LoginID joins the row to the audit log lines of its login.
	LoginID string
	// Detail is a short machine-readable note: the preference change
	// ("block:ameli", "allow:ameli", "future:deny"), or a refusal's code.
	Detail string
}

// Query selects a page of one account's history, newest first.
type Query struct {
	Account string
	// Since drops older rows (the retention shown to the citizen).
	Since time.Time
	// After is the Next of the previous page; empty for the first.
	After string
	// Limit is the page size (the store caps it at MaxLimit).
	Limit int
}

// MaxLimit caps a page.
const MaxLimit = 200

// DefaultLimit is the page size of a Query whose Limit is zero or less.
const DefaultLimit = 20

// Page is one page of history.
type Page struct {
	Entries []Entry
	// Next fetches the following page; empty when this is the last.
	Next string
}

// Preferences are the accounts (IdPs) a citizen allows. With no
// preferences stored, every IdP is allowed.
type Preferences struct {
	Account string
	// IdPs maps an IdP id to whether it is allowed, for the IdPs the
	// citizen saw when saving.
	IdPs map[string]bool
	// AllowFuture is the setting for the IdPs not in IdPs (those added to
	// Sésame after the citizen saved).
	AllowFuture bool
	Updated     time.Time
}

// Allows reports whether the citizen allows logins through idp.
func (p Preferences) Allows(idp string) bool {
	if ok, known := p.IdPs[idp]; known {
		return ok
	}
	return p.AllowFuture
}

// Report is a "ce n'était pas moi" report.
type Report struct {
	Code string
	// Time is when the code was first reported (also when First is
	// false).
	Time time.Time
	// Connection is the connection the code names.
	Connection Entry
	// First is false when the code had been reported already (the
	// report is then not recorded again).
	First bool
}

// ErrUnknownCode is returned for a report with a code that names no
// connection (or one purged).
var ErrUnknownCode = errors.New("history: unknown connection code")

// ErrBadCursor is returned (wrapped) by List for a Query.After that no
// store wrote: garbage, truncated or edited. The citizen space answers it
// with the first page rather than an error page.
var ErrBadCursor = errors.New("history: invalid page cursor")

// Store is the durable history. Every method is safe for concurrent use,
// from several processes on one database.
type Store interface {
	// Append writes entries in one transaction.
	Append(ctx context.Context, entries []Entry) error
	// List returns a page of an account's history, newest first (by
	// time, then by ID); a q.After no store wrote gives an error wrapping
	// ErrBadCursor.
	List(ctx context.Context, q Query) (Page, error)
	// Preferences returns the account's preferences; found is false when
	// none were ever saved (every IdP is then allowed).
	Preferences(ctx context.Context, account string) (p Preferences, found bool, err error)
	// SetPreferences replaces the account's preferences, and appends the
	// entries that record the change, in one transaction.
	SetPreferences(ctx context.Context, p Preferences, record []Entry) error
	// Report records a report of the connection that code names, at t,
	// as a KindReport entry of the connection's account. A second report
	// of one code records nothing and answers First false.
	Report(ctx context.Context, code string, t time.Time) (Report, error)
	// Purge deletes the rows older than before (history and reports; not
	// preferences), and answers how many went.
	Purge(ctx context.Context, before time.Time) (int64, error)
	Close() error
}
