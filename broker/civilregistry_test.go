package broker_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/seal"
	"github.com/sesame-id/sesame/providers"
)

// registryRig is a stack whose broker checks logins at the mock civil
// registry, with its audit events.
func registryRig(t *testing.T, opts ...teststack.Option) (*rig, *auditRecorder) {
	t.Helper()
	rec := &auditRecorder{}
	return &rig{Stack: teststack.NewWith(t, []broker.Option{broker.WithAudit(rec)}, opts...)}, rec
}

// storedLogin reads the browser's session as the broker stored it
// (sealed, in its store) and returns its login.
func storedLogin(t *testing.T, r *rig) *session.Login {
	t.Helper()
	b := r.Config.Broker
	key, err := seal.ParseKey(b.SessionKeys[0])
	if err != nil {
		t.Fatal(err)
	}
	box, err := seal.New([][]byte{key})
	if err != nil {
		t.Fatal(err)
	}
	pl := b.Platforms[0]
	sess, err := session.New(r.Broker.Store, box, pl.Namespace, time.Duration(pl.SessionTTL), true).Load(context.Background(), r.SessionCookie(t).Value)
	if err != nil || sess.Login == nil {
		t.Fatalf("session: %v, login %v", err, sess)
	}
	return sess.Login
}

// pivotOf is the pivot of a test identity of the mock IdPs.
func pivotOf(t *testing.T, id string) identity.Pivot {
	t.Helper()
	p, err := providers.New(&config.Providers{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range p.Identities() {
		if i.ID == id {
			return identity.Pivot{GivenName: i.GivenName, FamilyName: i.FamilyName, Birthdate: i.Birthdate,
				Gender: i.Gender, Birthplace: i.Birthplace, Birthcountry: i.Birthcountry}
		}
	}
	t.Fatalf("no test identity %s", id)
	return identity.Pivot{}
}

// events returns the recorded events named name.
func (a *auditRecorder) named(name string) []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Event
	for _, e := range a.events {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// registryEvent checks the login's one civil registry track.
func registryEvent(t *testing.T, rec *auditRecorder, outcome, code string) {
	t.Helper()
	evs := rec.named(audit.CivilRegistryChecked)
	if len(evs) != 1 || evs[0].CivilRegistry != outcome || evs[0].Outcome != code || evs[0].Step != 4 ||
		evs[0].Account == "" || evs[0].LoginID == "" || evs[0].IdP != "impots" || evs[0].SP != teststack.SPID {
		t.Fatalf("registry tracks %+v, want one with %s, outcome %s", evs, outcome, code)
	}
}

// subFor is the sub the test SP (sector-a) must get for p.
func subFor(r *rig, p identity.Pivot) string {
	return identity.Sub([]byte(r.Config.Broker.SubSecret), "sector-a", p.Hash())
}

// A person the registry finds as the IdP describes them logs in; the
// login, the session and the tracks say "found".
func TestCivilRegistryFound(t *testing.T) {
	r, rec := registryRig(t, teststack.CivilRegistry("refuse", 0))
	u, _, _ := r.login(t, teststack.AuthParams(), "impots", "angela-dubois", nil)
	tok := r.redeem(t, teststack.SPID, u)
	info := r.userinfo(t, tok.AccessToken)
	angela := pivotOf(t, "angela-dubois")
	if info["given_name"] != angela.GivenName || info["family_name"] != angela.FamilyName || info["sub"] != subFor(r, angela) {
		t.Errorf("userinfo %v", info)
	}
	if l := storedLogin(t, r); l.CivilRegistry != "found" || l.Identity.Pivot != angela {
		t.Errorf("stored login: %q, %+v", l.CivilRegistry, l.Identity.Pivot)
	}
	registryEvent(t, rec, "found", "ok")
	if v := rec.named(audit.IdentityVerified); len(v) != 1 || v[0].CivilRegistry != "found" {
		t.Errorf("FC_IDENTITY_VERIFIED %+v, want civil_registry found", v)
	}
}

// A person the registry finds under a corrected name reaches the SP
// under the registry's identity, with the sub of that identity: the same
// sub whatever spelling the IdP used.
func TestCivilRegistryCorrected(t *testing.T) {
	r, rec := registryRig(t, teststack.CivilRegistry("refuse", 0))
	u, _, _ := r.login(t, teststack.AuthParams(), "impots", "rnipp-nom-corrige", nil)
	tok := r.redeem(t, teststack.SPID, u)
	info := r.userinfo(t, tok.AccessToken)
	asIdP := pivotOf(t, "rnipp-nom-corrige")
	corrected := asIdP
	corrected.GivenName, corrected.FamilyName = "Sophie Marie", "Bénard"
	if info["given_name"] != "Sophie Marie" || info["family_name"] != "Bénard" || info["birthdate"] != asIdP.Birthdate {
		t.Errorf("userinfo %v, want the registry's names", info)
	}
	if tok.ID["sub"] != subFor(r, corrected) || info["sub"] != subFor(r, corrected) || subFor(r, corrected) == subFor(r, asIdP) {
		t.Errorf("sub %v / %v, want %s (the corrected identity's)", tok.ID["sub"], info["sub"], subFor(r, corrected))
	}
	if l := storedLogin(t, r); l.CivilRegistry != "corrected" || l.Identity.Pivot != corrected || l.Identity.Email != "sofia.benard@example.org" {
		t.Errorf("stored login: %q, %+v", l.CivilRegistry, l.Identity)
	}
	registryEvent(t, rec, "corrected", "ok")
}

// Not found and deceased are refused on a page with their code; no code
// goes to the SP, and the deceased page names no cause.
func TestCivilRegistryRefusals(t *testing.T) {
	for _, tc := range []struct{ identity, outcome, code string }{
		{"rnipp-inconnu", "not_found", "S020050"},
		{"rnipp-decede", "deceased", "S020051"},
	} {
		t.Run(tc.outcome, func(t *testing.T) {
			r, rec := registryRig(t, teststack.CivilRegistry("refuse", 0))
			resp, body := r.callback(t, teststack.AuthParams(), "impots", tc.identity, nil)
			wantPage(t, resp, body, http.StatusForbidden, tc.code)
			registryEvent(t, rec, tc.outcome, tc.code)
			if got := rec.named(audit.CodeIssued); len(got) != 0 {
				t.Errorf("a code was issued: %+v", got)
			}
			if got := rec.named(audit.IdPReturned); len(got) != 1 || got[0].Outcome != tc.code {
				t.Errorf("FC_IDP_RETURNED %+v, want outcome %s", got, tc.code)
			}
			lower := strings.ToLower(body)
			for _, leak := range []string{"décè", "décéd", "deceased", "death", "delmas", "lambert", "1931"} {
				if strings.Contains(lower, leak) {
					t.Errorf("the page says %q", leak)
				}
			}
			// The consent step, which issues codes, is out of reach.
			resp, _ = teststack.Get(t, r.Browser, r.BrokerURL+"/authorize/consent")
			if resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), teststack.SPRedirect) {
				t.Fatalf("consent after a refusal sent the browser to the SP: %s", resp.Header.Get("Location"))
			}
		})
	}
}

// timedCallback runs a login to the IdP's answer and times the broker's
// callback alone.
func timedCallback(t *testing.T, r *rig, identity string) (*http.Response, string, time.Duration) {
	t.Helper()
	cb := r.IdPLogin(t, r.toIdP(t, teststack.AuthParams(), "impots").String(), identity, nil)
	start := time.Now()
	resp, body := teststack.Get(t, r.Browser, cb)
	return resp, body, time.Since(start)
}

// A registry slower than the broker's timeout is an outage: refused with
// the 503 page at the timeout, or let through flagged "unavailable".
func TestCivilRegistrySlow(t *testing.T) {
	const timeout = 300 * time.Millisecond
	t.Run("refuse", func(t *testing.T) {
		r, rec := registryRig(t, teststack.CivilRegistry("refuse", timeout))
		resp, body, took := timedCallback(t, r, "rnipp-lent")
		wantPage(t, resp, body, http.StatusServiceUnavailable, "S020052")
		if took < timeout || took > timeout+time.Second {
			t.Errorf("refused after %s, want about %s", took, timeout)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		registryEvent(t, rec, "unavailable", "S020052")
		// "Retour" leads back to the chooser, from which the citizen retries.
		if c, _ := r.chooser(t); c == "" {
			t.Error("no chooser after the refusal")
		}
	})
	t.Run("flag", func(t *testing.T) {
		r, rec := registryRig(t, teststack.CivilRegistry("flag", timeout))
		resp, _, took := timedCallback(t, r, "rnipp-lent")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/authorize/consent" {
			t.Fatalf("flag: %d to %s, want the consent step", resp.StatusCode, resp.Header.Get("Location"))
		}
		if took < timeout || took > timeout+time.Second {
			t.Errorf("let through after %s, want about %s", took, timeout)
		}
		if l := storedLogin(t, r); l.CivilRegistry != "unavailable" {
			t.Errorf("stored login flagged %q, want unavailable", l.CivilRegistry)
		}
		u := r.Finish(t, r.BrokerURL+"/authorize/consent")
		info := r.userinfo(t, r.redeem(t, teststack.SPID, u).AccessToken)
		if lent := pivotOf(t, "rnipp-lent"); info["sub"] != subFor(r, lent) {
			t.Errorf("sub %v, want the IdP identity's", info["sub"])
		}
		registryEvent(t, rec, "unavailable", "ok")
		if v := rec.named(audit.IdentityVerified); len(v) != 1 || v[0].CivilRegistry != "unavailable" {
			t.Errorf("FC_IDENTITY_VERIFIED %+v, want civil_registry unavailable", v)
		}
	})
}

// registryMetric reads one outcome's count of the registry checks.
func registryMetric(t *testing.T, r *rig, outcome string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Broker.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	m := regexp.MustCompile(`sesame_civil_registry_checks_total\{outcome="` + outcome + `",platform="std"\} (\d+)`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// serveRegistry serves a mock registry of its own on ln (which it
// closes when stopped).
func serveRegistry(t *testing.T, ln net.Listener) *httptest.Server {
	t.Helper()
	p, err := providers.New(&config.Providers{BaseURL: "http://" + ln.Addr().String(),
		CivilRegistry: &config.MockCivilRegistry{Secret: teststack.RegistrySecret}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// The registry stopped: each login gets the refuse policy; after
// circuit_failures failures in a row the broker stops calling it (the
// metrics count the checks not made) until the cool-down, after which one
// login probes it and, the registry back, closes the circuit.
func TestCivilRegistryDownRefuse(t *testing.T) {
	const failures, cooldown = 3, 2 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := serveRegistry(t, ln)
	r, rec := registryRig(t, teststack.CivilRegistry("refuse", time.Second), func(c *config.Config) {
		reg := c.Broker.CivilRegistry
		reg.URL, reg.CircuitFailures, reg.CircuitCooldown = "http://"+addr+"/rnipp/check", failures, config.Duration(cooldown)
	})
	if u, _, _ := r.browser().login(t, teststack.AuthParams(), "impots", "angela-dubois", nil); u.Query().Get("code") == "" {
		t.Fatal("no login while the registry is up")
	}

	srv.Close()
	for i := range failures + 2 {
		b := r.browser()
		resp, body, _ := timedCallback(t, b, "angela-dubois")
		wantPage(t, resp, body, http.StatusServiceUnavailable, "S020052")
		wantUnavailable, wantOpen := min(i+1, failures), max(0, i+1-failures)
		if got, open := registryMetric(t, r, "unavailable"), registryMetric(t, r, "circuit_open"); got != wantUnavailable || open != wantOpen {
			t.Fatalf("after %d refused logins: %d failed checks and %d not made, want %d and %d", i+1, got, open, wantUnavailable, wantOpen)
		}
	}
	openedAt := time.Now()
	if n := len(rec.named(audit.CivilRegistryChecked)); n != failures+3 {
		t.Errorf("%d registry tracks, want one per login (%d)", n, failures+3)
	}

	// Back up on the same address: still refused without a call until
	// the cool-down ends.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	serveRegistry(t, ln)
	resp, body, _ := timedCallback(t, r.browser(), "angela-dubois")
	wantPage(t, resp, body, http.StatusServiceUnavailable, "S020052")
	if registryMetric(t, r, "circuit_open") != 3 {
		t.Fatal("a check went to the registry during the cool-down")
	}
	time.Sleep(time.Until(openedAt.Add(cooldown + 100*time.Millisecond)))
	for i := range 2 {
		if u, _, _ := r.browser().login(t, teststack.AuthParams(), "impots", "angela-dubois", nil); u.Query().Get("code") == "" {
			t.Fatalf("login %d after the cool-down refused", i+1)
		}
	}
	if got := registryMetric(t, r, "found"); got != 3 {
		t.Errorf("%d checks found, want 3 (before, the probe, after)", got)
	}
}

// A registry that takes connections and never answers, with the flag
// policy: the first circuit_failures logins each wait the timeout and go
// through flagged; once the circuit is open, logins go through flagged at
// once.
func TestCivilRegistryDownFlag(t *testing.T) {
	const failures, timeout = 2, 300 * time.Millisecond
	// It reads the request first: the server notices the caller left
	// only once the body is read.
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(hung.Close)
	r, _ := registryRig(t, teststack.CivilRegistry("flag", timeout), func(c *config.Config) {
		reg := c.Broker.CivilRegistry
		reg.URL, reg.CircuitFailures, reg.CircuitCooldown = hung.URL+"/rnipp/check", failures, config.Duration(time.Minute)
	})
	for i := range failures + 2 {
		b := r.browser()
		resp, _, took := timedCallback(t, b, "angela-dubois")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/authorize/consent" {
			t.Fatalf("login %d: %d, want it let through", i+1, resp.StatusCode)
		}
		if l := storedLogin(t, b); l.CivilRegistry != "unavailable" {
			t.Fatalf("login %d flagged %q", i+1, l.CivilRegistry)
		}
		switch {
		case i < failures && took < timeout:
			t.Errorf("login %d took %s, before the timeout", i+1, took)
		case i >= failures && took > timeout/2:
			t.Errorf("login %d took %s with the circuit open, want no wait", i+1, took)
		}
		t.Logf("login %d: %s", i+1, took)
	}
	if registryMetric(t, r, "unavailable") != failures || registryMetric(t, r, "circuit_open") != 2 {
		t.Errorf("metrics: %d unavailable, %d circuit_open", registryMetric(t, r, "unavailable"), registryMetric(t, r, "circuit_open"))
	}
}

// An IdP with civil_registry: false (the eIDAS bridge) is not checked,
// even with the registry down and the refuse policy.
func TestCivilRegistryExemptIdP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	off := false
	r, rec := registryRig(t, teststack.CivilRegistry("refuse", 0), func(c *config.Config) {
		c.Broker.CivilRegistry.URL = "http://" + addr + "/rnipp/check"
	}, onIdP("impots", func(i *config.IdP) { i.CivilRegistry = &off }))
	u, _, _ := r.login(t, teststack.AuthParams(), "impots", "angela-dubois", nil)
	if u.Query().Get("code") == "" {
		t.Fatal("exempt IdP refused")
	}
	if l := storedLogin(t, r); l.CivilRegistry != "" {
		t.Errorf("exempt login flagged %q", l.CivilRegistry)
	}
	if n := len(rec.named(audit.CivilRegistryChecked)); n != 0 || registryMetric(t, r, "unavailable") != 0 {
		t.Errorf("%d registry tracks for an exempt IdP", n)
	}
	// laposte is not exempt: refused.
	resp, body := r.browser().callback(t, teststack.AuthParams(), "laposte", "angela-dubois", nil)
	wantPage(t, resp, body, http.StatusServiceUnavailable, "S020052")
}
