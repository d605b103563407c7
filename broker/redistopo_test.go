package broker_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/internal/testredis"
)

// stepError is a login step that did not answer as a healthy broker does.
type stepError struct {
	step   string
	status int
	code   string // the S-code or OAuth error shown, if any
	retry  string // Retry-After
	at     time.Time
}

func (e *stepError) Error() string {
	return fmt.Sprintf("%s: %d %s (Retry-After %q)", e.step, e.status, e.code, e.retry)
}

// documented reports whether the failure is one the broker promises for a
// store outage: 503 with Retry-After, S190005 on pages and
// temporarily_unavailable on the token and userinfo endpoints; or, when
// the code cannot be stored at the last step, the SP's redirect_uri with
// error=temporarily_unavailable (RFC 6749 §4.1.2.1), which the SP shows.
func (e *stepError) documented() bool {
	if e.step == "consent" && e.status == http.StatusSeeOther && e.code == "temporarily_unavailable" {
		return true
	}
	return e.status == http.StatusServiceUnavailable && e.retry != "" &&
		(e.code == "S190005" || e.code == "temporarily_unavailable")
}

// lostWrite reports whether the failure is what a write lost with the old
// master looks like (replication is asynchronous): a clear "session
// expired" page (S190001), or a code or token the new master never got
// (invalid_grant at the token endpoint, invalid_token at userinfo), which
// the SP answers by starting a new login.
func (e *stepError) lostWrite() bool {
	switch {
	case e.status == http.StatusBadRequest:
		return e.code == "S190001" || e.step == "token" && e.code == "invalid_grant"
	case e.status == http.StatusUnauthorized:
		return e.step == "userinfo" && e.code == "invalid_token"
	}
	return false
}

var codeRE = regexp.MustCompile(`S\d{6}|temporarily_unavailable|invalid_grant|invalid_token`)

// login runs one complete login (authorize, chooser, IdP, callback,
// consent, token, userinfo) without calling t.Fatal, so a caller can count
// failures. A nil error means the citizen reached the SP and the SP got
// the claims.
func login(s *teststack.Stack) (idToken string, err error) {
	c := teststack.NewBrowser()
	var resp *http.Response
	var body string
	do := func(step, method, u string, form url.Values, want int) error {
		var rd io.Reader
		if form != nil {
			rd = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, u, rd)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		r, err := c.Do(req)
		if err != nil {
			return &stepError{step: step, status: -1, code: err.Error(), at: time.Now()}
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		resp, body = r, string(b)
		if r.StatusCode != want {
			return &stepError{step: step, status: r.StatusCode, code: codeRE.FindString(body), retry: r.Header.Get("Retry-After"), at: time.Now()}
		}
		return nil
	}
	field := func(re *regexp.Regexp) string {
		if m := re.FindStringSubmatch(body); m != nil {
			return m[1]
		}
		return ""
	}
	if err := do("authorize", "GET", s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode(), nil, 303); err != nil {
		return "", err
	}
	if err := do("chooser", "GET", s.BrokerURL+"/authorize/choose", nil, 200); err != nil {
		return "", err
	}
	if err := do("choose", "POST", s.BrokerURL+"/authorize/choose", url.Values{"csrf": {field(teststack.CSRFRE)}, "idp": {"impots"}}, 303); err != nil {
		return "", err
	}
	idpAuth := resp.Header.Get("Location")
	if err := do("idp page", "GET", idpAuth, nil, 200); err != nil {
		return "", err
	}
	if err := do("idp login", "POST", strings.Split(idpAuth, "?")[0], url.Values{"tx": {field(teststack.TxRE)}, "identity": {"angela-dubois"}, "action": {"login"}}, 303); err != nil {
		return "", err
	}
	if err := do("callback", "GET", resp.Header.Get("Location"), nil, 303); err != nil {
		return "", err
	}
	if err := do("consent page", "GET", teststack.Abs(s.BrokerURL, resp.Header.Get("Location")), nil, 200); err != nil {
		return "", err
	}
	if err := do("consent", "POST", s.BrokerURL+"/authorize/consent", url.Values{"csrf": {field(teststack.CSRFRE)}}, 303); err != nil {
		return "", err
	}
	final, _ := url.Parse(resp.Header.Get("Location"))
	code := final.Query().Get("code")
	if e := final.Query().Get("error"); code == "" && e == "temporarily_unavailable" && strings.HasPrefix(final.String(), teststack.SPRedirect) {
		return "", &stepError{step: "consent", status: resp.StatusCode, code: e, at: time.Now()}
	}
	if code == "" {
		return "", &stepError{step: "consent", status: resp.StatusCode, code: "no code in " + final.String(), at: time.Now()}
	}
	req, _ := http.NewRequest("POST", s.BrokerURL+"/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(teststack.SPID, teststack.SPSecret)
	if err := doReq(http.DefaultClient, req, "token", &resp, &body); err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	_ = json.Unmarshal([]byte(body), &tok)
	req, _ = http.NewRequest("GET", s.BrokerURL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if err := doReq(http.DefaultClient, req, "userinfo", &resp, &body); err != nil {
		return "", err
	}
	if !strings.Contains(body, `"sub"`) {
		return "", &stepError{step: "userinfo", status: resp.StatusCode, code: "no sub", at: time.Now()}
	}
	return tok.IDToken, nil
}

func doReq(c *http.Client, req *http.Request, step string, resp **http.Response, body *string) error {
	r, err := c.Do(req)
	if err != nil {
		return &stepError{step: step, status: -1, code: err.Error(), at: time.Now()}
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	*resp, *body = r, string(b)
	if r.StatusCode != http.StatusOK {
		code := codeRE.FindString(*body + r.Header.Get("WWW-Authenticate"))
		return &stepError{step: step, status: r.StatusCode, code: code, retry: r.Header.Get("Retry-After"), at: time.Now()}
	}
	return nil
}

// logout ends the session of idToken at the broker (RP-initiated, which
// also logs out at the IdP) and checks the citizen lands on the SP's page.
func logout(t *testing.T, s *teststack.Stack, idToken string) {
	t.Helper()
	next := s.BrokerURL + "/session/end?" + url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://sp.example/bye"}, "state": {"bye"}}.Encode()
	for range 6 {
		if strings.HasPrefix(next, "https://sp.example/bye") {
			return
		}
		resp, body := teststack.Get(t, s.Browser, next)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout at %s: %d\n%s", next, resp.StatusCode, body)
		}
		next = teststack.Abs(s.BrokerURL, resp.Header.Get("Location"))
	}
	t.Fatalf("logout did not reach the SP (at %s)", next)
}

// TestClusterLogins runs logins and logouts through the broker on a
// three-master Redis Cluster. Any command spanning slots would fail with
// CROSSSLOT and so fail a step. The keys a step reads or writes together
// must share a slot: an access token's record and its revocation marker
// (read in one round trip by userinfo), and the session's keys.
func TestClusterLogins(t *testing.T) {
	t.Parallel()
	r := testredis.StartCluster(t)
	s := teststack.New(t, teststack.RedisAddrs(r.Addrs()...))
	for i := range 3 {
		s.Browser = teststack.NewBrowser()
		u := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois")
		status, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
		if status != http.StatusOK {
			t.Fatalf("login %d: token: %d %v", i, status, out)
		}
		at := out["access_token"].(string)
		if st := s.UserinfoStatus(t, "Bearer "+at); st != http.StatusOK {
			t.Fatalf("login %d: userinfo: %d", i, st)
		}
		logout(t, s, out["id_token"].(string))
		if st := s.UserinfoStatus(t, "Bearer "+at); st != http.StatusUnauthorized {
			t.Fatalf("login %d: userinfo after logout: %d, want 401", i, st)
		}

		// The token's record and its revocation marker, both present
		// now, sit in one slot.
		_, tag, _ := strings.Cut(at, ".")
		var tokenKeys, revoked []string
		for _, k := range r.Keys() {
			switch {
			case strings.Contains(k, "{"+tag+"}at:"):
				tokenKeys = append(tokenKeys, k)
			case strings.Contains(k, "{"+tag+"}revoked"):
				revoked = append(revoked, k)
			}
		}
		if len(tokenKeys) != 1 || len(revoked) != 1 {
			t.Fatalf("login %d: token keys %q, revocation markers %q; want one of each", i, tokenKeys, revoked)
		}
		if a, b := r.KeySlot(tokenKeys[0]), r.KeySlot(revoked[0]); a != b {
			t.Errorf("login %d: token record in slot %d, its revocation marker in slot %d", i, a, b)
		}
	}

	// The session keys group by their hash tag: every key of one tag in
	// one slot, and the logins spread over more than one node (else the
	// test proves nothing about routing).
	slots := map[string]map[int64]bool{}
	var sessions int
	for _, k := range r.Keys() {
		if strings.HasSuffix(k, "}:sess") {
			sessions++
		}
		open, end := strings.IndexByte(k, '{'), strings.IndexByte(k, '}')
		if open < 0 || end < open {
			continue
		}
		tag := k[open+1 : end]
		if slots[tag] == nil {
			slots[tag] = map[int64]bool{}
		}
		slots[tag][r.KeySlot(k)] = true
	}
	if sessions == 0 {
		t.Fatal("no session key in the cluster")
	}
	for tag, s := range slots {
		if len(s) != 1 {
			t.Errorf("keys tagged {%s} in %d slots", tag, len(s))
		}
	}
	if n := r.NodesWithKeys(); n < 2 {
		t.Errorf("keys on %d node(s) only; want the logins spread over the cluster", n)
	}
}

// loginRun drives logins one after another, 20 ms apart, until stop
// closes, and records the outcome of each. The pace is kept modest on
// purpose: a sentinel whose timer is starved of CPU for 2 s enters TILT
// mode and refuses to fail over for 30 s, which on a shared 2-core CI
// machine a tight loop of logins provokes.
type loginRun struct {
	mu       sync.Mutex
	ok       []time.Time // start of each successful login
	failures []*stepError
	starts   map[*stepError]time.Time
	wg       sync.WaitGroup
}

func runLogins(t *testing.T, s *teststack.Stack, stop <-chan struct{}) *loginRun {
	run := &loginRun{starts: map[*stepError]time.Time{}}
	for range 1 {
		run.wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				_, err := login(s)
				run.mu.Lock()
				if err == nil {
					run.ok = append(run.ok, start)
				} else if se, ok := err.(*stepError); ok {
					run.failures = append(run.failures, se)
					run.starts[se] = start
				} else {
					t.Errorf("login: %v", err)
				}
				run.mu.Unlock()
				if err != nil {
					// A citizen reads the page before trying again.
					time.Sleep(200 * time.Millisecond)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return run
}

// clientCatchUp is how long after the sentinels agree on a new master the
// broker's go-redis client may still use the old one: measured up to 3.5 s
// (writes answered READONLY by the demoted master, or refused by the dead
// one, until the client switches). Logins starting later must succeed.
// 10 s leaves a loaded CI machine room; docs/operations.md gives the
// figure measured.
const clientCatchUp = 10 * time.Second

// sentinelFault runs logins through the sentinels, applies fault (which
// returns once the sentinels agree on a new master), and checks the logins.
func sentinelFault(t *testing.T, what string, fault func(r *testredis.Sentinel) string) {
	r := testredis.StartSentinel(t)
	s := teststack.New(t, teststack.RedisSentinel(r.Addrs(), r.MasterName()))
	for range 3 {
		if _, err := login(s); err != nil {
			t.Fatalf("login before the %s: %v", what, err)
		}
	}
	stop := make(chan struct{})
	run := runLogins(t, s, stop)
	time.Sleep(time.Second)
	faultAt := time.Now()
	old := fault(r)
	now := r.WaitNewMaster(old)
	doneAt := time.Now()
	t.Logf("%s: master %s → %s, sentinels agreed after %v", what, old, now, doneAt.Sub(faultAt).Round(time.Millisecond))
	// Keep logging in for a while after the new master is known.
	time.Sleep(clientCatchUp + 3*time.Second)
	close(stop)
	run.wg.Wait()

	var firstFail, lastFail time.Time
	var lost int
	for _, f := range run.failures {
		if f.lostWrite() {
			lost++
		} else if !f.documented() {
			t.Errorf("%s: a login failed with an undocumented answer: %v", what, f)
		}
		if f.at.Before(faultAt) {
			t.Errorf("%s: a login failed before the fault: %v", what, f)
		}
		if start := run.starts[f]; start.After(doneAt.Add(clientCatchUp)) {
			t.Errorf("%s: a login started %v after the new master was known failed: %v", what, start.Sub(doneAt).Round(time.Millisecond), f)
		} else if start.After(doneAt) {
			t.Logf("%s: a login started %v after the sentinels agreed still failed (go-redis had not switched yet): %v", what, start.Sub(doneAt).Round(time.Millisecond), f)
		}
		if firstFail.IsZero() || f.at.Before(firstFail) {
			firstFail = f.at
		}
		if f.at.After(lastFail) {
			lastFail = f.at
		}
	}
	var after int
	for _, st := range run.ok {
		if st.After(doneAt) {
			after++
		}
	}
	if after == 0 {
		t.Errorf("%s: no login succeeded after the new master was known", what)
	}
	if r.Tilted() {
		t.Logf("%s: a sentinel entered TILT mode (its timer was starved of CPU for over 2 s), which delays failover by up to 30 s: the figures below are inflated", what)
	}
	window := time.Duration(0)
	if !firstFail.IsZero() {
		window = lastFail.Sub(firstFail)
	}
	byStep := map[string]int{}
	for _, f := range run.failures {
		byStep[fmt.Sprintf("%s %d %s", f.step, f.status, f.code)]++
	}
	t.Logf("%s: %d logins ok (%d started after the new master was known), %d failed (%d of them by a write lost with the old master); failover window (first to last failed step) %v; sentinels agreed %v after the fault; failures: %v",
		what, len(run.ok), after, len(run.failures), lost, window.Round(time.Millisecond), doneAt.Sub(faultAt).Round(time.Millisecond), byStep)
}

// TestSentinelFailoverLogins forces a failover (SENTINEL FAILOVER, as
// before maintenance) during a run of logins.
//
// The two Sentinel tests do not run in parallel, for the CPU (see loginRun).
func TestSentinelFailoverLogins(t *testing.T) {
	sentinelFault(t, "SENTINEL FAILOVER", (*testredis.Sentinel).Failover)
}

// TestSentinelMasterKilledLogins kills the master (SIGKILL) during a run
// of logins: the sentinels promote the replica after down-after-milliseconds.
func TestSentinelMasterKilledLogins(t *testing.T) {
	sentinelFault(t, "master killed", (*testredis.Sentinel).KillMaster)
}

// TestTLSLogins runs a login over TLS with a private CA (redis.tls_ca_file)
// as an ACL user.
func TestTLSLogins(t *testing.T) {
	t.Parallel()
	r := testredis.StartTLS(t)
	r.AddUser("sesame", "acl-pw-8d21")
	s := teststack.New(t, teststack.RedisTLS(r.URL(), r.CAFile(), "sesame", "acl-pw-8d21"))
	if _, err := login(s); err != nil {
		t.Fatalf("login over TLS: %v", err)
	}
}
