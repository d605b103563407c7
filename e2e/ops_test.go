package e2e

// Operations on the real binary: a SIGHUP reload of the registry under
// logins, and a replica killed behind a load balancer.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
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
// citizen pressing F5). before, when set, is called before each step by
// name (a citizen reading the page first, for as long as it blocks).
func opsLogin(base string, client spClient, retry func(*opsStepError) bool, before func(step string)) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var resp *http.Response
	var body string
	do := func(step, method, u string, form url.Values, want int) error {
		if before != nil {
			before(step)
		}
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
				err := opsLogin(st.Broker, st.Clients[demoSPID], nil, nil)
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

	if err := opsLogin(st.Broker, added, nil, nil); err != nil {
		t.Fatalf("the SP added at SIGHUP: %v", err)
	}
	if st := authorizeStatus(t, st.Broker, other.ID, other.RedirectURI); st != http.StatusBadRequest {
		t.Fatalf("the removed redirect_uri: %d, want 400", st)
	}
	other.RedirectURI = newOther
	if err := opsLogin(st.Broker, other, nil, nil); err != nil {
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
	if err := opsLogin(st.Broker, added, nil, nil); err != nil {
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

// startAs is stack.start with its own log name, for two processes of one
// subcommand.
func (s *stack) startAs(t *testing.T, name, sub, cfgPath string) *proc {
	t.Helper()
	logPath := filepath.Join(s.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sesameBin, sub, "-config", cfgPath)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = f, f
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("start sesame %s: %v", sub, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return p
}

// roundRobin is a load balancer in front of broker replicas, as a
// Kubernetes Service or a plain nginx upstream would be: each request
// goes to the next healthy replica; a replica leaves the rotation when
// its /readyz fails (checked every probeEvery) and comes back when it
// answers 200; a request that fails on a dead replica is not retried
// elsewhere (the client gets 502).
type roundRobin struct {
	backends []*url.URL
	healthy  []atomic.Bool
	next     atomic.Uint64
	proxies  []*httputil.ReverseProxy
	// removed is when each replica left the rotation (zero: never).
	mu      sync.Mutex
	removed []time.Time
}

// probeEvery is the balancer's health-check period.
const probeEvery = time.Second

func newRoundRobin(t *testing.T, backends ...string) *roundRobin {
	lb := &roundRobin{healthy: make([]atomic.Bool, len(backends)), removed: make([]time.Time, len(backends))}
	for i, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		lb.backends = append(lb.backends, u)
		p := httputil.NewSingleHostReverseProxy(u)
		// No kept-alive connections: a POST sent on one the replica is
		// closing at that instant gets a 502 that Go's transport does not
		// retry, a fault of this balancer, not of the broker.
		p.Transport = &http.Transport{DisableKeepAlives: true}
		p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "502 Bad Gateway (load balancer)", http.StatusBadGateway)
		}
		lb.proxies = append(lb.proxies, p)
		lb.healthy[i].Store(true)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		c := &http.Client{Timeout: 2 * time.Second}
		misses := make([]int, len(lb.backends))
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i, u := range lb.backends {
				resp, err := c.Get(u.String() + "/readyz")
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					resp.Body.Close()
				}
				// As real balancers do ("fall 2"), one slow or failed
				// probe of a loaded replica does not drop it; a refused
				// connection (the process is gone) does at once.
				if ok {
					misses[i] = 0
				} else if misses[i]++; misses[i] < 2 && !errors.Is(err, syscall.ECONNREFUSED) {
					continue
				}
				if lb.healthy[i].Swap(ok) && !ok {
					lb.mu.Lock()
					lb.removed[i] = time.Now()
					lb.mu.Unlock()
				}
			}
		}
	}()
	return lb
}

func (lb *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for range len(lb.backends) {
		i := int(lb.next.Add(1) % uint64(len(lb.backends)))
		if lb.healthy[i].Load() {
			lb.proxies[i].ServeHTTP(w, r)
			return
		}
	}
	http.Error(w, "503 no healthy replica (load balancer)", http.StatusServiceUnavailable)
}

// A broker replica is killed (SIGKILL) mid-login, behind a round-robin
// load balancer with a health check on /readyz: since every login's
// state is in Redis, the other replica finishes the logins under way.
// What citizens see is measured: with no retry, the steps sent to the
// dead replica before the balancer drops it get the balancer's 502; a
// citizen who reloads the page once goes on, on the live replica.
func TestE2EReplicaKilled(t *testing.T) {
	st := startStack(t, stackOptions{})
	single := st.procNamed(t, "broker")
	_ = single.cmd.Process.Signal(syscall.SIGTERM)
	<-single.done

	cfgPath := filepath.Join(st.dir, "sesame.yaml")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	stdPort, plusPort := portOf(t, st.Broker), portOf(t, st.Plus)
	// Replicas share their signing keys, as they must.
	keyFiles := map[string]string{}
	for name, algs := range map[string]string{"std": "ES256,RS256", "plus": "ES256"} {
		out, err := exec.Command(sesameBin, "keys", "signing", "-alg", algs).Output()
		if err != nil {
			t.Fatalf("sesame keys signing: %v", err)
		}
		keyFiles[name] = filepath.Join(st.dir, name+"-keys.json")
		if err := os.WriteFile(keyFiles[name], out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ports := freePorts(t, 4)
	var backends []string
	var replicas []*proc
	for i, name := range []string{"broker-a", "broker-b"} {
		cfg := strings.Replace(string(raw), fmt.Sprintf(`listen: "127.0.0.1:%s"`, stdPort),
			fmt.Sprintf(`listen: "127.0.0.1:%d"`+"\n      signing_keys: [%q]", ports[2*i], keyFiles["std"]), 1)
		cfg = strings.Replace(cfg, fmt.Sprintf(`listen: "127.0.0.1:%s"`, plusPort),
			fmt.Sprintf(`listen: "127.0.0.1:%d"`+"\n      signing_keys: [%q]", ports[2*i+1], keyFiles["plus"]), 1)
		path := filepath.Join(st.dir, name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		p := st.startAs(t, name, "broker", path)
		backend := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		if err := waitReady(p, backend+"/readyz"); err != nil {
			t.Fatal(err)
		}
		backends, replicas = append(backends, backend), append(replicas, p)
	}
	lb := newRoundRobin(t, backends...)
	ln, err := net.Listen("tcp", "127.0.0.1:"+stdPort)
	if err != nil {
		t.Fatalf("the load balancer cannot take the issuer's port: %v", err)
	}
	srv := &http.Server{Handler: lb}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	if err := opsLogin(st.Broker, st.Clients[demoSPID], nil, nil); err != nil {
		t.Fatalf("a login through the load balancer: %v", err)
	}

	// Citizens in the middle of a login when the replica dies, their
	// earlier steps served by either replica: ten stop at the IdP's page,
	// ten at the broker's information page, until after the kill.
	resume := make(chan struct{})
	paused := make(chan struct{}, 20)
	pausedErrs := make(chan error, 20)
	// A paused citizen whose next page is the balancer's "no healthy
	// replica" (for an instant: a loaded machine made the live one miss
	// two probes) reloads it once, as a person would: that request never
	// reached a broker. The broker's own answers are never retried.
	var pausedReloads atomic.Int32
	balancerRetry := func(e *opsStepError) bool {
		if e.status != http.StatusServiceUnavailable || e.code != "" {
			return false
		}
		if pausedReloads.Add(1) > 20 {
			return false
		}
		time.Sleep(1500 * time.Millisecond)
		return true
	}
	for i := range 20 {
		at := "idp login"
		if i%2 == 1 {
			at = "consent"
		}
		go func() {
			pausedErrs <- opsLogin(st.Broker, st.Clients[demoSPID], balancerRetry, func(step string) {
				if step == at {
					paused <- struct{}{}
					<-resume
				}
			})
		}()
	}
	for range 20 {
		<-paused
	}

	// Meanwhile four citizens log in one after the other; two of them,
	// shown an error, reload the page once after reading it (1.5 s).
	type outcome struct {
		start, end time.Time
		err        error
		retries    bool
	}
	var mu sync.Mutex
	var outcomes []outcome
	var reloads int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		withRetry := i%2 == 1
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var retry func(*opsStepError) bool
				if withRetry {
					retry = func(e *opsStepError) bool {
						if e.status != http.StatusBadGateway && e.status != -1 {
							return false
						}
						mu.Lock()
						reloads++
						mu.Unlock()
						time.Sleep(1500 * time.Millisecond)
						return true
					}
				}
				start := time.Now()
				err := opsLogin(st.Broker, st.Clients[demoSPID], retry, nil)
				mu.Lock()
				outcomes = append(outcomes, outcome{start: start, end: time.Now(), err: err, retries: withRetry})
				mu.Unlock()
				if err != nil {
					time.Sleep(200 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(3 * time.Second)
	killAt := time.Now()
	_ = replicas[1].cmd.Process.Kill()
	<-replicas[1].done
	time.Sleep(3 * time.Second)
	// The paused citizens go on: every one finishes, on the live replica.
	close(resume)
	var pausedFailed []error
	for range 20 {
		if err := <-pausedErrs; err != nil {
			pausedFailed = append(pausedFailed, err)
		}
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	lb.mu.Lock()
	removedAt := lb.removed[1]
	lb.mu.Unlock()
	if removedAt.IsZero() {
		t.Fatal("the balancer never dropped the dead replica")
	}
	for _, err := range pausedFailed {
		t.Errorf("a login under way at the kill did not finish on the live replica: %v", err)
	}
	if n := pausedReloads.Load(); n > 0 {
		t.Logf("paused citizens reloaded the balancer's error page %d time(s)", n)
	}

	var okBefore, okAcross, okAfter int
	failed := map[bool][]*opsStepError{}
	var firstFail, lastFail time.Time
	// late counts failures more than 2 s after the dead replica left the
	// rotation: the balancer's doing on a loaded machine, measured only.
	late := 0
	for _, o := range outcomes {
		if o.err == nil {
			switch {
			case o.end.Before(killAt):
				okBefore++
			case o.start.Before(killAt):
				okAcross++
			default:
				okAfter++
			}
			continue
		}
		se, ok := o.err.(*opsStepError)
		if !ok {
			t.Errorf("login: %v", o.err)
			continue
		}
		failed[o.retries] = append(failed[o.retries], se)
		if se.at.Before(killAt) {
			t.Errorf("a login failed before the kill: %v", se)
		}
		// The broker itself never fails with a 5xx: what fails is the
		// balancer's 502 (a request that met the dead replica, or one
		// cut mid-way) or its 503 (a loaded machine made the live
		// replica miss two probes); and a reload of a single-use step
		// whose first answer was lost ends on the clear session page.
		balancer := se.status == http.StatusBadGateway || se.status == -1 || (se.status == http.StatusServiceUnavailable && se.code == "")
		clearPage := o.retries && se.status == http.StatusBadRequest && (se.code == "S190001" || se.code == "S190002")
		if !balancer && !clearPage {
			t.Errorf("a login failed with an answer of the broker's own: %v", se)
		}
		if se.at.After(removedAt.Add(2 * time.Second)) {
			late++
		}
		if firstFail.IsZero() || se.at.Before(firstFail) {
			firstFail = se.at
		}
		if se.at.After(lastFail) {
			lastFail = se.at
		}
	}
	byStep := func(fs []*opsStepError) map[string]int {
		m := map[string]int{}
		for _, f := range fs {
			m[fmt.Sprintf("%s %d", f.step, f.status)]++
		}
		return m
	}
	t.Logf("replica killed; the balancer dropped it %v later (health check every %v)", removedAt.Sub(killAt).Round(time.Millisecond), probeEvery)
	t.Logf("20 logins paused at the IdP's or the information page across the kill: %d finished on the live replica", 20-len(pausedFailed))
	t.Logf("running logins: %d ok before the kill, %d ok across it, %d ok after", okBefore, okAcross, okAfter)
	t.Logf("citizens who do not reload: %d logins failed %v; citizens who reload a failed page once, 1.5 s later: %d failed %v (%d reloads)",
		len(failed[false]), byStep(failed[false]), len(failed[true]), byStep(failed[true]), reloads)
	if !firstFail.IsZero() {
		t.Logf("failures from %v to %v after the kill", firstFail.Sub(killAt).Round(time.Millisecond), lastFail.Sub(killAt).Round(time.Millisecond))
	}
	// How often a reload 1.5 s later still fails depends on the
	// balancer and the machine's load, not on the broker: measured.
	t.Logf("citizens who reloaded and still failed: %v; failures more than 2 s after the drop: %d", failed[true], late)
	if okAfter == 0 {
		t.Error("no login succeeded after the kill")
	}
}

// portOf is the port of a URL.
func portOf(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil || pu.Port() == "" {
		t.Fatalf("no port in %q", u)
	}
	return pu.Port()
}
