package providers

import (
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/internal/keys"
)

// Scenario is how a mock IdP misbehaves for one login, so that the broker's
// defences can be tested against a real OIDC exchange. The zero value
// behaves correctly, and it is the only value built today.
//
// A scenario is chosen on the login form (scenarioFromForm), travels in the
// code record and then in the access-token record, and is consulted at
// exactly one switch point per step:
//
//   - the redirect back to the client (Scenario.redirect),
//   - the token answer and its id_token (Scenario.token),
//   - the userinfo answer (Scenario.userinfo).
//
// Adding a fault such as "assert this acr", "answer this error", "slow
// token endpoint", "sign with an unpublished key", "drop a claim" or "send a
// bad COG code" is then a field here, a form control, and a few lines in
// the matching switch point; no handler changes shape.
type Scenario struct{}

// scenarioFromForm reads the tester's choice from the login form. No control
// exists yet, so every login gets the correct behaviour.
func scenarioFromForm(url.Values) (Scenario, error) { return Scenario{}, nil }

// redirect may alter the parameters of the redirect to the client (an error
// instead of a code, a wrong iss, no state).
func (sc Scenario) redirect(q url.Values) {}

// tokenStep is what the token endpoint is about to do, exposed to the
// scenario whole so that a fault can change the claims, the key, the
// algorithm or the timing without another hook.
type tokenStep struct {
	Claims idTokenClaims
	Signer keys.Signer
	Alg    jose.SignatureAlgorithm
	// Delay is waited before answering.
	Delay time.Duration
	// Err, when set, is answered instead of tokens.
	Err *oauthError
}

// token may alter the token answer.
func (sc Scenario) token(step *tokenStep) {}

// userinfo may alter the claims userinfo returns.
func (sc Scenario) userinfo(claims map[string]any) {}
