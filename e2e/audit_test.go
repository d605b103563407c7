package e2e

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestE2EJSONLogsAndLoginTrail: with log.format json, every line every
// process writes is one JSON object; one login's audit events, from the
// authorization request through the IdP to token and userinfo, carry one
// login_id; and no audit event holds an identity attribute in clear.
func TestE2EJSONLogsAndLoginTrail(t *testing.T) {
	st := startStack(t, stackOptions{})
	r := newRP(t, st, demoSPID, oauth2.AuthStyleInHeader, "openid", "identite_pivot", "email")
	code, _ := r.login(t, newAgent(t), "impots", "angela-dubois", loginHooks{})
	tok, err := r.exchange(t, code)
	if err != nil {
		t.Fatal(err)
	}
	r.userinfo(t, tok.AccessToken)
	// One more login through the demo SP process, so its log and the
	// providers' have lines too.
	demoSPLogin(t, st, newAgent(t), "impots", "angela-dubois")

	who := loadIdentity(t, "angela-dubois")
	byLogin := map[string][]string{}
	for _, name := range []string{"broker", "providers", "demo-sp"} {
		sc := bufio.NewScanner(strings.NewReader(st.logText(name)))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		lines := 0
		for sc.Scan() {
			line := sc.Text()
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%s log line is not JSON: %q", name, line)
			}
			lines++
			if rec["msg"] != "audit" {
				continue
			}
			for _, v := range []string{who["family_name"], who["birthdate"], who["email"]} {
				if strings.Contains(line, v) {
					t.Errorf("audit event with %q in clear: %s", v, line)
				}
			}
			if id, _ := rec["login_id"].(string); id != "" && rec["sp"] == demoSPID {
				byLogin[id] = append(byLogin[id], rec["event"].(string))
			}
		}
		if lines == 0 {
			t.Errorf("%s wrote no log line", name)
		}
	}
	want := []string{"FC_AUTHORIZE_RECEIVED", "FC_IDP_CHOSEN", "FC_IDP_RETURNED", "FC_IDENTITY_VERIFIED", "FC_CODE_ISSUED", "SP_TOKEN_ISSUED", "SP_USERINFO_SERVED"}
	full := 0
	for id, events := range byLogin {
		if strings.Join(events, " ") == strings.Join(want, " ") {
			full++
		} else {
			t.Logf("login %s: %v", id, events)
		}
	}
	if full < 2 {
		t.Fatalf("%d logins with the whole trail under one login_id, want 2 (the test's and the demo SP's): %v", full, byLogin)
	}
}
