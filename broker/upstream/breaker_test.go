package upstream

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	b := newBreaker(3, 100*time.Millisecond, 0)
	outage := fmt.Errorf("%w: token endpoint timed out", ErrUnavailable)
	rejected := fmt.Errorf("%w: bad signature", ErrRejected)

	for range 2 {
		b.record(outage)
	}
	b.record(rejected) // a rejection is no outage: the run ends
	for range 2 {
		b.record(outage)
	}
	if !b.allow() || !b.available() {
		t.Fatal("opened before 3 outages in a row")
	}
	b.record(outage)
	if b.allow() || b.available() {
		t.Fatal("still closed after 3 outages in a row")
	}

	time.Sleep(120 * time.Millisecond)
	if !b.available() || !b.allow() {
		t.Fatal("no probe after the cool-down")
	}
	if b.allow() || b.available() {
		t.Fatal("a second trip went while the probe is under way")
	}
	b.record(outage) // the probe failed: open again
	if b.allow() {
		t.Fatal("closed after a failed probe")
	}

	time.Sleep(120 * time.Millisecond)
	if !b.allow() {
		t.Fatal("no second probe")
	}
	b.record(nil) // the probe worked: closed
	if !b.allow() || !b.allow() {
		t.Fatal("not closed after a successful probe")
	}

	// A probe abandoned at the IdP does not keep the circuit open.
	for range 3 {
		b.record(outage)
	}
	time.Sleep(120 * time.Millisecond)
	if !b.allow() {
		t.Fatal("no probe")
	}
	time.Sleep(120 * time.Millisecond)
	if !b.allow() {
		t.Fatal("an abandoned probe kept the circuit open")
	}
	if errors.Is(rejected, ErrUnavailable) {
		t.Fatal("test setup: a rejection must not be an outage")
	}
}

// An abandoned half-open probe holds its slot for the probe timeout only,
// not for a cool-down: an attacker starting one trip per cool-down cannot
// keep the IdP off the chooser.
func TestBreakerAbandonedProbe(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	b := newBreaker(2, 30*time.Second, 5*time.Second)
	b.now = func() time.Time { return now }
	outage := fmt.Errorf("%w: timeout", ErrUnavailable)
	b.record(outage)
	b.record(outage)
	if b.available() {
		t.Fatal("open circuit offered")
	}
	now = now.Add(30 * time.Second)
	if !b.allow() {
		t.Fatal("no probe after the cool-down")
	}
	// The probe is abandoned: nothing is ever recorded.
	now = now.Add(4 * time.Second)
	if b.available() || b.allow() {
		t.Fatal("a second probe within the probe timeout")
	}
	now = now.Add(2 * time.Second)
	if !b.available() || !b.allow() {
		t.Fatal("an abandoned probe still holds the IdP off the chooser after its timeout")
	}
	// A probe timeout longer than the cool-down is capped by it.
	if c := newBreaker(2, time.Second, time.Minute); c.probeTimeout != time.Second {
		t.Fatalf("probe timeout %v, want the cool-down", c.probeTimeout)
	}
}
