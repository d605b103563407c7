package e2e

// Operations on the real binary: a SIGHUP reload of the registry under
// logins, and a replica killed behind a load balancer.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// opsStepError is a login step that did not answer as a healthy broker
// does: the step, the status (-1: no answer at all) and the code shown.
type opsStepError struct {
	step   string
	status int
	code   string
	at     time.Time
}

func (e *opsStepError) Error() string {
	return fmt.Sprintf("%s: %d %s", e.step, e.status, e.code)
}

var (
	opsCodeRE = regexp.MustCompile(`S\d{6}|temporarily_unavailable|invalid_grant|invalid_token|invalid_client`)
	opsCSRFRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	opsTxRE   = regexp.MustCompile(`name="tx" value="([^"]+)"`)
	opsFormRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
)

// opsLogin runs one complete login of client at the std platform whose
// public URL is base (authorize, chooser, impots, callback, information
// page, token, userinfo) and reports the first step that failed, without
// calling t.Fatal, so that callers in goroutines can count failures.
// retry, when set, is asked whether to try a failed step once more (a
// citizen pressing F5).
func opsLogin(base string, client spClient, retry func(*opsStepError) bool) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var resp *http.Response
	var body string
	do := func(step, method, u string, form url.Values, want int) error {
		for attempt := 0; ; attempt++ {
			var rd io.Reader
			if form != nil {
				rd = strings.NewReader(form.Encode())
			}
			req, _ := http.NewRequest(method, u, rd)
			if form != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			var se *opsStepError
			r, err := c.Do(req)
			if err != nil {
				se = &opsStepError{step: step, status: -1, code: err.Error(), at: time.Now()}
			} else {
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				resp, body = r, string(b)
				if r.StatusCode != want {
					se = &opsStepError{step: step, status: r.StatusCode, code: opsCodeRE.FindString(body), at: time.Now()}
				}
			}
			if se == nil {
				return nil
			}
			if attempt > 0 || retry == nil || !retry(se) {
				return se
			}
		}
	}
	field := func(re *regexp.Regexp) string {
		if m := re.FindStringSubmatch(body); m != nil {
			return strings.ReplaceAll(m[1], "&amp;", "&")
		}
		return ""
	}
	q := url.Values{
		"client_id": {client.ID}, "redirect_uri": {client.RedirectURI}, "response_type": {"code"},
		"scope": {"openid identite_pivot"}, "state": {"state-ops-0123"}, "nonce": {"nonce-ops-0123456789abcdef"},
		"acr_values": {"eidas1"},
	}
	if err := do("authorize", "GET", base+"/authorize?"+q.Encode(), nil, 303); err != nil {
		return err
	}
	if err := do("chooser", "GET", base+"/authorize/choose", nil, 200); err != nil {
		return err
	}
	if err := do("choose", "POST", base+"/authorize/choose", url.Values{"csrf": {field(opsCSRFRE)}, "idp": {"impots"}}, 303); err != nil {
		return err
	}
	idpAuth := resp.Header.Get("Location")
	if err := do("idp page", "GET", idpAuth, nil, 200); err != nil {
		return err
	}
	action, _ := url.Parse(idpAuth)
	if a := field(opsFormRE); a != "" {
		action, _ = action.Parse(a)
	}
	if err := do("idp login", "POST", action.String(), url.Values{"tx": {field(opsTxRE)}, "identity": {"angela-dubois"}, "action": {"login"}}, 303); err != nil {
		return err
	}
	if err := do("callback", "GET", resp.Header.Get("Location"), nil, 303); err != nil {
		return err
	}
	if err := do("consent page", "GET", base+"/authorize/consent", nil, 200); err != nil {
		return err
	}
	if err := do("consent", "POST", base+"/authorize/consent", url.Values{"csrf": {field(opsCSRFRE)}}, 303); err != nil {
		return err
	}
	final, _ := url.Parse(resp.Header.Get("Location"))
	code := final.Query().Get("code")
	if !strings.HasPrefix(final.String(), client.RedirectURI) || code == "" {
		return &opsStepError{step: "consent", status: resp.StatusCode, code: "no code in " + final.String(), at: time.Now()}
	}
	tokenReq := func() *http.Request {
		req, _ := http.NewRequest("POST", base+"/token", strings.NewReader(url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {client.RedirectURI},
		}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(client.ID, client.Secret)
		return req
	}
	r, err := http.DefaultClient.Do(tokenReq())
	if err != nil {
		return &opsStepError{step: "token", status: -1, code: err.Error(), at: time.Now()}
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	raw, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || json.Unmarshal(raw, &tok) != nil || tok.AccessToken == "" {
		return &opsStepError{step: "token", status: r.StatusCode, code: opsCodeRE.FindString(string(raw)), at: time.Now()}
	}
	req, _ := http.NewRequest("GET", base+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	r, err = http.DefaultClient.Do(req)
	if err != nil {
		return &opsStepError{step: "userinfo", status: -1, code: err.Error(), at: time.Now()}
	}
	raw, _ = io.ReadAll(r.Body)
	r.Body.Close()
	// A signed userinfo (application/jwt) carries its sub inside.
	if r.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"sub"`) && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/jwt") {
		return &opsStepError{step: "userinfo", status: r.StatusCode, code: opsCodeRE.FindString(string(raw) + r.Header.Get("WWW-Authenticate")), at: time.Now()}
	}
	return nil
}

// procNamed is the stack's process of that name.
func (s *stack) procNamed(t *testing.T, name string) *proc {
	t.Helper()
	for _, p := range s.procs {
		if p.name == name {
			return p
		}
	}
	t.Fatalf("no %s process", name)
	return nil
}

// editConfig rewrites the stack's config file with edit, which must
// change it.
func editConfig(t *testing.T, path string, edit func(string) string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := edit(string(raw))
	if out == string(raw) {
		t.Fatal("editConfig: the edit changed nothing")
	}
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
}

// authorizeStatus is the broker's answer to an authorization request of
// client at redirectURI.
func authorizeStatus(t *testing.T, base, clientID, redirectURI string) int {
	t.Helper()
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s-0123456789"}, "nonce": {"n-0123456789abcdef0123"}, "acr_values": {"eidas1"}}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// SIGHUP on the real binary: the config file changes (an SP added,
// another's redirect_uri changed, an IdP switched off) and the broker
// takes it at SIGHUP while logins run, none failing; an invalid file is
// refused with its reasons in the log, and a setting that needs a
// restart is named.
func TestE2EReloadOnSIGHUP(t *testing.T) {
	st := startStack(t, stackOptions{Memory: true})
	cfgPath := filepath.Join(st.dir, "sesame.yaml")
	broker := st.procNamed(t, "broker")
	other := st.Clients[otherSPID]
	newOther := st.RP + "/other/new-callback"
	added := spClient{ID: "added-sp", Secret: "e2e-only-added-sp-secret-0123456789abcdef", RedirectURI: st.RP + "/added/callback"}
	if authorizeStatus(t, st.Broker, added.ID, added.RedirectURI) != http.StatusBadRequest {
		t.Fatal("the SP to be added is already known")
	}

	// Logins of the demo SP run throughout.
	stop := make(chan struct{})
	var mu sync.Mutex
	var ok int
	var failed []error
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := opsLogin(st.Broker, st.Clients[demoSPID], nil)
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
				} else {
					ok++
				}
				mu.Unlock()
			}
		})
	}
	hup := func(wantLog string) {
		t.Helper()
		before := st.logCount("broker", wantLog)
		if err := broker.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if !st.waitLog("broker", wantLog, before) {
			t.Fatalf("no %q in the broker's log after SIGHUP", wantLog)
		}
	}

	time.Sleep(300 * time.Millisecond)
	editConfig(t, cfgPath, func(s string) string {
		s = strings.Replace(s, `redirect_uris: ["`+other.RedirectURI+`"]`, `redirect_uris: ["`+newOther+`"]`, 1)
		s = strings.Replace(s, `      issuer: "`+st.Providers+`/ameli"`, `      issuer: "`+st.Providers+`/ameli"`+"\n      active: false", 1)
		return strings.Replace(s, "\n    - id: plus\n", fmt.Sprintf(`
        - client_id: %s
          client_secret: "%s"
          name: Service ajouté à chaud
          sector: added.sesame.localhost
          redirect_uris: ["%s"]
          scopes: [openid, identite_pivot]
    - id: plus
`, added.ID, added.Secret, added.RedirectURI), 1)
	})
	hup(`"msg":"config reloaded"`)
	time.Sleep(300 * time.Millisecond)
	// A few more SIGHUPs of the same file while logins run.
	for range 5 {
		hup(`"msg":"config reloaded"`)
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("6 SIGHUP reloads during %d logins: %d failed", ok+len(failed), len(failed))
	for _, err := range failed {
		t.Errorf("a login failed across a SIGHUP reload: %v", err)
	}
	if ok == 0 {
		t.Fatal("no login ran during the reloads")
	}

	if err := opsLogin(st.Broker, added, nil); err != nil {
		t.Fatalf("the SP added at SIGHUP: %v", err)
	}
	if st := authorizeStatus(t, st.Broker, other.ID, other.RedirectURI); st != http.StatusBadRequest {
		t.Fatalf("the removed redirect_uri: %d, want 400", st)
	}
	other.RedirectURI = newOther
	if err := opsLogin(st.Broker, other, nil); err != nil {
		t.Fatalf("the new redirect_uri: %v", err)
	}
	a := newAgent(t)
	ch := a.toChooser(t, st, st.Broker+"/authorize?"+url.Values{"client_id": {demoSPID}, "redirect_uri": {st.Clients[demoSPID].RedirectURI},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"s-0123456789"}, "nonce": {"n-0123456789abcdef0123"}, "acr_values": {"eidas1"}}.Encode())
	if !strings.Contains(ch.body, `id="idp-ameli" disabled`) {
		t.Fatal("ameli, switched off in the file, is still offered")
	}

	// An invalid file: refused, the reasons logged, the registry kept.
	editConfig(t, cfgPath, func(s string) string {
		return strings.Replace(s, `redirect_uris: ["`+added.RedirectURI+`"]`, `redirect_uris: ["not a url"]`, 1)
	})
	hup(`"msg":"config reload refused: the running registry is kept"`)
	if log := st.logText("broker"); !strings.Contains(log, "(added-sp): redirect_uris") {
		t.Fatalf("the refusal does not say why:\n%s", tail(log, 5))
	}
	if err := opsLogin(st.Broker, added, nil); err != nil {
		t.Fatalf("after a refused reload, the SP added before: %v", err)
	}

	// A setting only a restart applies.
	editConfig(t, cfgPath, func(s string) string {
		s = strings.Replace(s, `redirect_uris: ["not a url"]`, `redirect_uris: ["`+added.RedirectURI+`"]`, 1)
		return strings.Replace(s, "  leeway: 10s\n", "  leeway: 20s\n", 1)
	})
	hup(`need a restart`)
	if log := st.logText("broker"); !strings.Contains(log, `"fields":["broker.leeway"]`) {
		t.Fatalf("the restart-needing field is not named:\n%s", tail(log, 5))
	}
}
