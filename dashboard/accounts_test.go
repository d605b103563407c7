package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/internal/history"
)

// saveAccounts posts the accounts form with the page's CSRF token.
func (c *citizen) saveAccounts(t *testing.T, form url.Values) (*http.Response, string) {
	t.Helper()
	_, page := c.get(t, "/comptes")
	form.Set("csrf", csrf(t, page))
	return c.post(t, "/comptes", form)
}

// Blocking an account: the broker then refuses logins through it at any
// SP (S020040, with the link to the space), the refusal shows in the
// history; another account still works; unblocking lets it work again.
// Each change is a history row and an e-mail.
func TestBlockAnAccount(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	c.login(t, "laposte", angela)
	acct := c.account(t)

	_, page := c.get(t, "/comptes")
	for _, want := range []string{`id="idp-impots-allow" name="idp-impots" value="allow" checked`, `for="idp-impots-block">Bloqué<`,
		`id="future-allow" name="future" value="allow" checked`, `id="idp-laposte-current"`} {
		if !strings.Contains(page, want) {
			t.Errorf("accounts page lacks %q", want)
		}
	}

	resp, page := c.saveAccounts(t, url.Values{"idp-impots": {"block"}, "idp-laposte": {"allow"}, "future": {"allow"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="saved"`) || !strings.Contains(page, "<li>Compte "+impotsName+" bloqué</li>") {
		t.Fatalf("save: %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, `id="idp-impots-block" name="idp-impots" value="block" checked`) {
		t.Error("the page after saving does not show the account blocked")
	}
	prefs, found, _ := e.store.Preferences(t.Context(), acct)
	if !found || prefs.IdPs["impots"] || !prefs.IdPs["laposte"] || !prefs.AllowFuture || prefs.Account != acct {
		t.Fatalf("stored preferences: %+v (found %v)", prefs, found)
	}
	changes := e.waitRows(t, 1, func(r history.Entry) bool { return r.Kind == history.KindPreferences })
	if r := changes[0]; len(changes) != 1 || r.Detail != "block:impots" || r.IdP != "impots" || r.IdPName != impotsName ||
		r.Event != "CITIZEN_PREFERENCES_CHANGED" || r.Account != acct || r.Platform != "" || r.SP != "" || r.Time.Location().String() != "UTC" {
		t.Errorf("preference rows: %+v", changes)
	}
	mails := e.mails.sent()
	if len(mails) != 1 || mails[0].To != "angela.dubois@example.org" || mails[0].Tag != "preferences" {
		t.Errorf("mails: %+v", mails)
	}
	if !strings.Contains(page, "Un courriel de confirmation") {
		t.Error("the banner does not mention the e-mail")
	}

	// At the SP, through the blocked account: refused by the broker.
	resp, page = e.refusedAtSP(t, "impots", angela)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "S020040") || !strings.Contains(page, `href="`+e.URL+`/comptes"`) {
		t.Fatalf("login through the blocked account: %d\n%s", resp.StatusCode, page)
	}
	blocked := e.waitRows(t, 1, kind(history.KindBlocked))[0]
	_, page = c.get(t, "/historique")
	block := entryBlock(t, page, blocked.ID)
	for _, want := range []string{"Connexion refusée à " + spName + " : compte bloqué", `data-field="idp">` + impotsName + `<`, `data-field="refusal">S020040<`} {
		if !strings.Contains(block, want) {
			t.Errorf("blocked row lacks %q:\n%s", want, block)
		}
	}
	if !strings.Contains(page, "Compte "+impotsName+" bloqué") {
		t.Error("the change is not in the history")
	}

	// Through another account: fine. And another person through the
	// blocked one: fine too (the choice is this person's).
	e.loginAtSP(t, "laposte", angela)
	e.loginAtSP(t, "impots", jean)

	// Unblocked: works again.
	resp, page = c.saveAccounts(t, url.Values{"idp-impots": {"allow"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<li>Compte "+impotsName+" autorisé</li>") {
		t.Fatalf("unblock: %d\n%s", resp.StatusCode, page)
	}
	e.loginAtSP(t, "impots", angela)
	if n := len(e.waitRows(t, 2, func(r history.Entry) bool { return r.Kind == history.KindPreferences })); n != 2 {
		t.Errorf("%d preference rows, want 2", n)
	}
	if n := len(e.mails.sent()); n != 2 {
		t.Errorf("%d mails, want 2", n)
	}

	// The same choices again: nothing changes, nothing is written.
	resp, page = c.saveAccounts(t, url.Values{"idp-impots": {"allow"}, "idp-laposte": {"allow"}, "future": {"allow"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Aucun changement") {
		t.Errorf("no change: %d\n%s", resp.StatusCode, page)
	}
	if n := len(e.mails.sent()); n != 2 {
		t.Errorf("%d mails after no change, want 2", n)
	}
}

// The account of the current login cannot be blocked: a 400 page, and
// nothing saved, mailed or written.
func TestCannotBlockTheCurrentAccount(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	c.login(t, "impots", angela)
	acct := c.account(t)
	for name, form := range map[string]url.Values{
		"directly":        {"idp-impots": {"block"}, "idp-laposte": {"block"}},
		"with the future": {"future": {"deny"}, "idp-impots": {"block"}},
		"twice the field": {"idp-impots": {"allow", "block"}},
	} {
		resp, page := c.saveAccounts(t, form)
		want := "S600016"
		if name == "twice the field" {
			want = "S600014"
		}
		if resp.StatusCode != http.StatusBadRequest || pageCode(t, page) != want {
			t.Errorf("%s: %d %s", name, resp.StatusCode, pageCode(t, page))
		}
	}
	_, page := c.get(t, "/comptes")
	resp, body := c.post(t, "/comptes", url.Values{"csrf": {csrf(t, page)}, "idp-impots": {"block"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "connexion actuelle ne peut pas être bloqué") {
		t.Errorf("the refusal does not say why:\n%s", body)
	}
	if _, found, _ := e.store.Preferences(t.Context(), acct); found {
		t.Error("preferences were saved")
	}
	for _, r := range e.store.entries(t) {
		if r.Kind == history.KindPreferences {
			t.Errorf("a preference row was written: %+v", r)
		}
	}
	if n := len(e.mails.sent()); n != 0 {
		t.Errorf("%d mails", n)
	}
}

// "Autoriser les comptes ajoutés à l'avenir": denied, an account the
// citizen never saw (msa, not in the space's list) is refused by the
// broker; the accounts shown keep their setting; allowed again, it works.
func TestFutureAccounts(t *testing.T) {
	e := newEnv(t, envConfig{stack: []teststack.Option{withMSA}})
	c := e.citizen()
	c.login(t, "laposte", angela)
	acct := c.account(t)

	resp, page := c.saveAccounts(t, url.Values{"future": {"deny"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<li>Comptes ajoutés à l&#39;avenir : bloqués</li>") {
		t.Fatalf("future deny: %d\n%s", resp.StatusCode, page)
	}
	prefs, _, _ := e.store.Preferences(t.Context(), acct)
	if prefs.AllowFuture || !prefs.IdPs["impots"] || !prefs.IdPs["laposte"] {
		t.Fatalf("preferences %+v: want the accounts shown pinned allowed, the future denied", prefs)
	}
	if r := e.waitRows(t, 1, func(r history.Entry) bool { return r.Kind == history.KindPreferences })[0]; r.Detail != "future:deny" || r.IdP != "" {
		t.Errorf("row %+v", r)
	}

	if resp, page := e.refusedAtSP(t, "msa", angela); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "S020040") {
		t.Errorf("login through an account added later: %d", resp.StatusCode)
	}
	e.loginAtSP(t, "impots", angela) // shown when saving: still allowed

	c.saveAccounts(t, url.Values{"future": {"allow"}})
	e.loginAtSP(t, "msa", angela)
	if m := e.mails.sent(); len(m) != 2 {
		t.Errorf("%d mails, want 2", len(m))
	}

	// Logged in to the space through msa, which the form does not show:
	// denying the future would block it, so it is refused.
	viaMSA := e.citizen()
	viaMSA.login(t, "msa", angela)
	if resp, page := viaMSA.saveAccounts(t, url.Values{"future": {"deny"}}); resp.StatusCode != http.StatusBadRequest || pageCode(t, page) != "S600016" {
		t.Errorf("denying the future while logged in through msa: %d", resp.StatusCode)
	}
	if prefs, _, _ := e.store.Preferences(t.Context(), acct); !prefs.AllowFuture {
		t.Error("the refused change was saved")
	}
}

// The form refuses what it does not offer.
func TestAccountsFormValues(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	c.login(t, "laposte", angela)
	for _, form := range []url.Values{{"idp-impots": {"maybe"}}, {"future": {"block"}}} {
		if resp, page := c.saveAccounts(t, form); resp.StatusCode != http.StatusBadRequest || pageCode(t, page) != "S600014" {
			t.Errorf("%v: %d", form, resp.StatusCode)
		}
	}
	// An unknown account in the form is ignored: only those shown count.
	if resp, _ := c.saveAccounts(t, url.Values{"idp-unknown": {"block"}}); resp.StatusCode != http.StatusOK {
		t.Errorf("unknown account: %d", resp.StatusCode)
	}
	// A person without an e-mail address: nothing is sent, and the
	// banner does not promise it.
	noMail := e.citizen()
	noMail.login(t, "laposte", "jeanne-vidal")
	resp, page := noMail.saveAccounts(t, url.Values{"idp-impots": {"block"}})
	if resp.StatusCode != http.StatusOK || strings.Contains(page, "courriel de confirmation") || len(e.mails.sent()) != 0 {
		t.Errorf("no address: %d, %d mails", resp.StatusCode, len(e.mails.sent()))
	}
}

// Without a mailer (nil), saving works and nothing is promised.
func TestNoMailer(t *testing.T) {
	e := newEnv(t, envConfig{noMailer: true})
	c := e.citizen()
	c.login(t, "laposte", angela)
	resp, page := c.saveAccounts(t, url.Values{"idp-impots": {"block"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="saved"`) || strings.Contains(page, "courriel de confirmation") {
		t.Errorf("no mailer: %d\n%s", resp.StatusCode, page)
	}
}

// Every form refuses a post without its CSRF token (or with another
// session's), and does nothing.
func TestCSRF(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	c.login(t, "laposte", angela)
	acct := c.account(t)
	other := e.citizen()
	other.login(t, "laposte", jean)
	_, page := other.get(t, "/comptes")
	foreign := csrf(t, page)

	for name, form := range map[string]url.Values{
		"missing": {"idp-impots": {"block"}},
		"empty":   {"idp-impots": {"block"}, "csrf": {""}},
		"foreign": {"idp-impots": {"block"}, "csrf": {foreign}},
	} {
		resp, page := c.post(t, "/comptes", form)
		if resp.StatusCode != http.StatusForbidden || pageCode(t, page) != "S600013" {
			t.Errorf("accounts, %s token: %d", name, resp.StatusCode)
		}
	}
	if _, found, _ := e.store.Preferences(t.Context(), acct); found {
		t.Error("preferences saved without a valid token")
	}
	if resp, _ := c.post(t, "/logout", url.Values{"csrf": {foreign}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout with another session's token: %d", resp.StatusCode)
	}
	if _, page := c.get(t, "/"); !strings.Contains(page, `id="menu"`) {
		t.Error("a forged logout logged the citizen out")
	}
}
