package circuit

import (
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for the breaker's cool-downs.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTest(threshold int, cooldown, probe time.Duration) (*Breaker, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	b := New(threshold, cooldown, probe)
	b.now = c.now
	return b, c
}

func TestBreakerOpensAfterARunOfOutages(t *testing.T) {
	b, c := newTest(3, 10*time.Second, 0)
	b.Record(true)
	b.Record(true)
	b.Record(false) // an answer ends the run
	b.Record(true)
	b.Record(true)
	if !b.Allow() || b.Open() {
		t.Fatal("open before 3 outages in a row")
	}
	b.Record(true)
	if b.Allow() || !b.Open() {
		t.Fatal("closed after 3 outages in a row")
	}
	c.add(9 * time.Second)
	if b.Allow() {
		t.Fatal("a call went before the end of the cool-down")
	}
	c.add(time.Second)
	if b.Open() {
		t.Fatal("still open once the cool-down is over")
	}
	if !b.Allow() {
		t.Fatal("no probe after the cool-down")
	}
	if b.Allow() || !b.Open() {
		t.Fatal("a second call went while the probe is under way")
	}
	b.Record(true) // the probe failed: a new cool-down
	if b.Allow() {
		t.Fatal("closed after a failed probe")
	}
	c.add(10 * time.Second)
	if !b.Allow() {
		t.Fatal("no second probe")
	}
	b.Record(false) // the probe got an answer: closed
	for range 5 {
		if !b.Allow() {
			t.Fatal("not closed after a successful probe")
		}
	}
}

func TestBreakerProbeThatNeverReports(t *testing.T) {
	b, c := newTest(1, 10*time.Second, 2*time.Second)
	b.Record(true)
	c.add(10 * time.Second)
	if !b.Allow() {
		t.Fatal("no probe")
	}
	c.add(time.Second)
	if b.Allow() {
		t.Fatal("second probe while the first holds its slot")
	}
	c.add(time.Second)
	if !b.Allow() {
		t.Fatal("an abandoned probe kept the circuit open past its probe timeout")
	}
}

func TestBreakerDefaults(t *testing.T) {
	b := New(0, 0, time.Hour)
	if b.threshold != DefaultThreshold || b.cooldown != DefaultCooldown || b.probeTimeout != DefaultCooldown {
		t.Fatalf("defaults: %d, %s, %s", b.threshold, b.cooldown, b.probeTimeout)
	}
}

// Of many callers racing for the half-open slot, exactly one probes.
func TestBreakerOneProbe(t *testing.T) {
	b, c := newTest(1, time.Second, 0)
	b.Record(true)
	c.add(time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 50 {
		wg.Go(func() {
			if b.Allow() {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 1 {
		t.Fatalf("%d probes, want 1", allowed)
	}
}
