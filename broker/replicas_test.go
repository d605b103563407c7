package broker_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/keys"
	"github.com/sesame-id/sesame/internal/testredis"
)

// replicas starts a stack on Redis with shared signing keys, plus n more
// broker replicas of the same config: what runs behind a load balancer
// with no sticky sessions.
func replicas(t *testing.T, n int, opts ...teststack.Option) (*teststack.Stack, []string) {
	t.Helper()
	r := testredis.Start(t)
	set, err := keys.Generate(jose.ES256, jose.RS256)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(set.PrivateJWKS())
	keyFile := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(keyFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	s := teststack.New(t, append([]teststack.Option{func(c *config.Config) {
		c.Broker.Redis.URL = r.URL()
		c.Broker.Platforms[0].SigningKeys = []string{keyFile}
	}}, opts...)...)
	urls := []string{s.BrokerURL}
	for range n {
		b, err := broker.New(s.Config.Broker, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		srv := httptest.NewServer(b.Platforms[0])
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	return s, urls
}

// A browser moves from replica to replica at every step, as with a load
// balancer without sticky sessions: authorize on A, chooser on B, callback
// on C, token on D, userinfo on A.
func TestReplicasNoStickySessions(t *testing.T) {
	s, urls := replicas(t, 3)
	on := func(i int, u string) string { return strings.Replace(u, s.BrokerURL, urls[i%len(urls)], 1) }

	resp, _ := teststack.Get(t, s.Browser, urls[0]+"/authorize?"+teststack.AuthParams().Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize on A: %d", resp.StatusCode)
	}
	// Cookies are per host in the jar; a load balancer shows one host, so
	// carry the session cookie by hand.
	cookie := resp.Cookies()[0]
	step := func(method, u string, form url.Values) *http.Response {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, u, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.AddCookie(cookie)
		resp, err := s.Browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.Cookies() {
			if c.Name == cookie.Name {
				cookie = c
			}
		}
		return resp
	}
	resp = step(http.MethodGet, urls[1]+"/authorize/choose", nil)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp = step(http.MethodPost, urls[1]+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, string(page))}, "idp": {"impots"}})
	idpAuth := resp.Header.Get("Location")
	_, idpPage := teststack.Get(t, s.Browser, idpAuth)
	resp, _ = teststack.Post(t, s.Browser, strings.Split(idpAuth, "?")[0], url.Values{"tx": {teststack.Field(t, teststack.TxRE, idpPage)}, "identity": {"angela-dubois"}, "action": {"login"}})
	resp = step(http.MethodGet, on(2, resp.Header.Get("Location")), nil)
	if resp.Header.Get("Location") != "/authorize/consent" {
		t.Fatalf("callback on C: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = step(http.MethodGet, urls[3]+"/authorize/consent", nil)
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	resp = step(http.MethodPost, urls[3]+"/authorize/consent", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, string(page))}})
	final, _ := url.Parse(resp.Header.Get("Location"))
	if final.Query().Get("code") == "" || final.Query().Get("iss") != s.BrokerURL {
		t.Fatalf("code from D: %s", final)
	}

	req, _ := http.NewRequest(http.MethodPost, urls[3]+"/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {final.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect},
	}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(teststack.SPID, teststack.SPSecret)
	tr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	_ = json.NewDecoder(tr.Body).Decode(&out)
	tr.Body.Close()
	if tr.StatusCode != http.StatusOK {
		t.Fatalf("token on D: %d %v", tr.StatusCode, out)
	}
	// Every replica signs with the shared keys and serves the same JWKS.
	_, jwksA := teststack.Get(t, http.DefaultClient, urls[0]+"/jwks")
	_, jwksD := teststack.Get(t, http.DefaultClient, urls[3]+"/jwks")
	if jwksA != jwksD {
		t.Fatal("replicas publish different JWKS")
	}
	ui, _ := http.NewRequest(http.MethodGet, urls[0]+"/userinfo", nil)
	ui.Header.Set("Authorization", "Bearer "+out["access_token"].(string))
	uresp, err := http.DefaultClient.Do(ui)
	if err != nil {
		t.Fatal(err)
	}
	uresp.Body.Close()
	if uresp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo on A: %d", uresp.StatusCode)
	}
}

// The same code POSTed 100 times in parallel across two replicas gives
// exactly one 200: the take-once is atomic in Redis, not per process.
func TestReplicasCodeRace(t *testing.T) {
	s, urls := replicas(t, 1)
	code := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois").Query().Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect}}.Encode()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, urls[i%2]+"/token", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(teststack.SPID, teststack.SPSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[http.StatusOK] != 1 || statuses[http.StatusBadRequest] != 99 {
		t.Fatalf("statuses %v, want exactly one 200 and 99 invalid_grant", statuses)
	}
}

// A callback replayed in parallel on two replicas: exactly one proceeds.
func TestReplicasCallbackRace(t *testing.T) {
	s, urls := replicas(t, 1)
	teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	_, page := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
	resp, _ := teststack.Post(t, s.Browser, s.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"impots"}})
	idpAuth := resp.Header.Get("Location")
	cookie := s.SessionCookie(t)
	_, idpPage := teststack.Get(t, s.Browser, idpAuth)
	resp, _ = teststack.Post(t, s.Browser, strings.Split(idpAuth, "?")[0], url.Values{"tx": {teststack.Field(t, teststack.TxRE, idpPage)}, "identity": {"angela-dubois"}, "action": {"login"}})
	callback := resp.Header.Get("Location")

	var mu sync.Mutex
	proceeded := 0
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, strings.Replace(callback, s.BrokerURL, urls[i%2], 1), nil)
			req.AddCookie(cookie)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Errorf("callback replay: %d", resp.StatusCode)
			}
			if resp.Header.Get("Location") == "/authorize/consent" {
				mu.Lock()
				proceeded++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if proceeded != 1 {
		t.Fatalf("%d parallel callbacks proceeded, want exactly 1", proceeded)
	}
}
