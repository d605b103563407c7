package mail

import "time"

// Connection is what the e-mail of a new connection says.
type Connection struct {
	To string
	// SPName is the service, IdPName the account used, ACR the level
	// (eidas1, eidas2, eidas3), Time when (shown in Paris time).
	SPName, IdPName, ACR string
	Time                 time.Time
	// Code is the connection code, also shown in the citizen's history.
	Code string
	// ReportURL is the "ce n'était pas moi" link (it carries the code);
	// SpaceURL the citizen space.
	ReportURL, SpaceURL string
}

// PreferencesChange is what the e-mail of a change of the allowed
// accounts says.
type PreferencesChange struct {
	To   string
	Time time.Time
	// Allowed and Blocked are the names of the accounts whose setting
	// changed.
	Allowed, Blocked []string
	// Future is "allow" or "deny" when the setting for accounts added
	// later changed, else empty.
	Future   string
	SpaceURL string
}
