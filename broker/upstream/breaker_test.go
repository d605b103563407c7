package upstream

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	b := newBreaker(3, 100*time.Millisecond)
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
