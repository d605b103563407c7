package broker_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

// TestIdPDown takes an IdP down (its connections dropped unanswered)
// after the broker discovered it, and measures what citizens see:
//   - one who picks it is still sent there (the broker cannot know
//     before a call fails) and their browser cannot reach it;
//   - /readyz names it failing within one background check, and stays
//     200: the other IdPs work;
//   - those coming back from it with a code get the chooser with the
//     S020026 banner; after circuit_failures of them the chooser greys
//     it out for circuit_cooldown, then offers it again, and the first
//     login through it closes the circuit once it is back.
func TestIdPDown(t *testing.T) {
	const failures, cooldown = 3, 3 * time.Second
	s := teststack.New(t, onIdP("laposte", func(i *config.IdP) {
		i.CircuitFailures, i.CircuitCooldown = failures, config.Duration(cooldown)
	}))
	if u := s.WithBrowser().Login(t, teststack.AuthParams(), "laposte", "angela-dubois"); u.Query().Get("code") == "" {
		t.Fatal("no login through laposte while it is up")
	}
	// Citizens already authenticated at laposte, on their way back.
	var back []*teststack.Stack
	var callbacks []string
	for range failures {
		b := s.WithBrowser()
		teststack.Get(t, b.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
		callbacks = append(callbacks, b.IdPLogin(t, b.Choose(t, "laposte"), "angela-dubois", nil))
		back = append(back, b)
	}

	downAt := time.Now()
	s.SetIdPDown("laposte", true)

	// A new citizen picks laposte: sent to it, cannot reach it.
	b := s.WithBrowser()
	teststack.Get(t, b.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	to := b.Choose(t, "laposte")
	if !strings.HasPrefix(to, s.IdPURL+"/laposte/") {
		t.Fatalf("choosing laposte went to %s", to)
	}
	if resp, err := b.Browser.Get(to); err == nil {
		resp.Body.Close()
		t.Fatalf("the dead IdP answered %d", resp.StatusCode)
	}

	// /readyz: laposte failing, replica ready.
	var seenAt time.Time
	for deadline := time.Now().Add(15 * time.Second); seenAt.IsZero(); {
		resp, out, body := readyz(t, s)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("an IdP down made the replica unready: %s", body)
		}
		if strings.HasPrefix(out.IdPs["laposte"], "discovery failing") {
			seenAt = time.Now()
			t.Logf("/readyz after %v: %s", seenAt.Sub(downAt).Round(time.Millisecond), strings.TrimSpace(body))
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never reported laposte down: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The citizens coming back with a code: the chooser, with the banner.
	for i, b := range back {
		start := time.Now()
		resp, _ := teststack.Get(t, b.Browser, callbacks[i])
		took := time.Since(start)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/authorize/choose" {
			t.Fatalf("callback %d with laposte down: %d %s", i, resp.StatusCode, resp.Header.Get("Location"))
		}
		_, page := teststack.Get(t, b.Browser, s.BrokerURL+"/authorize/choose")
		if !strings.Contains(page, `id="banner"`) || !strings.Contains(page, "ne répond pas") {
			t.Fatalf("callback %d: the chooser has no S020026 banner", i)
		}
		t.Logf("callback %d with the IdP's token endpoint dead: back to the chooser with the banner in %v", i, took.Round(time.Millisecond))
	}
	openAt := time.Now()

	// The circuit is open: greyed out; impots still works.
	c := s.WithBrowser()
	teststack.Get(t, c.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
	_, page := teststack.Get(t, c.Browser, s.BrokerURL+"/authorize/choose")
	if !strings.Contains(page, `id="idp-laposte" disabled`) || !strings.Contains(page, "temporairement indisponible") {
		t.Fatalf("after %d failed callbacks laposte is still offered", failures)
	}
	if u := s.WithBrowser().Login(t, teststack.AuthParams(), "impots", "angela-dubois"); u.Query().Get("code") == "" {
		t.Fatal("impots stopped working")
	}

	// Back up; after the cool-down it is offered again and one login
	// through it closes the circuit.
	s.SetIdPDown("laposte", false)
	var offeredAt time.Time
	for deadline := time.Now().Add(cooldown + 5*time.Second); offeredAt.IsZero(); {
		d := s.WithBrowser()
		teststack.Get(t, d.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
		if _, page := teststack.Get(t, d.Browser, s.BrokerURL+"/authorize/choose"); !strings.Contains(page, `id="idp-laposte" disabled`) {
			offeredAt = time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatal("laposte never came back on the chooser")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("greyed out for %v (circuit_cooldown %v), then offered again", offeredAt.Sub(openAt).Round(time.Millisecond), cooldown)
	if u := s.WithBrowser().Login(t, teststack.AuthParams(), "laposte", "angela-dubois"); u.Query().Get("code") == "" {
		t.Fatal("no login through laposte once it is back")
	}
}
