// Package civilregistry is the broker's seam to the civil registry
// (RNIPP, "répertoire national d'identification des personnes
// physiques"): after an IdP returns and before the sub is computed, the
// pivot identity is checked there, as FranceConnect does. The registry
// may find the person, find them under a corrected identity (which is
// then the one the SPs receive), not find them, or know them deceased.
//
// Registry is the interface; Client speaks HTTP and JSON to a registry
// (the mock of providers/civilregistry, or a gateway to the real one);
// Guard bounds any Registry with a timeout and a circuit breaker, so that
// an outage has one documented outcome: ErrUnavailable.
package civilregistry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/internal/circuit"
)

// Status is what the registry says of an identity.
type Status string

// The statuses. They are also the outcome values of the session, the
// audit trail and the metrics, with Unavailable for a check that got no
// answer.
const (
	// Found: the registry holds the person exactly as the IdP described.
	Found Status = "found"
	// Corrected: the registry holds the person with another spelling or
	// other pivot claims; Result.Pivot is the registry's.
	Corrected Status = "corrected"
	// NotFound: the registry holds nobody matching.
	NotFound Status = "not_found"
	// Deceased: the registry holds the person and records their death.
	Deceased Status = "deceased"
	// Unavailable is no answer of the registry but the outcome of a check
	// that got none (down, slow, broken answer, circuit open), which the
	// outage policy may let through.
	Unavailable Status = "unavailable"
)

// Result is the registry's answer.
type Result struct {
	Status Status
	// Pivot is the registry's identity of the person for Found (equal to
	// the one asked) and Corrected; empty otherwise.
	Pivot identity.Pivot
}

// Registry checks a pivot identity. An error means the registry gave no
// usable answer; NotFound and Deceased are answers, not errors.
type Registry interface {
	Check(ctx context.Context, p identity.Pivot) (Result, error)
}

// Errors of a check. Every error a Guard returns wraps ErrUnavailable.
var (
	ErrUnavailable = errors.New("civil registry: unavailable")
	// ErrCircuitOpen: no call was made, the registry being known down.
	ErrCircuitOpen = fmt.Errorf("%w: circuit open after repeated outages", ErrUnavailable)
)

// Guard bounds a Registry: each check gets at most its timeout, and a run
// of failed checks opens a circuit breaker, during which checks fail at
// once with ErrCircuitOpen instead of each making a citizen wait.
type Guard struct {
	next    Registry
	timeout time.Duration
	breaker *circuit.Breaker
}

// NewGuard wraps next with a timeout per check (0: 2s) and a breaker
// that opens after failures failed checks in a row (0: 5) for cooldown
// (0: 30s).
func NewGuard(next Registry, timeout time.Duration, failures int, cooldown time.Duration) *Guard {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	// The probe holds its slot no longer than a check can last.
	return &Guard{next: next, timeout: timeout, breaker: circuit.New(failures, cooldown, timeout)}
}

// Check implements Registry. A failed check (any error of next, its
// timeout included) counts as an outage, an answer closes the circuit; a
// check abandoned because ctx ended (the citizen left) counts for
// neither.
func (g *Guard) Check(ctx context.Context, p identity.Pivot) (Result, error) {
	if !g.breaker.Allow() {
		return Result{}, ErrCircuitOpen
	}
	cctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	res, err := g.next.Check(cctx, p)
	if err != nil && ctx.Err() != nil {
		return Result{}, fmt.Errorf("%w: check abandoned: %w", ErrUnavailable, ctx.Err())
	}
	g.breaker.Record(err != nil)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return Result{}, err
	}
	return res, nil
}

// Open reports whether the circuit is refusing checks, for readiness and
// logs.
func (g *Guard) Open() bool { return g.breaker.Open() }
