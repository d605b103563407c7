package broker

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/sesame-id/sesame/broker/civilregistry"
	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/web"
)

// The civil registry check (RNIPP): between the IdP's answer and
// everything derived from the identity (the citizen's account, the sub),
// the identity is checked at the registry, and the registry's is kept
// when it corrects it, so that SPs receive the registry's identity as
// FranceConnect's do (see docs/identity-checks.md).

// The pages of a refused check. The deceased page says no more than that
// the identity cannot be used: it is shown to whoever holds the
// account's credentials, who may not be its owner, and to relatives in a
// hard moment.
var (
	errRegistryNotFound = web.Error{Code: "S020050", Status: http.StatusForbidden, Retry: true, BackURL: "/authorize/choose",
		MessageFR: "Votre identité n'a pas été trouvée à l'état civil : la connexion n'est pas possible. Vérifiez auprès de votre fournisseur d'identité que vos nom, prénoms, date et lieu de naissance sont exacts, ou choisissez un autre fournisseur d'identité.",
		MessageEN: "Your identity was not found in the civil registry: you cannot log in. Check with your identity provider that your names, date and place of birth are right, or choose another identity provider."}
	errRegistryDeceased = web.Error{Code: "S020051", Status: http.StatusForbidden,
		MessageFR: "Cette identité ne peut pas être utilisée pour se connecter. Si vous pensez qu'il s'agit d'une erreur, contactez le service d'assistance en lui donnant le code et l'identifiant ci-dessous.",
		MessageEN: "This identity cannot be used to log in. If you think this is a mistake, contact support and give them the code and the identifier below."}
	errRegistryDown = web.Error{Code: "S020052", Status: http.StatusServiceUnavailable, Retry: true, BackURL: "/authorize/choose",
		MessageFR: "Nous ne pouvons pas vérifier votre identité auprès de l'état civil pour le moment. Réessayez dans quelques instants.",
		MessageEN: "We cannot check your identity with the civil registry right now. Try again in a few moments."}
)

// newCivilRegistry builds the broker's registry from its config: the HTTP
// client behind a timeout and a circuit breaker; nil without config.
func newCivilRegistry(c *config.CivilRegistry) (civilregistry.Registry, error) {
	if c == nil {
		return nil, nil
	}
	timeout := c.Timeout.D(config.DefaultCivilRegistryTimeout)
	client, err := civilregistry.NewClient(c.URL, c.Secret, timeout)
	if err != nil {
		return nil, fmt.Errorf("broker.civil_registry: %w", err)
	}
	return civilregistry.NewGuard(client, timeout, c.CircuitFailures, c.CircuitCooldown.D(0)), nil
}

// checkCivilRegistry checks the IdP's identity at the civil registry,
// unless there is none or the IdP is exempt, and replaces the pivot with
// the registry's when it is corrected. It returns the outcome to keep in
// the login ("" when not checked), or false once it has refused the login
// with its page.
func (p *Platform) checkCivilRegistry(w http.ResponseWriter, r *http.Request, sess *session.Session, idp config.IdP, id *identity.Identity, acr string) (string, bool) {
	if p.civilRegistry == nil || !idp.ChecksCivilRegistry() {
		return "", true
	}
	res, err := p.civilRegistry.Check(r.Context(), id.Pivot)
	outcome, metric := res.Status, string(res.Status)
	if err != nil {
		outcome, metric = civilregistry.Unavailable, string(civilregistry.Unavailable)
		if errors.Is(err, civilregistry.ErrCircuitOpen) {
			metric = "circuit_open"
		}
	}
	p.metrics.civilRegistryCheck(p.cfg.ID, metric)
	var refusal *web.Error
	switch outcome {
	case civilregistry.Corrected:
		id.Pivot = res.Pivot
	case civilregistry.NotFound:
		refusal = &errRegistryNotFound
	case civilregistry.Deceased:
		refusal = &errRegistryDeceased
	case civilregistry.Unavailable:
		if !p.flagOutage {
			refusal = &errRegistryDown
		} else {
			p.log.WarnContext(r.Context(), "civil registry unavailable: login let through, flagged", "err", err, "idp", idp.ID,
				"correlation_id", web.CorrelationID(r.Context()))
		}
	}
	if refusal == nil {
		return string(outcome), true
	}
	p.recordCivilRegistry(r, sess, idp.ID, acr, p.account(*id), string(outcome), refusal.Code)
	if err == nil {
		err = errors.New("civil registry: " + string(outcome))
	}
	p.rejectLogin(w, r, sess, *refusal, err)
	return "", false
}

// recordCivilRegistry emits the registry's track.
func (p *Platform) recordCivilRegistry(r *http.Request, sess *session.Session, idp, acr, acct, outcome, code string) {
	p.record(r, audit.Event{Name: audit.CivilRegistryChecked, Step: audit.CivilRegistryCheckedStep, Outcome: code, LoginID: sess.LoginID,
		SP: sess.Request.ClientID, IdP: idp, ACRAsked: sess.Request.ACR, ACR: acr, Account: acct, CivilRegistry: outcome})
}
