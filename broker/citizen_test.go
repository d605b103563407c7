package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/history/sqlite"
	"github.com/sesame-id/sesame/internal/mail"
)

// mailbox is a mail.Mailer that keeps what it is given (the real queue
// and SMTP are tested in internal/mail and e2e).
type mailbox struct {
	mu  sync.Mutex
	got []mail.Message
}

func (m *mailbox) Enqueue(msg mail.Message) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, msg)
	return true
}

func (m *mailbox) messages() []mail.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got)
}

// Only the citizen space's registration gets the account id and the IdP
// used, in its id_token and at userinfo; any other SP gets neither.
func TestCitizenSpaceClaims(t *testing.T) {
	r := newRig(t, nil, false, withSP("space", func(sp *config.SP) { sp.CitizenSpace = true }))
	id := func(clientID string) (map[string]any, map[string]any) {
		u, _, _ := r.browser().login(t, authParams("client_id", clientID), "laposte", "angela-dubois", nil)
		tok := r.redeem(t, clientID, u)
		return tok.ID, r.userinfo(t, tok.AccessToken)
	}
	spID, spInfo := id(teststack.SPID)
	for _, c := range []map[string]any{spID, spInfo} {
		if _, ok := c["sesame_account"]; ok {
			t.Errorf("an ordinary SP got sesame_account: %v", c)
		}
		if _, ok := c["idp_id"]; ok {
			t.Errorf("an ordinary SP got idp_id: %v", c)
		}
	}
	spaceID, spaceInfo := id("space")
	acct, _ := spaceID["sesame_account"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(acct) || spaceID["idp_id"] != "laposte" {
		t.Fatalf("citizen space id_token: sesame_account %v idp_id %v", spaceID["sesame_account"], spaceID["idp_id"])
	}
	if spaceInfo["sesame_account"] != acct || spaceInfo["idp_id"] != "laposte" {
		t.Errorf("citizen space userinfo: %v", spaceInfo)
	}
	// The same person through another IdP has the same account.
	u, _, _ := r.browser().login(t, authParams("client_id", "space"), "impots", "angela-dubois", nil)
	if other := r.redeem(t, "space", u).ID; other["sesame_account"] != acct || other["idp_id"] != "impots" {
		t.Errorf("through impots: sesame_account %v idp_id %v, want %s impots", other["sesame_account"], other["idp_id"], acct)
	}
}

// One e-mail per new connection: a login at an SP sends one, with the
// connection code of its audit event; SSO at that same SP in the same
// session sends none; SSO at another SP sends one; an IdP with
// notify_email false, or an identity without an address, sends none.
func TestConnectionMail(t *testing.T) {
	box, rec := &mailbox{}, &auditRecorder{}
	s := teststack.NewWith(t, []broker.Option{broker.WithMailer(box), broker.WithAudit(rec)},
		withSP("other", func(sp *config.SP) { sp.Name = "Autre démarche" }),
		onSP(func(sp *config.SP) { sp.Name = "Démarche de test" }),
		onIdP("impots", func(i *config.IdP) { f := false; i.NotifyEmail = &f }),
		func(c *config.Config) { c.Broker.CitizenSpaceURL = "https://espace.example" })
	r := &rig{Stack: s}
	r.login(t, authParams(), "laposte", "angela-dubois", nil)
	msgs := box.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d e-mails after one login, want 1", len(msgs))
	}
	m := msgs[0]
	var code string
	for _, e := range rec.events {
		if e.Name == audit.CodeIssued {
			code = e.Code
		}
	}
	if !regexp.MustCompile(`^[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}$`).MatchString(code) {
		t.Fatalf("connection code %q", code)
	}
	if m.To != "angela.dubois@example.org" || m.Tag != "connection" || !contains(m.Text, code) || !contains(m.Text+m.HTML, "Démarche de test") {
		t.Errorf("e-mail to %q tag %q: %s", m.To, m.Tag, m.Text)
	}
	if !contains(m.Text+m.HTML, "https://espace.example/signalement?code="+url.QueryEscape(code)) {
		t.Errorf("no report link with the code in %s", m.Text)
	}
	r.sso(t, authParams())
	if n := len(box.messages()); n != 1 {
		t.Errorf("SSO at the same SP: %d e-mails, want still 1", n)
	}
	r.sso(t, authParams("client_id", "other", "redirect_uri", teststack.SPRedirect))
	if n := len(box.messages()); n != 2 {
		t.Errorf("SSO at another SP: %d e-mails, want 2", n)
	}
	r.browser().login(t, authParams(), "impots", "angela-dubois", nil)
	r.browser().login(t, authParams(), "laposte", "jeanne-vidal", nil)
	if n := len(box.messages()); n != 2 {
		t.Errorf("notify_email false, or no address: %d e-mails, want still 2", n)
	}
}

func contains(s, sub string) bool { return regexp.MustCompile(regexp.QuoteMeta(sub)).MatchString(s) }

// blockingRig is a stack whose broker reads the citizens' preferences
// from a real SQLite history store.
func blockingRig(t *testing.T) (*rig, history.Store) {
	h, err := sqlite.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	s := teststack.NewWithHistory(t, h, offering("impots", "laposte"),
		withSP("space", func(sp *config.SP) { sp.CitizenSpace = true }),
		func(c *config.Config) { c.Broker.CitizenSpaceURL = "https://espace.example" })
	return &rig{Stack: s}, h
}

// accountOf logs identity in at the citizen space's registration, through
// idp, in a new browser, and reads the account id it is given.
func (r *rig) accountOf(t *testing.T, idp, identity string) string {
	t.Helper()
	u, _, _ := r.browser().login(t, authParams("client_id", "space"), idp, identity, nil)
	acct, _ := r.redeem(t, "space", u).ID["sesame_account"].(string)
	if acct == "" {
		t.Fatal("no sesame_account for the citizen space")
	}
	return acct
}

// waitHistory polls the account's history until ok holds of it.
func waitHistory(t *testing.T, h history.Store, acct string, ok func([]history.Entry) bool) []history.Entry {
	t.Helper()
	for range 200 {
		p, err := h.List(context.Background(), history.Query{Account: acct, Limit: history.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if ok(p.Entries) {
			return p.Entries
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the history never showed the rows expected")
	return nil
}

// A login through an account the citizen blocked ends, once the IdP has
// authenticated them, on S020040 with the way to undo it; through another
// account it works; allowed again, the first works again. The refusal is
// a history row.
func TestBlockedIdP(t *testing.T) {
	r, h := blockingRig(t)
	acct := r.accountOf(t, "laposte", "angela-dubois")
	set := func(allowImpots bool) {
		t.Helper()
		if err := h.SetPreferences(context.Background(), history.Preferences{Account: acct,
			IdPs: map[string]bool{"impots": allowImpots, "laposte": true}, AllowFuture: true}, nil); err != nil {
			t.Fatal(err)
		}
	}
	set(false)
	b := r.browser()
	resp, body := b.callback(t, authParams(), "impots", "angela-dubois", nil)
	wantPage(t, resp, body, http.StatusForbidden, "S020040")
	if !strings.Contains(body, `href="https://espace.example/comptes"`) || !strings.Contains(body, `href="/authorize/choose"`) {
		t.Errorf("the blocked page links neither the citizen space nor the chooser:\n%s", body)
	}
	// Another person is not concerned; another account of this one works.
	if u, _, _ := r.browser().login(t, authParams(), "impots", "helene-lefevre", nil); u.Query().Get("code") == "" {
		t.Errorf("another person through impots: %s", u)
	}
	if u, _, _ := r.browser().login(t, authParams(), "laposte", "angela-dubois", nil); u.Query().Get("code") == "" {
		t.Errorf("through laposte: %s", u)
	}
	set(true)
	if u, _, _ := r.browser().login(t, authParams(), "impots", "angela-dubois", nil); u.Query().Get("code") == "" {
		t.Errorf("impots allowed again: %s", u)
	}
	page := waitHistory(t, h, acct, func(es []history.Entry) bool {
		return slices.ContainsFunc(es, func(e history.Entry) bool { return e.Kind == history.KindBlocked })
	})
	for _, e := range page {
		if e.Kind == history.KindBlocked && (e.IdP != "impots" || e.SP != teststack.SPID || e.Detail != "S020040") {
			t.Errorf("blocked row %+v", e)
		}
	}
}

// A session opened through an account that the citizen blocks afterwards
// serves no other SP: the SSO goes back to the chooser (and prompt=none
// gets login_required).
func TestBlockedIdPEndsSSO(t *testing.T) {
	r, h := blockingRig(t)
	acct := r.accountOf(t, "laposte", "angela-dubois")
	r.login(t, authParams(), "impots", "angela-dubois", nil)
	r.sso(t, authParams())
	if err := h.SetPreferences(context.Background(), history.Preferences{Account: acct, IdPs: map[string]bool{"impots": false}, AllowFuture: true}, nil); err != nil {
		t.Fatal(err)
	}
	wantLocation(t, r.authorize(t, authParams()), "/authorize/choose")
	wantSPError(t, r, r.authorize(t, authParams("prompt", "none")), "login_required")
}

// countingHistory is a real history store that counts the calls made to it.
type countingHistory struct {
	history.Store
	prefs, appends atomic.Int64
}

func (c *countingHistory) Preferences(ctx context.Context, acct string) (history.Preferences, bool, error) {
	c.prefs.Add(1)
	return c.Store.Preferences(ctx, acct)
}

func (c *countingHistory) Append(ctx context.Context, es []history.Entry) error {
	c.appends.Add(1)
	return c.Store.Append(ctx, es)
}

// What a login costs the history store: one read of the preferences at
// the callback (and one at an SSO), and no write in any request: rows
// go in batches, from the feeder's goroutine, after the answers.
func TestHistoryRoundTrips(t *testing.T) {
	h, err := sqlite.Open(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := &countingHistory{Store: h}
	feeder := history.NewFeeder(c, nil, history.FeederConfig{FlushEvery: time.Hour, BatchSize: 1000}, nil)
	s := teststack.NewWith(t, []broker.Option{broker.WithHistory(c), broker.WithAudit(feeder)})
	r := &rig{Stack: s}
	u, _, _ := r.login(t, authParams(), "impots", "angela-dubois", nil)
	tok := r.redeem(t, teststack.SPID, u)
	r.userinfo(t, tok.AccessToken)
	if p, a := c.prefs.Load(), c.appends.Load(); p != 1 || a != 0 {
		t.Errorf("a login: %d preference reads and %d appends, want 1 and 0", p, a)
	}
	r.sso(t, authParams())
	if p := c.prefs.Load(); p != 2 {
		t.Errorf("an SSO: %d preference reads in all, want 2", p)
	}
	if err := feeder.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := c.appends.Load(); a != 1 {
		t.Errorf("%d appends at Close, want the one batch", a)
	}
}
