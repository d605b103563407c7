package dashboard

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"time"

	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/mail"
	"github.com/sesame-id/sesame/internal/web"
)

// preferencesEvent names the history rows of a change of preferences.
const preferencesEvent = "CITIZEN_PREFERENCES_CHANGED"

// Values of the accounts form: one radio group "idp-<id>" per account
// (allow or block), and "future" (allow or deny).
const (
	fieldIdPPrefix = "idp-"
	fieldFuture    = "future"
)

// accountsView is the /comptes page.
type accountsView struct {
	base
	CSRF        string
	IdPs        []idpChoice
	AllowFuture bool
	// Saved is set on the answer to the form.
	Saved *savedView
}

// idpChoice is one account of the form; Current marks the account of
// the session's login, which cannot be blocked.
type idpChoice struct {
	ID, Name         string
	Allowed, Current bool
}

// savedView is the banner after saving: what changed, in words.
type savedView struct {
	Changes []string
	Mailed  bool
}

// accounts shows the accounts with, for each, whether it is allowed.
func (a *App) accounts(w http.ResponseWriter, r *http.Request) {
	s, ok := a.requireSession(w, r)
	if !ok {
		return
	}
	prefs, err := a.preferences(r.Context(), s.Account)
	if err != nil {
		a.failWith(w, r, errStoreDown, err)
		return
	}
	a.renderAccounts(w, r, s, prefs, nil)
}

// saveAccounts records the choices of the form: the changes against what
// is stored, the new preferences and one history row per change, in one
// transaction of the store; then the e-mail that confirms them.
func (a *App) saveAccounts(w http.ResponseWriter, r *http.Request) {
	s, ok := a.requireSession(w, r)
	if !ok {
		return
	}
	if !a.checkForm(w, r, s.CSRF) {
		return
	}
	current, err := a.preferences(r.Context(), s.Account)
	if err != nil {
		a.failWith(w, r, errStoreDown, err)
		return
	}
	now := a.now()
	next, changes, err := a.applyForm(current, r.PostForm, now)
	if err != nil {
		a.failWith(w, r, errBadForm, err)
		return
	}
	if !next.Allows(s.IdP) {
		a.fail(w, r, errBlockCurrent)
		return
	}
	records := a.changeRecords(s.Account, changes, now)
	if len(records) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		defer cancel()
		if err := a.store.SetPreferences(ctx, next, records); err != nil {
			a.failWith(w, r, errStoreDown, fmt.Errorf("history: set preferences: %w", err))
			return
		}
	}
	saved := &savedView{Mailed: a.notifyChange(r, s, changes, now)}
	for _, e := range records {
		saved.Changes = append(saved.Changes, a.preferenceTitle(e, langOf(r)))
	}
	a.renderAccounts(w, r, s, next, saved)
}

// preferences are the account's, or the defaults when none were ever
// saved: every account allowed, and those added later too.
func (a *App) preferences(ctx context.Context, account string) (history.Preferences, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	p, found, err := a.store.Preferences(ctx, account)
	if err != nil {
		return history.Preferences{}, fmt.Errorf("history: preferences: %w", err)
	}
	if !found {
		return history.Preferences{Account: account, IdPs: map[string]bool{}, AllowFuture: true}, nil
	}
	if p.IdPs == nil {
		p.IdPs = map[string]bool{}
	}
	return p, nil
}

// change is one setting the form changed: an account allowed or blocked,
// or (future) the setting of the accounts added later.
type change struct {
	idp    string
	future bool
	allow  bool
}

// applyForm computes the preferences the form asks for, and what changed
// against current. Every account shown gets an explicit setting, so that
// AllowFuture only ever applies to accounts added after this save; the
// settings of accounts no longer shown are kept. A field left out keeps
// its setting; a value other than the form's is an error.
func (a *App) applyForm(current history.Preferences, form url.Values, now time.Time) (history.Preferences, []change, error) {
	next := history.Preferences{Account: current.Account, IdPs: maps.Clone(current.IdPs),
		AllowFuture: current.AllowFuture, Updated: now}
	var changes []change
	for _, idp := range a.cfg.IdentityProviders {
		before := current.Allows(idp.ID)
		after, err := formSetting(form, fieldIdPPrefix+idp.ID, "block", before)
		if err != nil {
			return history.Preferences{}, nil, err
		}
		next.IdPs[idp.ID] = after
		if after != before {
			changes = append(changes, change{idp: idp.ID, allow: after})
		}
	}
	future, err := formSetting(form, fieldFuture, "deny", current.AllowFuture)
	if err != nil {
		return history.Preferences{}, nil, err
	}
	next.AllowFuture = future
	if future != current.AllowFuture {
		changes = append(changes, change{future: true, allow: future})
	}
	return next, changes, nil
}

// formSetting reads a radio group whose values are "allow" and refuse.
func formSetting(form url.Values, name, refuse string, unset bool) (bool, error) {
	vs, ok := form[name]
	switch {
	case !ok:
		return unset, nil
	case len(vs) != 1:
		return false, fmt.Errorf("accounts form: %d values for %q", len(vs), name)
	case vs[0] == "allow":
		return true, nil
	case vs[0] == refuse:
		return false, nil
	}
	return false, fmt.Errorf("accounts form: %q is not a value of %q", vs[0], name)
}

// changeRecords are the history rows of the changes: one each, as the
// broker's rows are, with the account's name as it is now.
func (a *App) changeRecords(account string, changes []change, now time.Time) []history.Entry {
	var out []history.Entry
	for _, c := range changes {
		e := history.Entry{Account: account, Time: now, Kind: history.KindPreferences, Event: preferencesEvent}
		switch {
		case c.future && c.allow:
			e.Detail = "future:allow"
		case c.future:
			e.Detail = "future:deny"
		case c.allow:
			e.Detail, e.IdP, e.IdPName = "allow:"+c.idp, c.idp, a.idpName(c.idp)
		default:
			e.Detail, e.IdP, e.IdPName = "block:"+c.idp, c.idp, a.idpName(c.idp)
		}
		out = append(out, e)
	}
	return out
}

// notifyChange queues the e-mail that confirms the changes, when there is
// a mailer and an address; it reports whether one was queued. A change
// the citizen did not make is thus seen at once, in their mailbox.
func (a *App) notifyChange(r *http.Request, s *session, changes []change, now time.Time) bool {
	if a.mailer == nil || s.Email == "" || len(changes) == 0 {
		return false
	}
	pc := mail.PreferencesChange{To: s.Email, Time: now, SpaceURL: a.cfg.BaseURL + "/", Lang: langOf(r)}
	for _, c := range changes {
		switch {
		case c.future && c.allow:
			pc.Future = "allow"
		case c.future:
			pc.Future = "deny"
		case c.allow:
			pc.Allowed = append(pc.Allowed, a.idpName(c.idp))
		default:
			pc.Blocked = append(pc.Blocked, a.idpName(c.idp))
		}
	}
	if !a.mailer.Enqueue(mail.PreferencesMessage(pc)) {
		a.log.WarnContext(r.Context(), "dashboard: preferences e-mail dropped: mail queue full",
			"correlation_id", web.CorrelationID(r.Context()))
		return false
	}
	return true
}

func (a *App) renderAccounts(w http.ResponseWriter, r *http.Request, s *session, prefs history.Preferences, saved *savedView) {
	v := accountsView{base: a.base(r, s), CSRF: s.CSRF, AllowFuture: prefs.AllowFuture, Saved: saved}
	for _, idp := range a.cfg.IdentityProviders {
		v.IdPs = append(v.IdPs, idpChoice{ID: idp.ID, Name: idp.Name, Allowed: prefs.Allows(idp.ID), Current: idp.ID == s.IdP})
	}
	a.render(w, r, http.StatusOK, "accounts.html", "accounts_title", v)
}
