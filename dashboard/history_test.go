package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/internal/history"
)

var (
	entryRE = regexp.MustCompile(`<li class="fr-mb-4w" id="entry-(\d+)" data-kind="(\w+)">`)
	nextRE  = regexp.MustCompile(`id="next" href="([^"]+)"`)
)

// A login at another SP shows in the citizen's history: the service, the
// account used, the level in words, the platform, the data passed on
// with their labels, and the connection code; the data provider's
// exchange shows too. Another person sees none of it.
func TestHistoryShowsAConnectionAtAnSP(t *testing.T) {
	e := newEnv(t, envConfig{space: []Option{WithDataProviderNames(map[string]string{dpClientID: "DGFiP"})}})
	u := e.loginAtSP(t, "impots", angela)
	conn := e.waitRows(t, 1, kind(history.KindConnection))[0]

	// The data provider reads the token: a data row.
	st, tok := e.stack.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
		"redirect_uri": {teststack.SPRedirect}}, true)
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, tok)
	}
	introspect(t, e, tok["access_token"].(string))
	e.waitRows(t, 1, kind(history.KindData))

	c := e.citizen()
	c.login(t, "laposte", angela)
	resp, page := c.get(t, "/historique")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("history: %d\n%s", resp.StatusCode, page)
	}
	block := entryBlock(t, page, conn.ID)
	for _, want := range []string{
		"Connexion à " + spName,
		`data-field="service">` + spName + `<`,
		`data-field="idp">` + impotsName + `<`,
		`data-field="level">faible (eidas1)<`,
		`data-field="platform">Sésame<`,
		"<li>Identité pivot (nom, prénoms, sexe, date et lieu de naissance)</li>",
		"<li>Adresse électronique</li>",
		"<li>Revenu fiscal de référence</li>",
		`data-field="code">` + conn.Code + `<`,
		`<time datetime="` + conn.Time.UTC().Format(time.RFC3339) + `">` + longTime(conn.Time, langFR) + `</time>`,
	} {
		if !strings.Contains(block, want) {
			t.Errorf("history row lacks %q:\n%s", want, block)
		}
	}
	if strings.Contains(block, "openid") {
		t.Errorf("openid is listed as data passed on:\n%s", block)
	}
	if len(conn.Code) != 11 || conn.Code[5] != '-' {
		t.Errorf("connection code %q", conn.Code)
	}
	if !strings.Contains(page, `data-kind="data"`) || !strings.Contains(page, "Données transmises à "+spName) ||
		!strings.Contains(page, `data-field="provider">DGFiP<`) {
		t.Errorf("the data exchange is not shown:\n%s", page)
	}
	// Newest first: the login to the space, the data, the connection.
	if rows := entryRE.FindAllStringSubmatch(page, -1); len(rows) != 3 || rows[1][2] != "data" || rows[2][1] != fmt.Sprint(conn.ID) {
		t.Errorf("rows in order %v, want the space's login, the data, the connection", rows)
	}
	// The space's own login shows too: it is a connection like any.
	if !strings.Contains(page, "Connexion à Mon espace Sésame") {
		t.Error("the login to the space itself is not in the history")
	}

	// Another person of the same IdP sees none of it.
	other := e.citizen()
	other.login(t, "impots", jean)
	_, page = other.get(t, "/historique")
	if strings.Contains(page, conn.Code) || strings.Contains(page, spName) {
		t.Errorf("another person sees the connection:\n%s", page)
	}
	if n := len(entryRE.FindAllString(page, -1)); n != 1 {
		t.Errorf("another person sees %d rows, want only their own login to the space", n)
	}
}

// An account with no history at all gets the empty state.
func TestHistoryEmpty(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	c.login(t, "impots", jean)
	acct := c.account(t)
	// The space's own login is the only row; the store's purge deletes
	// it (a cutoff past it), as the purge job does once it is older than
	// the retention.
	purge(t, e, 1)
	_, page := c.get(t, "/historique")
	if !strings.Contains(page, `id="empty"`) || !strings.Contains(page, "Aucune connexion") {
		t.Errorf("no empty state for %s:\n%s", acct, page)
	}
	if strings.Contains(page, `id="next"`) {
		t.Error("a next page for an empty history")
	}
}

// 45 rows make three pages of 20, 20 and 5, newest first, through the
// store's cursor; rows beyond the retention are not shown; a cursor
// altered, or one made for another person, is a 400 page.
func TestHistoryPagination(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	c.login(t, "impots", angela)
	acct := c.account(t)
	purge(t, e, 1) // the space's own login: not part of the count

	now := time.Now().UTC()
	var rows []history.Entry
	for i := range 45 {
		rows = append(rows, history.Entry{Account: acct, Time: now.Add(-time.Duration(45-i) * time.Hour), Kind: history.KindConnection,
			Event: "FC_CODE_ISSUED", Platform: "std", SP: "sp", SPName: fmt.Sprintf("Service %02d", i), IdP: "impots", IdPName: impotsName,
			ACR: "eidas1", Scopes: []string{"openid"}, Code: fmt.Sprintf("AAAAA-%05d", i)})
	}
	// Older than six months: kept by the store, not shown.
	rows = append(rows, history.Entry{Account: acct, Time: now.Add(-200 * 24 * time.Hour), Kind: history.KindConnection,
		SP: "sp", SPName: "Service ancien", Code: "OLD"})
	if err := e.store.Append(t.Context(), rows); err != nil {
		t.Fatal(err)
	}

	var seen []string
	path := "/historique"
	var cursors []string
	for page := 1; ; page++ {
		resp, body := c.get(t, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("page %d: %d", page, resp.StatusCode)
		}
		names := regexp.MustCompile(`Connexion à (Service [^<]+)<`).FindAllStringSubmatch(body, -1)
		for _, n := range names {
			seen = append(seen, n[1])
		}
		want := map[int]int{1: 20, 2: 20, 3: 5}[page]
		if len(names) != want {
			t.Fatalf("page %d has %d rows, want %d", page, len(names), want)
		}
		if page > 1 && !strings.Contains(body, `id="first" href="/historique"`) {
			t.Errorf("page %d has no link back to the first", page)
		}
		m := nextRE.FindStringSubmatch(body)
		if page == 3 {
			if m != nil {
				t.Errorf("the last page has a next link")
			}
			break
		}
		if m == nil {
			t.Fatalf("page %d has no next link", page)
		}
		path = strings.ReplaceAll(m[1], "&amp;", "&")
		cursors = append(cursors, path)
	}
	if len(seen) != 45 || seen[0] != "Service 44" || seen[44] != "Service 00" {
		t.Errorf("rows seen: %d, from %q to %q; want 45 from Service 44 to Service 00", len(seen), seen[0], seen[len(seen)-1])
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Errorf("row %d (%s) after %s: not newest first", i, seen[i], seen[i-1])
		}
	}
	if strings.Contains(strings.Join(seen, " "), "ancien") {
		t.Error("a row older than the retention is shown")
	}

	// The cursor, altered in every way a hand or a script would.
	u, _ := url.Parse(cursors[0])
	good := u.Query().Get("after")
	for name, bad := range map[string]string{
		"flipped":   good[:len(good)-2] + flip(good[len(good)-2:]),
		"truncated": good[:10],
		"not b64":   "!!!!",
		"raw store": "1700000000000000000.3",
		"huge":      strings.Repeat("A", 5000),
	} {
		resp, body := c.get(t, "/historique?after="+url.QueryEscape(bad))
		if resp.StatusCode != http.StatusBadRequest || pageCode(t, body) != "S600015" {
			t.Errorf("cursor %s: %d", name, resp.StatusCode)
		}
	}
	// Another person replaying this person's cursor.
	other := e.citizen()
	other.login(t, "impots", jean)
	if resp, _ := other.get(t, cursors[0]); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("another person's cursor: %d", resp.StatusCode)
	}
}

// purge deletes every row written so far through the store's Purge,
// and checks it deleted want rows (what the test knows it wrote).
func purge(t *testing.T, e *env, want int64) {
	t.Helper()
	n, err := e.store.Purge(t.Context(), time.Now().Add(time.Second))
	if err != nil || n != want {
		t.Fatalf("purge: %d rows, %v; want %d", n, err, want)
	}
}

// flip changes a base64url suffix into another valid one.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// A store that is down is a 503 page, never a stack trace.
func TestHistoryStoreDown(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.citizen()
	c.login(t, "impots", angela)
	e.store.setFail(errDown)
	defer e.store.setFail(nil)
	resp, page := c.get(t, "/historique")
	if resp.StatusCode != http.StatusServiceUnavailable || pageCode(t, page) != "S600017" || strings.Contains(page, "locked") {
		t.Errorf("store down: %d\n%s", resp.StatusCode, page)
	}
}

// Each kind of row in words, in both languages.
func TestEntryWords(t *testing.T) {
	e := newEnv(t, envConfig{})
	a := e.app
	at := time.Date(2026, 3, 2, 13, 5, 0, 0, time.UTC)
	for _, tc := range []struct {
		e      history.Entry
		fr, en string
	}{
		{history.Entry{Kind: history.KindConnection, SP: "sp"}, "Connexion à sp", "Login to sp"},
		{history.Entry{Kind: history.KindData, SPName: "S"}, "Données transmises à S", "Data sent to S"},
		{history.Entry{Kind: history.KindBlocked, SPName: "S"}, "Connexion refusée à S : compte bloqué", "Login to S refused: account blocked"},
		{history.Entry{Kind: history.KindPreferences, Detail: "block:impots", IdP: "impots", IdPName: "I"}, "Compte I bloqué", "Account I blocked"},
		{history.Entry{Kind: history.KindPreferences, Detail: "allow:laposte"}, "Compte La Poste autorisé", "Account La Poste allowed"},
		{history.Entry{Kind: history.KindPreferences, Detail: "future:deny"}, "Comptes ajoutés à l'avenir : bloqués", "Accounts added in the future: blocked"},
		{history.Entry{Kind: history.KindPreferences, Detail: "future:allow"}, "Comptes ajoutés à l'avenir : autorisés", "Accounts added in the future: allowed"},
		{history.Entry{Kind: history.KindReport}, "Connexion signalée : « ce n'était pas moi »", `Login reported: "it was not me"`},
	} {
		tc.e.Time = at
		if got := a.entryView(tc.e, langFR).Title; got != tc.fr {
			t.Errorf("%+v in French: %q, want %q", tc.e, got, tc.fr)
		}
		if got := a.entryView(tc.e, langEN).Title; got != tc.en {
			t.Errorf("%+v in English: %q, want %q", tc.e, got, tc.en)
		}
	}
	// Paris time, summer and winter.
	if got := longTime(at, langFR); got != "lundi 2 mars 2026 à 14:05" {
		t.Errorf("winter time: %q", got)
	}
	if got := longTime(time.Date(2026, 7, 14, 10, 0, 0, 0, time.UTC), langEN); got != "Tuesday 14 July 2026 at 12:00" {
		t.Errorf("summer time: %q", got)
	}
	for acr, want := range map[string]string{"eidas1": "faible (eidas1)", "eidas2": "substantiel (eidas2)", "eidas3": "élevé (eidas3)"} {
		if got := levelWords(acr, langFR); got != want {
			t.Errorf("level %s: %q", acr, got)
		}
	}
	if got := levelWords("eidas3", langEN); got != "high (eidas3)" {
		t.Errorf("level in English: %q", got)
	}
	if got := retentionWords(183*24*time.Hour, langFR); got != "6 derniers mois" {
		t.Errorf("retention: %q", got)
	}
}

// entryBlock is the <li> of one row.
func entryBlock(t *testing.T, page string, id int64) string {
	t.Helper()
	start := strings.Index(page, fmt.Sprintf(`id="entry-%d"`, id))
	if start < 0 {
		t.Fatalf("no row %d in the history:\n%s", id, page)
	}
	end := strings.Index(page[start:], "</li>\n      <li") // the next row
	if end < 0 {
		end = strings.Index(page[start:], "</ol>")
	}
	return page[start : start+end]
}

// introspect calls the broker's introspection as the data provider.
func introspect(t *testing.T, e *env, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.stack.BrokerURL+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(dpClientID, dpSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %d", resp.StatusCode)
	}
}
