-- The citizen's history, preferences and reports: what the citizen space
-- shows, named by an account id (a keyed hash), and never a name, birth
-- date or e-mail.

CREATE TABLE entries (
	id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	account       text        NOT NULL CHECK (account <> ''),
	time          timestamptz NOT NULL,
	kind          text        NOT NULL CHECK (kind <> ''),
	event         text        NOT NULL DEFAULT '',
	platform      text        NOT NULL DEFAULT '',
	sp            text        NOT NULL DEFAULT '',
	sp_name       text        NOT NULL DEFAULT '',
	idp           text        NOT NULL DEFAULT '',
	idp_name      text        NOT NULL DEFAULT '',
	acr           text        NOT NULL DEFAULT '',
	scopes        text[]      NOT NULL DEFAULT '{}',
	data_provider text        NOT NULL DEFAULT '',
	code          text        NOT NULL DEFAULT '',
	login_id      text        NOT NULL DEFAULT '',
	detail        text        NOT NULL DEFAULT ''
);

-- List: one account, newest first, keyset on (time, id).
CREATE INDEX entries_list ON entries (account, time DESC, id DESC);
-- Report: the connection a code names (only connections carry one to
-- look up, so the index holds nothing else).
CREATE INDEX entries_code ON entries (code) WHERE kind = 'connection';
-- Purge: the oldest rows.
CREATE INDEX entries_time ON entries (time);

CREATE TABLE preferences (
	account      text        PRIMARY KEY CHECK (account <> ''),
	-- IdP id -> allowed.
	idps         jsonb       NOT NULL DEFAULT '{}',
	allow_future boolean     NOT NULL,
	updated      timestamptz NOT NULL
);

CREATE TABLE reports (
	-- The primary key makes a code single-use: of concurrent INSERTs of a
	-- code, one inserts and the others, ON CONFLICT DO NOTHING, wait for
	-- it and do nothing.
	code    text        PRIMARY KEY CHECK (code <> ''),
	time    timestamptz NOT NULL,
	account text        NOT NULL
);

CREATE INDEX reports_time ON reports (time);
