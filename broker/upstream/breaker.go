package upstream

import (
	"errors"
	"sync"
	"time"
)

// breaker is a per-IdP circuit breaker: after a run of outages (timeouts,
// 5xx, unreachable endpoints) the IdP is taken off the chooser for a
// cool-down, so citizens are not sent to wait on a dead IdP while the
// others work. After the cool-down one trip is let through (half-open);
// its outcome closes or reopens the circuit. Rejections (a bad token) are
// not outages: they say nothing about availability.
type breaker struct {
	threshold int
	cooldown  time.Duration
	// probeTimeout is how long the half-open probe holds its slot. It is
	// short and its own: a trip started and abandoned at the IdP (by a
	// citizen, or by an attacker doing it every cool-down on purpose)
	// must not keep the IdP off the chooser.
	probeTimeout time.Duration
	now          func() time.Time

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	// probeAt is when the half-open trip started; a citizen who abandons
	// it at the IdP must not keep the circuit open for ever, so another
	// probe goes after a further cool-down.
	probeAt time.Time
}

func (b *breaker) probing() bool {
	return !b.probeAt.IsZero() && b.now().Sub(b.probeAt) < b.probeTimeout
}

// defaultProbeTimeout bounds the half-open probe: long enough for an IdP
// that answers to answer, short enough that an abandoned probe costs
// citizens seconds, not a cool-down.
const defaultProbeTimeout = 10 * time.Second

func newBreaker(threshold int, cooldown, probeTimeout time.Duration) *breaker {
	if threshold <= 0 {
		threshold = 5
	}
	if cooldown <= 0 {
		cooldown = 30 * time.Second
	}
	if probeTimeout <= 0 {
		probeTimeout = defaultProbeTimeout
	}
	return &breaker{threshold: threshold, cooldown: cooldown, probeTimeout: min(probeTimeout, cooldown), now: time.Now}
}

// allow reports whether a new trip may start; in the half-open state it
// lets exactly one through.
func (b *breaker) allow() bool {
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

// available reports, without side effects, whether the chooser should
// offer the IdP.
func (b *breaker) available() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures < b.threshold || (!b.now().Before(b.openUntil) && !b.probing())
}

// record counts an outcome: an outage extends the run, anything else ends
// it.
func (b *breaker) record(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probeAt = time.Time{}
	if err == nil || !errors.Is(err, ErrUnavailable) {
		b.failures = 0
		return
	}
	b.failures++
	if b.failures >= b.threshold {
		b.openUntil = b.now().Add(b.cooldown)
	}
}
