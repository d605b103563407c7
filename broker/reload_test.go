package broker_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeConfig writes c to path as YAML, as an operator edits the file.
func writeConfig(t *testing.T, path string, c *config.Config) {
	t.Helper()
	raw, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// cloneConfig deep-copies c through YAML, so that an edit of the copy
// never reaches the running broker's values.
func cloneConfig(t *testing.T, c *config.Config) *config.Config {
	t.Helper()
	raw, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	out, err := config.Parse("clone.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func spOf(c *config.Config, id string) *config.SP {
	pl := &c.Broker.Platforms[0]
	for i := range pl.ServiceProviders {
		if pl.ServiceProviders[i].ClientID == id {
			return &pl.ServiceProviders[i]
		}
	}
	return nil
}

func idpOf(c *config.Config, id string) *config.IdP {
	for i := range c.Broker.IdentityProviders {
		if c.Broker.IdentityProviders[i].ID == id {
			return &c.Broker.IdentityProviders[i]
		}
	}
	return nil
}

// paramsFor is an authorization request of another SP of the stack.
func paramsFor(clientID, redirectURI string) url.Values {
	q := teststack.AuthParams()
	q.Set("client_id", clientID)
	q.Set("redirect_uri", redirectURI)
	return q
}

const (
	sp2OldURI = "https://sp.example/sp2/cb"
	sp2NewURI = "https://sp.example/sp2/new-cb"
	sp3URI    = "https://sp.example/sp3/cb"
)

// TestReloadRegistry changes the config file of a running broker under
// concurrent logins and reloads it, as SIGHUP does: an SP added, an SP's
// redirect_uri changed, an IdP switched off. The logins under way never
// fail; the new SP logs in; the changed SP's old redirect_uri is refused,
// its new one works, and a login of it already under way gets no code
// to the removed URI; the IdP is greyed out. A file that fails
// validation changes nothing and the log says why; a change that needs
// a restart is named and not applied.
func TestReloadRegistry(t *testing.T) {
	s := teststack.New(t, withSP("sp2", func(sp *config.SP) { sp.RedirectURIs = []string{sp2OldURI} }))
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	rl := broker.NewReloader(s.Broker, s.Config, log, nil)
	path := filepath.Join(t.TempDir(), "sesame.yaml")

	// The file as it runs (A), and as the operator edits it (B).
	a := cloneConfig(t, s.Config)
	b := cloneConfig(t, s.Config)
	spOf(b, "sp2").RedirectURIs = []string{sp2NewURI}
	sp3 := *spOf(b, "sp")
	sp3.ClientID, sp3.Name, sp3.RedirectURIs = "sp3", "Service 3", []string{sp3URI}
	b.Broker.Platforms[0].ServiceProviders = append(b.Broker.Platforms[0].ServiceProviders, sp3)
	off := false
	idpOf(b, "laposte").Active = &off

	// A login of sp2 is under way at the IdP when the file changes.
	inflight := s.WithBrowser()
	teststack.Get(t, inflight.Browser, s.BrokerURL+"/authorize?"+paramsFor("sp2", sp2OldURI).Encode())
	inflightBack := inflight.IdPLogin(t, inflight.Choose(t, "impots"), "angela-dubois", nil)

	// Logins of the unchanged SP run throughout, four at a time, while
	// the file flips between A and B and an invalid file comes and goes.
	stop := make(chan struct{})
	var mu sync.Mutex
	var ok int
	var failed []error
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := login(s)
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
	invalid := cloneConfig(t, b)
	spOf(invalid, "sp3").RedirectURIs = []string{"not a url"}
	reloads := 0
	var rep *broker.ReloadReport
	for i := range 20 {
		cfg := a
		if i%2 == 1 {
			cfg = b
		}
		writeConfig(t, path, cfg)
		if _, err := rl.ReloadFile(path); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		writeConfig(t, path, invalid)
		if _, err := rl.ReloadFile(path); err == nil {
			t.Fatal("an invalid file was applied")
		}
		reloads += 2
		time.Sleep(50 * time.Millisecond)
	}
	// B is what runs now (the last valid file).
	close(stop)
	wg.Wait()
	t.Logf("%d reloads (half of them refused) during %d concurrent logins: %d failed", reloads, ok+len(failed), len(failed))
	for _, err := range failed {
		t.Errorf("a login failed during the reloads: %v", err)
	}
	if ok < 10 {
		t.Fatalf("only %d logins ran during the reloads; the test proves nothing", ok)
	}
	if !strings.Contains(logs.String(), "config reload refused") || !strings.Contains(logs.String(), "(sp3): redirect_uris") {
		t.Fatalf("the refused reload does not say why in the log:\n%s", logs.String())
	}

	// The new SP logs in, and its code is redeemed.
	u := s.WithBrowser().Login(t, paramsFor("sp3", sp3URI), "impots", "angela-dubois")
	if !strings.HasPrefix(u.String(), sp3URI) || u.Query().Get("code") == "" {
		t.Fatalf("sp3 login ended at %s", u)
	}
	req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/token", strings.NewReader(url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {sp3URI}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("sp3", teststack.SPSecret)
	tr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tr.Body.Close()
	if tr.StatusCode != http.StatusOK {
		t.Fatalf("sp3 token: %d", tr.StatusCode)
	}

	// sp2: the old redirect_uri is refused, the new one works.
	resp, body := teststack.Get(t, teststack.NewBrowser(), s.BrokerURL+"/authorize?"+paramsFor("sp2", sp2OldURI).Encode())
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "S030001") {
		t.Fatalf("sp2's removed redirect_uri: %d, want 400 S030001", resp.StatusCode)
	}
	if u := s.WithBrowser().Login(t, paramsFor("sp2", sp2NewURI), "impots", "angela-dubois"); !strings.HasPrefix(u.String(), sp2NewURI) {
		t.Fatalf("sp2's new redirect_uri: login ended at %s", u)
	}
	// The sp2 login under way gets no code sent to the removed URI: a
	// clear page instead, with nothing sent.
	resp, _ = teststack.Get(t, inflight.Browser, inflightBack)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/authorize/consent" {
		t.Fatalf("in-flight sp2 callback: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := teststack.Get(t, inflight.Browser, s.BrokerURL+"/authorize/consent")
	resp, body = teststack.Post(t, inflight.Browser, s.BrokerURL+"/authorize/consent", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}})
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, sp2OldURI) || resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "S030001") {
		t.Fatalf("in-flight sp2 login after its redirect_uri was removed: %d to %q, want 400 S030001 and no code", resp.StatusCode, loc)
	}

	// laposte is greyed out and cannot be chosen; impots still can.
	c := s.WithBrowser()
	teststack.Get(t, c.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	_, page = teststack.Get(t, c.Browser, s.BrokerURL+"/authorize/choose")
	if !strings.Contains(page, `id="idp-laposte" disabled`) || strings.Contains(page, `id="idp-impots" disabled`) {
		t.Fatal("after the reload, laposte is not greyed out, or impots is")
	}
	resp, _ = teststack.Post(t, c.Browser, s.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"laposte"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("choosing the switched-off laposte: %d, want 400", resp.StatusCode)
	}

	// A change that needs a restart is named, not applied; the registry
	// change in the same file is applied.
	r := cloneConfig(t, b)
	r.Broker.Platforms[0].Listen = "127.0.0.1:1"
	r.Broker.Redis.Timeout = config.Duration(time.Second)
	r.Broker.Platforms[0].ServiceProviders = slices.DeleteFunc(r.Broker.Platforms[0].ServiceProviders, func(sp config.SP) bool { return sp.ClientID == "sp3" })
	writeConfig(t, path, r)
	rep, err = rl.ReloadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rep.Restart, "broker.platforms[std].listen") || !slices.Contains(rep.Restart, "broker.redis") {
		t.Fatalf("restart-needing changes reported: %v", rep.Restart)
	}
	if !slices.Contains(rep.Changes, "std: SP sp3 removed") {
		t.Fatalf("changes reported: %v", rep.Changes)
	}
	if !strings.Contains(logs.String(), "need a restart") {
		t.Fatal("the log does not say a restart is needed")
	}
	if resp, _ := teststack.Get(t, teststack.NewBrowser(), s.BrokerURL+"/authorize?"+paramsFor("sp3", sp3URI).Encode()); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("sp3 after its removal: %d, want 400", resp.StatusCode)
	}
	if u := s.WithBrowser().Login(t, teststack.AuthParams(), "impots", "angela-dubois"); u.Query().Get("code") == "" {
		t.Fatal("the listener stopped working after a reload that asked to move it")
	}
}

// A reload reports what it changed, and a file with a YAML error is
// refused as it stands.
func TestReloadReportAndBadFile(t *testing.T) {
	s := teststack.New(t, withSP("sp2", func(sp *config.SP) { sp.RedirectURIs = []string{sp2OldURI} }))
	var logs syncBuffer
	rl := broker.NewReloader(s.Broker, s.Config, slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	path := filepath.Join(t.TempDir(), "sesame.yaml")

	b := cloneConfig(t, s.Config)
	spOf(b, "sp2").RedirectURIs = []string{sp2NewURI}
	off := false
	idpOf(b, "laposte").Active = &off
	b.Broker.Platforms[0].ServiceProviders = slices.DeleteFunc(b.Broker.Platforms[0].ServiceProviders, func(sp config.SP) bool { return sp.ClientID == "sp" })
	writeConfig(t, path, b)
	rep, err := rl.ReloadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"std: SP sp2 changed", "std: SP sp removed", "std: IdP laposte changed"}
	if !slices.Equal(sortedCopy(rep.Changes), sortedCopy(want)) || len(rep.Restart) != 0 {
		t.Fatalf("report %+v, want changes %v and no restart", rep, want)
	}

	if err := os.WriteFile(path, []byte("broker: [unclosed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := rl.ReloadFile(path); err == nil {
		t.Fatal("a file that does not parse was applied")
	}
	if !strings.Contains(logs.String(), "config reload refused") {
		t.Fatalf("no refusal in the log:\n%s", logs.String())
	}
	// Still the last good registry: sp2 at its new URI.
	if u := s.WithBrowser().Login(t, paramsFor("sp2", sp2NewURI), "impots", "angela-dubois"); u.Query().Get("code") == "" {
		t.Fatal("the last good registry was lost")
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
