package broker_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/testredis"
)

// toConsent runs a login up to the information page and returns its CSRF
// token and the session cookie.
func toConsent(t *testing.T, s *teststack.Stack) (string, *http.Cookie) {
	t.Helper()
	teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	cb := s.IdPLogin(t, s.Choose(t, "impots"), "angela-dubois", nil)
	resp, _ := teststack.Get(t, s.Browser, teststack.Abs(s.BrokerURL, cb))
	if loc := resp.Header.Get("Location"); loc != "/authorize/consent" {
		t.Fatalf("callback went to %q", loc)
	}
	_, page := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/consent")
	return teststack.Field(t, teststack.CSRFRE, page), s.SessionCookie(t)
}

// parallelPosts sends n copies of one form with one cookie at once,
// spread over the replicas, and returns each answer's status and Location.
func parallelPosts(t *testing.T, n int, urls []string, path string, form url.Values, cookies ...*http.Cookie) ([]int, []string) {
	t.Helper()
	status, locs := make([]int, n), make([]string, n)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, urls[i%len(urls)]+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for _, c := range cookies {
				req.AddCookie(c)
			}
			start.Wait()
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			status[i], locs[i] = resp.StatusCode, resp.Header.Get("Location")
		})
	}
	start.Done()
	wg.Wait()
	return status, locs
}

// slowStore is a store a network away: every call waits first, as a
// Redis some milliseconds off does, which is what opens the window
// between a step's read and its write.
type slowStore struct {
	store.Store
	delay time.Duration
}

func (s slowStore) Get(ctx context.Context, k string) ([]byte, error) {
	time.Sleep(s.delay)
	return s.Store.Get(ctx, k)
}

func (s slowStore) Write(ctx context.Context, puts []store.Entry, deletes ...string) error {
	time.Sleep(s.delay)
	return s.Store.Write(ctx, puts, deletes...)
}

func (s slowStore) Swap(ctx context.Context, prev []byte, next store.Entry, puts []store.Entry, deletes ...string) (bool, error) {
	time.Sleep(s.delay)
	return s.Store.Swap(ctx, prev, next, puts, deletes...)
}

func slow(st store.Store) store.Store { return slowStore{st, 20 * time.Millisecond} }

// slowReplicas is replicas with n more brokers whose store is 20 ms away.
func slowReplicas(t *testing.T, n int) (*teststack.Stack, []string) {
	t.Helper()
	s, _ := replicas(t, 0)
	urls := []string{s.BrokerURL}
	for range n {
		b, err := broker.New(s.Config.Broker, slog.New(slog.NewTextHandler(io.Discard, nil)), broker.WithStoreWrapper(slow))
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

// Defect 1: parallel POSTs of one consent page (a double click, a replay
// across replicas) make exactly one code; every request is sent to it.
// The store is 20 ms away, as a real Redis may be.
func TestConsentSingleUse(t *testing.T) {
	run := func(t *testing.T, s *teststack.Stack, urls []string) {
		csrf, cookie := toConsent(t, s)
		status, locs := parallelPosts(t, 30, urls, "/authorize/consent", url.Values{"csrf": {csrf}}, cookie)
		codes := map[string]bool{}
		for i, loc := range locs {
			if status[i] >= 500 {
				t.Errorf("consent POST %d: %d", i, status[i])
			}
			if u, err := url.Parse(loc); err == nil && u.Query().Get("code") != "" {
				codes[u.Query().Get("code")] = true
			}
		}
		if len(codes) != 1 {
			t.Fatalf("30 parallel consent POSTs made %d codes, want exactly 1 (statuses %v)", len(codes), status)
		}
		for code := range codes {
			if st, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect}}, true); st != http.StatusOK {
				t.Fatalf("the one code does not redeem: %d %v", st, out)
			}
		}
	}
	t.Run("memory", func(t *testing.T) {
		s := teststack.NewWrapped(t, slow)
		run(t, s, []string{s.BrokerURL})
	})
	t.Run("redis-two-replicas", func(t *testing.T) {
		s, urls := slowReplicas(t, 2)
		run(t, s, urls[1:])
	})
}

// Defect 1, the choice: parallel POSTs of one chooser make one trip to the
// IdP (one state); every request is sent on that trip.
func TestChoiceSingleUse(t *testing.T) {
	run := func(t *testing.T, s *teststack.Stack, urls []string) {
		u, _ := url.Parse(s.BrokerURL)
		teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
		_, page := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
		form := url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"impots"}}
		status, locs := parallelPosts(t, 30, urls, "/authorize/choose", form, s.Browser.Jar.Cookies(u)...)
		states := map[string]bool{}
		for i, loc := range locs {
			if status[i] != http.StatusSeeOther {
				t.Errorf("choice POST %d: %d", i, status[i])
			}
			if l, err := url.Parse(loc); err == nil && l.Query().Get("state") != "" {
				states[l.Query().Get("state")] = true
			}
		}
		if len(states) != 1 {
			t.Fatalf("30 parallel choices made %d trips, want exactly 1", len(states))
		}
	}
	t.Run("memory", func(t *testing.T) {
		s := teststack.New(t)
		run(t, s, []string{s.BrokerURL})
	})
	t.Run("redis-two-replicas", func(t *testing.T) {
		s, urls := replicas(t, 1)
		run(t, s, urls)
	})
}

// fromAddr is a client whose connections leave from another loopback
// address, a stranger's source as the broker sees it.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}}
}

// Defect 2: a stranger who knows an SP's client_id cannot lock it out of
// /token. 1,000 wrong-secret requests from another address get 401, then
// 429 with the window's real Retry-After; the SP still redeems its codes,
// and even its own good credentials pass while failures for it are over
// their limit.
func TestTokenLimitsSpareTheClient(t *testing.T) {
	s := teststack.New(t, func(c *config.Config) {
		c.Broker.Platforms[0].RateLimits = config.RateLimits{TokenPerClient: 600, TokenFailuresPerIP: 100, TokenFailuresPerClient: 100}
	})
	stranger := fromAddr("127.0.0.2")
	wrong := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {teststack.SPRedirect}}
	var unauthorized, limited atomic.Int32
	var retry atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for range 125 {
				req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/token", strings.NewReader(wrong.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(teststack.SPID, "wrong-secret-"+strconv.Itoa(w))
				resp, err := stranger.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusUnauthorized:
					unauthorized.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
					n, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
					retry.Store(int64(n))
				default:
					t.Errorf("wrong secret: %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	if unauthorized.Load() != 100 || limited.Load() != 900 {
		t.Fatalf("1,000 wrong secrets: %d × 401 and %d × 429, want 100 and 900", unauthorized.Load(), limited.Load())
	}
	// The window began under a few seconds ago: Retry-After is what is
	// left of it, not a constant.
	if n := retry.Load(); n < 45 || n > 60 {
		t.Fatalf("Retry-After %d, want what is left of the 60 s window", n)
	}
	// The stranger's source is refused before authentication, even with
	// good credentials it might have stolen.
	req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/token", strings.NewReader(wrong.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(teststack.SPID, teststack.SPSecret)
	if resp, err := stranger.Do(req); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("blocked source: %v %v", resp, err)
	}

	// Failures for the client from a third address are now over its
	// limit too: they get 429, and the SP's own requests still pass.
	third := fromAddr("127.0.0.3")
	req, _ = http.NewRequest(http.MethodPost, s.BrokerURL+"/token", strings.NewReader(wrong.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(teststack.SPID, "another-wrong-secret")
	if resp, err := third.Do(req); err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("failures for the client over its limit: %v %v", resp, err)
	}
	for i := range 3 {
		u := s.WithBrowser().Login(t, teststack.AuthParams(), "impots", "angela-dubois")
		st, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
		if st != http.StatusOK {
			t.Fatalf("the SP's code %d after a stranger's 1,000 failures: %d %v", i+1, st, out)
		}
	}
}

// The client's own budget: over token_per_client its requests get 429
// with the window's Retry-After.
func TestTokenPerClientLimit(t *testing.T) {
	s := teststack.New(t, func(c *config.Config) {
		c.Broker.Platforms[0].RateLimits = config.RateLimits{TokenPerClient: 3}
	})
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"unknown"}, "redirect_uri": {teststack.SPRedirect}}
	for i := range 3 {
		if st, _ := s.Token(t, form, true); st != http.StatusBadRequest {
			t.Fatalf("request %d: %d, want invalid_grant", i+1, st)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(teststack.SPID, teststack.SPSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || n < 45 || n > 60 {
		t.Fatalf("over the client's limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// Defect 3: 20,000 authorization requests from one address store nothing
// (the request waits in a sealed cookie until the citizen chooses an IdP);
// with authorize_per_ip, the address is also cut off with 429.
func TestAuthorizeFloodStoresNothing(t *testing.T) {
	r := testredis.Start(t)
	opt, err := redis.ParseURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	s := teststack.New(t, func(c *config.Config) { c.Broker.Redis.URL = r.URL() })
	ctx := context.Background()
	before, err := rdb.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	target := s.BrokerURL + "/authorize?" + teststack.AuthParams().Encode()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range 8 {
		wg.Go(func() {
			for range 2500 {
				resp, err := client.Get(target)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusSeeOther {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	after, _ := rdb.DBSize(ctx).Result()
	if bad.Load() != 0 || after != before {
		t.Fatalf("20,000 GET /authorize: %d answers not 303; store grew from %d to %d keys, want no growth", bad.Load(), before, after)
	}

	limited := teststack.New(t, func(c *config.Config) {
		c.Broker.Redis.URL = r.URL()
		c.Broker.Platforms[0].RateLimits.AuthorizePerIP = 100
	})
	target = limited.BrokerURL + "/authorize?" + teststack.AuthParams().Encode()
	for i := range 100 {
		resp, err := client.Get(target)
		if err != nil || resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("authorize %d under the limit: %v %v", i+1, resp, err)
		}
		resp.Body.Close()
	}
	resp, body := teststack.Get(t, client, target)
	if n, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || n < 45 || n > 60 || !strings.Contains(body, "S190006") {
		t.Fatalf("authorize over the per-IP limit: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if grown, _ := rdb.DBSize(ctx).Result(); grown > after+1 {
		t.Fatalf("the limiter stored %d keys, want 1 counter", grown-after)
	}
}

// Defect 4: every answer is the documented page or JSON error, with the
// security headers: unknown paths, static misses, wrong methods and
// oversized headers included.
func TestEveryAnswerDocumented(t *testing.T) {
	s := teststack.New(t)
	big := strings.Repeat("a", 70<<10)
	cases := []struct {
		name, method, path string
		header             http.Header
		status             int
		code               string // page code, or JSON error code
		json               bool
		allow              string
	}{
		{"unknown path", http.MethodGet, "/nowhere", nil, 404, "S900404", false, ""},
		{"static miss", http.MethodGet, "/static/nothing.css", nil, 404, "S900404", false, ""},
		{"static wrong method", http.MethodPost, "/static/dsfr/dsfr.min.css", nil, 405, "S900405", false, ""},
		{"page wrong method", http.MethodDelete, "/authorize", nil, 405, "S900405", false, "GET, HEAD, POST"},
		{"api wrong method", http.MethodPut, "/token", nil, 405, "invalid_request", true, "POST"},
		{"discovery wrong method", http.MethodPost, "/.well-known/openid-configuration", nil, 405, "invalid_request", true, "GET, HEAD"},
		{"headers over 64 KiB", http.MethodGet, "/authorize", http.Header{"X-Big": {big}}, 431, "S900431", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, s.BrokerURL+c.path, nil)
			req.URL.Opaque = c.path // keep "..", as a hostile client sends it
			for k, v := range c.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			buf := new(strings.Builder)
			_, _ = io.Copy(buf, resp.Body)
			body := buf.String()
			ct := resp.Header.Get("Content-Type")
			if resp.StatusCode != c.status || !strings.Contains(body, c.code) {
				t.Fatalf("%s %s: %d %q, want %d with %s", c.method, c.path, resp.StatusCode, body[:min(len(body), 120)], c.status, c.code)
			}
			if (c.json && !strings.HasPrefix(ct, "application/json")) || (!c.json && !strings.HasPrefix(ct, "text/html")) {
				t.Errorf("Content-Type %q", ct)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("security headers missing: %v", resp.Header)
			}
			if c.allow != "" && resp.Header.Get("Allow") != c.allow {
				t.Errorf("Allow %q, want %q", resp.Header.Get("Allow"), c.allow)
			}
		})
	}
}

// Defect 6: logout revokes the session's access tokens at once.
func TestLogoutRevokesAccessTokens(t *testing.T) {
	bothStores(t, func(t *testing.T, opts ...teststack.Option) {
		s := teststack.New(t, opts...)
		u := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois")
		st, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
		if st != http.StatusOK {
			t.Fatalf("token: %d %v", st, out)
		}
		at := out["access_token"].(string)
		if got := s.UserinfoStatus(t, "Bearer "+at); got != http.StatusOK {
			t.Fatalf("userinfo before logout: %d", got)
		}
		end := url.Values{"id_token_hint": {out["id_token"].(string)}, "post_logout_redirect_uri": {"https://sp.example/bye"}}
		if resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/session/end?"+end.Encode()); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		if got := s.UserinfoStatus(t, "Bearer "+at); got != http.StatusUnauthorized {
			t.Fatalf("userinfo after logout: %d, want 401", got)
		}
	})
}

// Defect 6: a failed back-channel delivery is retried with backoff, the
// same token each time, and discovery says the broker sends them.
func TestBackchannelRetried(t *testing.T) {
	var calls atomic.Int32
	tokens := make(chan string, 8)
	sp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		tokens <- r.PostForm.Get("logout_token")
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer sp.Close()
	s := teststack.New(t, func(c *config.Config) {
		c.Broker.Platforms[0].ServiceProviders[0].BackchannelLogoutURI = sp.URL
	})
	_, disco := teststack.Get(t, http.DefaultClient, s.BrokerURL+"/.well-known/openid-configuration")
	if !strings.Contains(disco, `"backchannel_logout_supported":true`) || !strings.Contains(disco, `"backchannel_logout_session_supported":true`) {
		t.Fatal("discovery does not say that back-channel logout is sent")
	}
	u := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois")
	_, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
	end := url.Values{"id_token_hint": {out["id_token"].(string)}}
	teststack.Get(t, s.Browser, s.BrokerURL+"/session/end?"+end.Encode())
	var first string
	for i := range 3 {
		select {
		case tok := <-tokens:
			if i == 0 {
				first = tok
			} else if tok != first {
				t.Fatal("a retry sent another token")
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("delivery %d never came; the SP saw %d", i+1, calls.Load())
		}
	}
	time.Sleep(2 * time.Second)
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d deliveries, want 3 (two failures, one success, then none)", n)
	}
}

// Per-IP limits behind a proxy: X-Forwarded-For counts only when the
// peer is a trusted proxy, and then its right-most untrusted address, so
// a client prepending addresses cannot dodge its limit.
func TestTrustedProxies(t *testing.T) {
	get := func(t *testing.T, s *teststack.Stack, xff string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode(), nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	limit := func(c *config.Config) { c.Broker.Platforms[0].RateLimits.AuthorizePerIP = 2 }
	t.Run("untrusted peer", func(t *testing.T) {
		s := teststack.New(t, limit)
		got := []int{get(t, s, "1.1.1.1"), get(t, s, "2.2.2.2"), get(t, s, "3.3.3.3")}
		if got[2] != http.StatusTooManyRequests {
			t.Fatalf("X-Forwarded-For from an untrusted peer dodged the limit: %v", got)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		s := teststack.New(t, limit, func(c *config.Config) { c.Broker.TrustedProxies = []string{"127.0.0.1/32"} })
		for i, c := range []struct {
			xff  string
			want int
		}{
			{"1.1.1.1", 303}, {"1.1.1.1", 303}, {"1.1.1.1", 429},
			{"2.2.2.2", 303},
			{"9.9.9.9, 1.1.1.1", 429}, // the client's own prefix is not believed
			{"1.1.1.1, 2.2.2.2", 303},
			{"3.3.3.3, 127.0.0.1", 303}, // a trusted hop is skipped
		} {
			if got := get(t, s, c.xff); got != c.want {
				t.Errorf("request %d X-Forwarded-For %q: %d, want %d", i+1, c.xff, got, c.want)
			}
		}
	})
}

// Parallel confirmed logouts of one session, across replicas: the session
// ends, and each SP is told once.
func TestLogoutSingleUse(t *testing.T) {
	got := make(chan string, 64)
	sp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ParseForm() == nil {
			got <- r.PostForm.Get("logout_token")
		}
	}))
	defer sp.Close()
	s, urls := replicas(t, 1, func(c *config.Config) {
		c.Broker.Platforms[0].ServiceProviders[0].BackchannelLogoutURI = sp.URL
	})
	u := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois")
	st, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect}}, true)
	if st != http.StatusOK {
		t.Fatalf("token: %d", st)
	}
	form := url.Values{"id_token_hint": {out["id_token"].(string)}}
	status, _ := parallelPosts(t, 20, urls, "/session/end", form, s.SessionCookie(t))
	for i, st := range status {
		if st != http.StatusSeeOther && st != http.StatusOK {
			t.Errorf("logout %d: %d", i, st)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	if n := len(got); n != 1 {
		t.Fatalf("20 parallel logouts told the SP %d times, want once", n)
	}
	if ssoAlive(t, s) {
		t.Fatal("the session survived")
	}
}
