-- The citizen's history, preferences and reports: what the citizen space
-- shows, named by an account id (a keyed hash), and never a name, birth
-- date or e-mail. STRICT tables refuse a value of the wrong type, so a
-- bug cannot store a time as text that then sorts wrong.

CREATE TABLE entries (
	-- AUTOINCREMENT: an id is never reused, even after a purge empties
	-- the table, so a cursor or a log line never names another row.
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	account       TEXT    NOT NULL CHECK (account <> ''),
	-- Unix microseconds, UTC: integers sort as times do, and keep the
	-- precision PostgreSQL has.
	time          INTEGER NOT NULL,
	kind          TEXT    NOT NULL CHECK (kind <> ''),
	event         TEXT    NOT NULL DEFAULT '',
	platform      TEXT    NOT NULL DEFAULT '',
	sp            TEXT    NOT NULL DEFAULT '',
	sp_name       TEXT    NOT NULL DEFAULT '',
	idp           TEXT    NOT NULL DEFAULT '',
	idp_name      TEXT    NOT NULL DEFAULT '',
	acr           TEXT    NOT NULL DEFAULT '',
	-- A JSON array of strings.
	scopes        TEXT    NOT NULL DEFAULT '[]',
	data_provider TEXT    NOT NULL DEFAULT '',
	code          TEXT    NOT NULL DEFAULT '',
	login_id      TEXT    NOT NULL DEFAULT '',
	detail        TEXT    NOT NULL DEFAULT ''
) STRICT;

-- List: one account, newest first, keyset on (time, id).
CREATE INDEX entries_list ON entries (account, time DESC, id DESC);
-- Report: the connection a code names (only connections carry one to
-- look up, so the index holds nothing else).
CREATE INDEX entries_code ON entries (code) WHERE kind = 'connection';
-- Purge: the oldest rows.
CREATE INDEX entries_time ON entries (time);

CREATE TABLE preferences (
	account      TEXT    PRIMARY KEY CHECK (account <> ''),
	-- A JSON object, IdP id -> allowed.
	idps         TEXT    NOT NULL DEFAULT '{}',
	allow_future INTEGER NOT NULL CHECK (allow_future IN (0, 1)),
	updated      INTEGER NOT NULL
) STRICT;

CREATE TABLE reports (
	-- The primary key makes a code single-use: the second INSERT of a code
	-- does nothing, however many citizens click at once.
	code    TEXT    PRIMARY KEY CHECK (code <> ''),
	time    INTEGER NOT NULL,
	account TEXT    NOT NULL
) STRICT;

CREATE INDEX reports_time ON reports (time);
