package broker_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/testredis"
)

// readyz fetches /readyz and decodes its JSON.
func readyz(t *testing.T, s *teststack.Stack) (*http.Response, broker.Readiness, string) {
	t.Helper()
	resp, body := teststack.Get(t, http.DefaultClient, s.BrokerURL+"/readyz")
	var out broker.Readiness
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("/readyz is not JSON: %v\n%s", err, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("/readyz Content-Type %q", ct)
	}
	return resp, out, body
}

// /readyz reports the store, the keys and each IdP's discovery as JSON.
// An IdP whose discovery fails is reported but leaves the replica ready:
// the chooser greys it and the other IdPs work. Draining makes it 503.
func TestReadyzJSON(t *testing.T) {
	s := teststack.New(t, onIdP("laposte", func(idp *config.IdP) { idp.Issuer = "http://127.0.0.1:1/laposte" }))
	resp, out, body := readyz(t, s)
	if resp.StatusCode != http.StatusOK || out.Status != "ok" || out.Store.Status != "ok" || out.Keys.Status != "ok" {
		t.Fatalf("/readyz: %d %s", resp.StatusCode, body)
	}
	if !slices.Contains(out.Keys.Algs, "ES256") || !slices.Contains(out.Keys.Algs, "RS256") {
		t.Errorf("keys algs %v", out.Keys.Algs)
	}
	// Discovery runs in the background of the probe, which never waits
	// for an IdP.
	deadline := time.Now().Add(10 * time.Second)
	for out.IdPs["impots"] != "ok" || !strings.HasPrefix(out.IdPs["laposte"], "discovery failing") {
		if time.Now().After(deadline) {
			t.Fatalf("IdP states never settled: %s", body)
		}
		if !strings.HasPrefix(out.IdPs["impots"], "discovery pending") && out.IdPs["impots"] != "ok" {
			t.Fatalf("impots: %q", out.IdPs["impots"])
		}
		time.Sleep(50 * time.Millisecond)
		resp, out, body = readyz(t, s)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("an IdP's discovery made the replica unready: %d %s", resp.StatusCode, body)
		}
	}
	if out.IdPs["laposte"] != "discovery failing: unreachable" {
		t.Errorf("laposte: %q, want discovery failing: unreachable", out.IdPs["laposte"])
	}
	t.Logf("/readyz with an IdP down: %s", strings.TrimSpace(body))

	// The chooser agrees: laposte still listed (its circuit has not
	// opened: nobody tried it), impots works.
	if u := s.WithBrowser().Login(t, teststack.AuthParams(), "impots", "angela-dubois"); u.Query().Get("code") == "" {
		t.Fatal("login through impots failed")
	}

	s.Platform.Drain()
	resp, out, body = readyz(t, s)
	if resp.StatusCode != http.StatusServiceUnavailable || out.Status != "unavailable" || !out.Draining || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("/readyz while draining: %d %s", resp.StatusCode, body)
	}
}

// With Redis down /readyz is 503 with the store unavailable, and says
// nothing of the store's address or driver; it is 200 again once Redis
// is back, without a restart.
func TestReadyzStoreDown(t *testing.T) {
	r := testredis.Start(t)
	s := teststack.New(t, teststack.RedisURL(r.URL()), func(c *config.Config) { c.Broker.Redis.Timeout = config.Duration(200 * time.Millisecond) })
	if resp, out, body := readyz(t, s); resp.StatusCode != http.StatusOK || out.Store.Status != "ok" {
		t.Fatalf("/readyz on Redis: %d %s", resp.StatusCode, body)
	}
	r.Kill()
	resp, out, body := readyz(t, s)
	if resp.StatusCode != http.StatusServiceUnavailable || out.Status != "unavailable" || out.Store.Status != "unavailable" || out.Keys.Status != "ok" {
		t.Fatalf("/readyz with Redis down: %d %s", resp.StatusCode, body)
	}
	for _, leak := range []string{"redis", "dial", "sock", "127.0.0.1", "refused"} {
		if strings.Contains(strings.ToLower(body), leak) {
			t.Errorf("/readyz shows %q: %s", leak, body)
		}
	}
	r.Restart()
	waitReady(t, s)
}
