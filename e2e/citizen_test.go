package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/sesame-id/sesame/internal/testpg"
	"github.com/sesame-id/sesame/internal/testsmtp"
)

// The citizen space on real processes (broker, mock IdPs, demo SP and
// citizen space, on Redis, the history on SQLite, mail to a real SMTP
// server in the test): logins at two SPs through two IdPs show in the
// person's space and nobody else's; blocking an account stops logins
// through it and only it; each new connection sends an e-mail whose code
// is the history row's, and the "not me" link records a report; no store
// holds a name, a birth date or an address in clear.
func TestE2ECitizenSpace(t *testing.T) {
	smtp := testsmtp.Start(t)
	st := startStack(t, stackOptions{Citizen: &citizenOptions{SMTPHost: "127.0.0.1", SMTPPort: smtp.Port}})
	runCitizenSpace(t, st, smtp)
	t.Run("stores hold no identity", func(t *testing.T) {
		checkNoIdentityInRedis(t, st)
		checkNoIdentityInFiles(t, st.HistoryPath, st.HistoryPath+"-wal")
	})
	t.Run("every log line is JSON", func(t *testing.T) {
		for _, name := range []string{"broker", "dashboard"} {
			lines := strings.Split(strings.TrimSpace(st.logText(name)), "\n")
			for _, line := range lines {
				if !json.Valid([]byte(line)) {
					t.Fatalf("%s log line is not JSON: %q", name, line)
				}
				if name == "dashboard" && strings.Contains(line, "angela.dubois@example.org") {
					t.Errorf("the dashboard logs an address: %s", line)
				}
			}
			if len(lines) < 3 {
				t.Errorf("%s wrote %d log lines", name, len(lines))
			}
		}
	})
}

// The same on a real PostgreSQL (Debian's postgresql, started by the
// test): the history store is shared by the broker and the citizen space
// processes through it.
func TestE2ECitizenSpacePostgres(t *testing.T) {
	pg := testpg.Start(t)
	url := pg.NewDB(t)
	smtp := testsmtp.Start(t)
	st := startStack(t, stackOptions{Citizen: &citizenOptions{PostgresURL: url, SMTPHost: "127.0.0.1", SMTPPort: smtp.Port}})
	runCitizenSpace(t, st, smtp)
	t.Run("tables hold no identity", func(t *testing.T) {
		checkNoIdentityInRedis(t, st)
		dump := pgTablesText(t, url)
		for _, bad := range identityValues(t, "angela-dubois") {
			if strings.Contains(dump, bad) {
				t.Errorf("PostgreSQL holds %q in clear", bad)
			}
		}
		if !strings.Contains(dump, "Démarche de démonstration") {
			t.Error("the PostgreSQL dump does not hold the history at all: the check above proves nothing")
		}
	})
}

func runCitizenSpace(t *testing.T, st *stack, smtp *testsmtp.Server) {
	angela := loadIdentity(t, "angela-dubois")
	t.Run("two SPs, two IdPs", func(t *testing.T) {
		demoSPLogin(t, st, newAgent(t), "impots", "angela-dubois")
		r := newRP(t, st, otherSPID, oauth2.AuthStyleInHeader, "openid", "identite_pivot", "email")
		if code, _ := r.login(t, newAgent(t), "laposte", "angela-dubois", loginHooks{}); code == "" {
			t.Fatal("no code at the other SP")
		}
		space := spaceLogin(t, st, newAgent(t), "ameli", "angela-dubois")
		h := waitHistory(t, st, space, "three connections and two data rows", func(body string) bool {
			return strings.Count(body, `data-kind="connection"`) >= 3 && strings.Count(body, `data-kind="data"`) >= 2
		})
		for _, want := range []string{
			"Démarche de démonstration", "impots.gouv.fr", "Autre administration", "L&#39;Identité Numérique La Poste",
			"Revenu fiscal de référence (DGFiP)", "Quotient familial (CNAF)",
		} {
			if !strings.Contains(h.body, want) {
				t.Errorf("the history does not show %q:\n%s", want, excerpt(h.text()))
			}
		}
		if n := strings.Count(h.body, `data-kind="connection"`); n < 3 {
			t.Errorf("%d connections in the history, want the demo SP, the other SP and the space itself", n)
		}
		if n := strings.Count(h.body, `data-kind="data"`); n < 2 {
			t.Errorf("%d data rows, want the DGFiP's and the CNAF's for the demo SP", n)
		}
		other := spaceLogin(t, st, newAgent(t), "impots", "helene-lefevre")
		oh := other.get(st.Dashboard + "/historique").ok(t)
		for _, bad := range []string{"Démarche de démonstration", "Autre administration"} {
			if strings.Contains(oh.body, bad) {
				t.Errorf("another person's history shows %q", bad)
			}
		}
	})

	t.Run("e-mail, code, report", func(t *testing.T) {
		msgs := waitMail(t, smtp, angela["email"], "Démarche de démonstration")
		m := msgs[0]
		code := regexp.MustCompile(`[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}`).FindString(m.Text)
		if code == "" {
			t.Fatalf("no connection code in the e-mail:\n%s", m.Text)
		}
		for _, want := range []string{"impots.gouv.fr", "Démarche de démonstration"} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("the e-mail does not say %q:\n%s", want, m.Text)
			}
		}
		space := spaceLogin(t, st, newAgent(t), "ameli", "angela-dubois")
		if h := space.get(st.Dashboard + "/historique").ok(t); !strings.Contains(h.body, code) {
			t.Errorf("the history has no row with the e-mail's code %s", code)
		}
		link := regexp.MustCompile(`https?://[^\s"<>]+/signalement\?code=[A-Z0-9%-]+`).FindString(m.Text)
		if link == "" || !strings.HasPrefix(link, st.Dashboard) {
			t.Fatalf("no report link to the space in the e-mail:\n%s", m.Text)
		}
		victim := newAgent(t)
		form := victim.get(link).ok(t)
		if got := form.byID(t, "code"); got != code {
			t.Errorf("the report page names code %q, want %q", got, code)
		}
		done := victim.post(st.Dashboard+"/signalement", formValues(t, form)).ok(t)
		if !done.has("reported") {
			t.Fatalf("the report was not recorded:\n%s", excerpt(done.text()))
		}
		if again := victim.post(st.Dashboard+"/signalement", formValues(t, victim.get(link).ok(t))).ok(t); !again.has("already-reported") {
			t.Errorf("a second report of one code:\n%s", excerpt(again.text()))
		}
		if h := space.get(st.Dashboard + "/historique").ok(t); !strings.Contains(h.body, `data-kind="report"`) {
			t.Error("the report is not in the history")
		}
	})

	t.Run("block an account", func(t *testing.T) {
		space := spaceLogin(t, st, newAgent(t), "ameli", "angela-dubois")
		save := func(idp, value string) {
			t.Helper()
			page := space.get(st.Dashboard + "/comptes").ok(t)
			form := formValues(t, page)
			form.Set("idp-"+idp, value)
			if res := space.post(st.Dashboard+"/comptes", form).ok(t); !res.has("saved") {
				t.Fatalf("saving %s=%s:\n%s", idp, value, excerpt(res.text()))
			}
		}
		// The account of this very login cannot be blocked.
		page := space.get(st.Dashboard + "/comptes").ok(t)
		form := formValues(t, page)
		form.Set("idp-ameli", "block")
		if res := space.post(st.Dashboard+"/comptes", form); res.status != http.StatusBadRequest {
			t.Errorf("blocking the current account: %d, want 400", res.status)
		}

		save("impots", "block")
		a := newAgent(t)
		r := newRP(t, st, otherSPID, oauth2.AuthStyleInHeader, "openid", "identite_pivot", "email")
		ch := a.toChooser(t, st, r.authURL())
		login, idpAuth := a.chooseIdP(t, st, ch, "impots")
		cb := a.idpLogin(t, st, "impots", login, idpAuth, "angela-dubois")
		refused := a.get(cb.String())
		refused.errorPage(t, http.StatusForbidden, "S020040")
		if !strings.Contains(refused.body, `href="`+st.Dashboard+`/comptes"`) {
			t.Errorf("the refusal does not link to the space:\n%s", excerpt(refused.text()))
		}
		// Through another account, the same person logs in.
		if code, _ := newRP(t, st, otherSPID, oauth2.AuthStyleInHeader, "openid").login(t, newAgent(t), "laposte", "angela-dubois", loginHooks{}); code == "" {
			t.Error("laposte refused while only impots is blocked")
		}
		// Another person through impots is not concerned.
		if code, _ := newRP(t, st, otherSPID, oauth2.AuthStyleInHeader, "openid").login(t, newAgent(t), "impots", "helene-lefevre", loginHooks{}); code == "" {
			t.Error("another person refused through impots")
		}
		save("impots", "allow")
		if code, _ := newRP(t, st, otherSPID, oauth2.AuthStyleInHeader, "openid").login(t, newAgent(t), "impots", "angela-dubois", loginHooks{}); code == "" {
			t.Error("impots still refused once allowed again")
		}
		h := waitHistoryPage(t, st, space, `data-kind="blocked"`)
		if strings.Count(h.body, `data-kind="preferences"`) < 2 {
			t.Errorf("the history lacks the refusal or the two changes:\n%s", excerpt(h.text()))
		}
		waitMail(t, smtp, angela["email"], "comptes")
	})
}

// spaceLogin logs identity in at the citizen space through idp and
// returns the agent, whose cookie holds the space's session.
func spaceLogin(t *testing.T, st *stack, a *agent, idp, identityID string) *agent {
	t.Helper()
	auth := a.get(st.Dashboard+"/login").redirect(t, st.Broker+"/authorize")
	wantQuery(t, "space → broker", auth, map[string]string{"client_id": spaceID, "prompt": "login", "redirect_uri": st.Dashboard + "/callback"})
	bl := a.loginAtBroker(t, st, auth.String(), idp, identityID, loginHooks{})
	a.get(bl.Final.String()).redirect(t, st.Dashboard+"/")
	home := a.get(st.Dashboard + "/").ok(t)
	if !home.has("space-menu") {
		t.Fatalf("the space's home after login has no menu:\n%s", excerpt(home.text()))
	}
	return a
}

// waitHistoryPage reads the space's history until it shows want (the
// broker writes the history in batches).
func waitHistoryPage(t *testing.T, st *stack, a *agent, want string) *page {
	t.Helper()
	return waitHistory(t, st, a, want, func(body string) bool { return strings.Contains(body, want) })
}

// waitHistory reads the space's history until ok holds of it.
func waitHistory(t *testing.T, st *stack, a *agent, want string, ok func(string) bool) *page {
	t.Helper()
	var p *page
	for range 100 {
		p = a.get(st.Dashboard + "/historique").ok(t)
		if ok(p.body) {
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the history never showed %q:\n%s", want, excerpt(p.text()))
	return nil
}

// waitMail waits for a message to addr whose text holds want.
func waitMail(t *testing.T, smtp *testsmtp.Server, addr, want string) []*testsmtp.Parsed {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var out []*testsmtp.Parsed
		for _, m := range smtp.Messages() {
			p := m.MustParse(t)
			if strings.Contains(strings.Join(m.To, ","), addr) && strings.Contains(p.Subject+p.Text, want) {
				out = append(out, p)
			}
		}
		if len(out) > 0 {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no e-mail to %s saying %q in 10 s (%d messages)", addr, want, len(smtp.Messages()))
	return nil
}

// formValues are a page's form fields (inputs with a value; checked
// radios only).
func formValues(t *testing.T, p *page) url.Values {
	t.Helper()
	out := url.Values{}
	for _, m := range regexp.MustCompile(`<input[^>]*>`).FindAllString(p.body, -1) {
		name := attr(m, "name")
		if name == "" || (attr(m, "type") == "radio" && !strings.Contains(m, " checked")) {
			continue
		}
		out.Set(name, htmlUnescape(attr(m, "value")))
	}
	return out
}

func attr(tag, name string) string {
	m := regexp.MustCompile(`\s` + name + `="([^"]*)"`).FindStringSubmatch(tag)
	if m == nil {
		return ""
	}
	return m[1]
}

func htmlUnescape(s string) string { return (&page{body: s}).text() }

// identityValues are the person's name, birth date and address, which no
// store may hold in clear.
func identityValues(t *testing.T, id string) []string {
	who := loadIdentity(t, id)
	return []string{who["family_name"], strings.Fields(who["given_name"])[0], who["birthdate"], who["email"]}
}

// pgTablesText is every row of every table of the public schema, as
// text.
func pgTablesText(t *testing.T, url string) string {
	t.Helper()
	ctx := stepCtx(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(strings.Join(lines, "\n"))
	}
	return b.String()
}

// checkNoIdentityInRedis scans every key and value of the broker's Redis.
func checkNoIdentityInRedis(t *testing.T, st *stack) {
	t.Helper()
	keys := st.scanKeys(t)
	if len(keys) == 0 {
		t.Fatal("Redis is empty: the check proves nothing")
	}
	for k, v := range keys {
		for _, bad := range identityValues(t, "angela-dubois") {
			if strings.Contains(k, bad) || bytes.Contains(v.Value, []byte(bad)) {
				t.Errorf("Redis key %q holds %q in clear", k, bad)
			}
		}
	}
}

// checkNoIdentityInFiles reads the SQLite files byte for byte.
func checkNoIdentityInFiles(t *testing.T, paths ...string) {
	t.Helper()
	var all []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte("Démarche de démonstration")) {
		t.Fatalf("%s holds no history at all: the check proves nothing", filepath.Base(paths[0]))
	}
	for _, bad := range identityValues(t, "angela-dubois") {
		if bytes.Contains(all, []byte(bad)) {
			t.Errorf("the SQLite file holds %q in clear", bad)
		}
	}
}
