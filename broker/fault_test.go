package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/testredis"
)

// TestRedisDown walks the faults of security.md: Redis down before
// /authorize, killed between the IdP trip and the callback, and back again
// without a broker restart.
func TestRedisDown(t *testing.T) {
	r := testredis.Start(t)
	s := teststack.New(t, func(c *config.Config) {
		c.Broker.Redis.URL = r.URL()
		c.Broker.Redis.Timeout = config.Duration(200e6)
	})

	// Down before /authorize: the request needs no store until the
	// citizen chooses an IdP (it waits in a sealed cookie); the choice
	// then gets a clear 503 page with Retry-After, and readiness fails
	// while liveness holds.
	r.Kill()
	resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/authorize/choose" {
		t.Fatalf("authorize with Redis down: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page0 := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
	resp, body := teststack.Post(t, s.Browser, s.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page0)}, "idp": {"impots"}})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "S190005") {
		t.Fatalf("choice with Redis down: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with Redis down: %d", resp.StatusCode)
	}
	if resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz with Redis down: %d", resp.StatusCode)
	}
	// Token and userinfo say temporarily_unavailable, not 500.
	status, out := s.Token(t, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {teststack.SPRedirect}}, true)
	if status != http.StatusServiceUnavailable || out["error"] != "temporarily_unavailable" {
		t.Fatalf("token with Redis down: %d %v", status, out)
	}

	// Back up: logins work with no broker restart.
	r.Restart()
	waitReady(t, s)
	// Killed between the trip to the IdP and the callback: a clear
	// "session expired" page, no token call, no 500.
	resp, _ = teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize after restart: %d", resp.StatusCode)
	}
	_, page := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
	resp, _ = teststack.Post(t, s.Browser, s.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"impots"}})
	idpAuth := resp.Header.Get("Location")
	_, page = teststack.Get(t, s.Browser, idpAuth)
	resp, _ = teststack.Post(t, s.Browser, strings.Split(idpAuth, "?")[0], url.Values{"tx": {teststack.Field(t, teststack.TxRE, page)}, "identity": {"angela-dubois"}, "action": {"login"}})
	callback := resp.Header.Get("Location")
	r.Restart() // an empty Redis: the session and the trip are gone
	waitReady(t, s)
	resp, body = teststack.Get(t, s.Browser, callback)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "S190001") {
		t.Fatalf("callback after Redis lost the session: %d", resp.StatusCode)
	}

	// And a whole login works again.
	s.Browser = teststack.NewBrowser()
	if u := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois"); u.Query().Get("code") == "" {
		t.Fatal("no login after Redis came back")
	}
}

func waitReady(t *testing.T, s *teststack.Stack) {
	t.Helper()
	for range 50 {
		if resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/readyz"); resp.StatusCode == http.StatusOK {
			return
		}
		sleep()
	}
	t.Fatal("broker never became ready after Redis restarted")
}

func sleep() { <-time.After(100 * time.Millisecond) }

// At SIGTERM the broker drains: readiness fails while logins under way
// still complete, so a rolling restart drops nothing.
func TestDrain(t *testing.T) {
	s := teststack.New(t)
	if resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz before drain: %d", resp.StatusCode)
	}
	resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatal("authorize")
	}
	s.Platform.Drain()
	if resp, _ := teststack.Get(t, s.Browser, s.BrokerURL+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz while draining: %d", resp.StatusCode)
	}
	if u := s.Login(t, teststack.AuthParams(), "impots", "angela-dubois"); u.Query().Get("code") == "" {
		t.Fatal("a login under way failed while draining")
	}
}

// An IdP that keeps timing out is taken off the chooser (circuit breaker)
// while the other IdPs keep working; posting it anyway sends the citizen
// back to the chooser instead of to the dead IdP.
func TestIdPCircuitBreaker(t *testing.T) {
	s := teststack.New(t, teststack.IdPTimeout("impots", 200*time.Millisecond), func(c *config.Config) {
		for i := range c.Broker.IdentityProviders {
			if c.Broker.IdentityProviders[i].ID == "impots" {
				c.Broker.IdentityProviders[i].CircuitFailures = 2
				c.Broker.IdentityProviders[i].CircuitCooldown = config.Duration(time.Minute)
			}
		}
	})
	slow := url.Values{"scenario_token_delay": {"1s"}}
	for range 2 {
		b := s.WithBrowser()
		teststack.Get(t, b.Browser, b.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
		back := b.IdPLogin(t, b.Choose(t, "impots"), "angela-dubois", slow)
		resp, _ := teststack.Get(t, b.Browser, back)
		if resp.Header.Get("Location") != "/authorize/choose" {
			t.Fatalf("a timed-out token call: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	b := s.WithBrowser()
	teststack.Get(t, b.Browser, b.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	_, page := teststack.Get(t, b.Browser, b.BrokerURL+"/authorize/choose")
	if !strings.Contains(page, `id="idp-impots" disabled`) || !strings.Contains(page, "temporairement indisponible") {
		t.Fatal("the failing IdP is still offered")
	}
	if strings.Contains(page, `id="idp-laposte" disabled`) {
		t.Fatal("a healthy IdP was switched off too")
	}
	resp, _ := teststack.Post(t, b.Browser, b.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"impots"}})
	if loc := resp.Header.Get("Location"); loc != "/authorize/choose" {
		t.Fatalf("choosing the open-circuit IdP went to %q, want back to the chooser", loc)
	}
	if u := b.Login(t, teststack.AuthParams(), "laposte", "angela-dubois"); u.Query().Get("code") == "" {
		t.Fatal("another IdP stopped working")
	}
}

// Rate limits: token requests per client and trips to an IdP per client
// IP, counted in the store so replicas share them; 429 with Retry-After.
func TestRateLimits(t *testing.T) {
	r := testredis.Start(t)
	for name, opt := range map[string]teststack.Option{
		"memory": func(*config.Config) {},
		"redis":  func(c *config.Config) { c.Broker.Redis.URL = r.URL() },
	} {
		t.Run(name, func(t *testing.T) {
			s := teststack.New(t, opt, func(c *config.Config) {
				c.Broker.Platforms[0].RateLimits = config.RateLimits{TokenPerClient: 3, LoginsPerIP: 2}
			})
			for i := range 2 {
				if u := s.WithBrowser().Login(t, teststack.AuthParams(), "impots", "angela-dubois"); u.Query().Get("code") == "" {
					t.Fatalf("login %d refused under the limit", i+1)
				}
			}
			b := s.WithBrowser()
			teststack.Get(t, b.Browser, b.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
			_, page := teststack.Get(t, b.Browser, b.BrokerURL+"/authorize/choose")
			resp, body := teststack.Post(t, b.Browser, b.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"impots"}})
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "S190006") {
				t.Fatalf("third login attempt in a minute: %d", resp.StatusCode)
			}

			form := url.Values{"grant_type": {"authorization_code"}, "code": {"unknown"}, "redirect_uri": {teststack.SPRedirect}}
			for i := range 3 {
				if status, _ := s.Token(t, form, true); status != http.StatusBadRequest {
					t.Fatalf("token request %d: %d, want 400 invalid_grant", i+1, status)
				}
			}
			status, out := s.Token(t, form, true)
			if status != http.StatusTooManyRequests || out["error"] != "temporarily_unavailable" {
				t.Fatalf("fourth token request: %d %v", status, out)
			}
		})
	}
}
