package broker_test

import (
	"net/url"
	"regexp"
	"slices"
	"sync"
	"testing"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
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
