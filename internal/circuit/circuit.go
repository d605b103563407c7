// Package circuit is a circuit breaker for a dependency called on the
// path of a request: after a run of outages the calls stop for a
// cool-down, so that citizens do not each wait a timeout on a service
// known to be down; after the cool-down one call probes it (half-open),
// and its outcome closes or reopens the circuit.
//
// It has the semantics of broker/upstream's per-IdP breaker, exported
// so that other dependencies (the civil registry) share them.
package circuit

import (
	"sync"
	"time"
)

// Defaults for the zero values given to New.
const (
	DefaultThreshold = 5
	DefaultCooldown  = 30 * time.Second
)

// Breaker counts outages in a row. It is safe for concurrent use.
type Breaker struct {
	threshold int
	cooldown  time.Duration
	// probeTimeout is how long the half-open probe holds its slot: a
	// probe whose outcome is never recorded (its caller gave up) must not
	// keep the circuit open for ever.
	probeTimeout time.Duration
	// now is the clock; tests replace it.
	now func() time.Time

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probeAt   time.Time
}

// New makes a closed breaker that opens after threshold outages in a row
// (0: DefaultThreshold) for cooldown (0: DefaultCooldown). probeTimeout
// (0 or more than the cool-down: the cool-down) bounds a probe that
// never reports.
func New(threshold int, cooldown, probeTimeout time.Duration) *Breaker {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	if cooldown <= 0 {
		cooldown = DefaultCooldown
	}
	if probeTimeout <= 0 || probeTimeout > cooldown {
		probeTimeout = cooldown
	}
	return &Breaker{threshold: threshold, cooldown: cooldown, probeTimeout: probeTimeout, now: time.Now}
}

func (b *Breaker) probing() bool {
	return !b.probeAt.IsZero() && b.now().Sub(b.probeAt) < b.probeTimeout
}

// Allow reports whether a call may go; in the half-open state it lets
// exactly one through, the probe, until its outcome is recorded.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < b.threshold {
		return true
	}
	if b.now().Before(b.openUntil) || b.probing() {
		return false
	}
	b.probeAt = b.now()
	return true
}

// Open reports, without side effects, whether calls are being refused.
func (b *Breaker) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures >= b.threshold && (b.now().Before(b.openUntil) || b.probing())
}

// Record counts the outcome of a call Allow let through: an outage
// extends the run (and, at the threshold, opens the circuit for a
// cool-down); any answer ends it and closes the circuit.
func (b *Breaker) Record(outage bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probeAt = time.Time{}
	if !outage {
		b.failures = 0
		return
	}
	b.failures++
	if b.failures >= b.threshold {
		b.openUntil = b.now().Add(b.cooldown)
	}
}
