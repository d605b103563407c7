package dataprovider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sesame-id/sesame/internal/dpop"
	"github.com/sesame-id/sesame/internal/web"
)

// endpoint is one API route of a provider.
type endpoint struct {
	// Path is under the provider: /api/impot/revenu-fiscal.
	Path string
	// Scopes open the route; each releases its part of the answer.
	Scopes []string
	// answer finds the person of id and builds what the granted scopes
	// cover; false when the provider does not know the person.
	answer func(p *provider, granted []string, id pivot) (any, bool)
}

// apis are the routes of each provider id.
var apis = map[string][]*endpoint{
	"dgfip": {
		{Path: "/api/impot/revenu-fiscal", Scopes: []string{"dgfip_rfr", "dgfip_nbpart"}, answer: revenuFiscal},
	},
	"cnaf": {
		{Path: "/api/prestations/quotient-familial", Scopes: []string{"cnaf_quotient_familial"}, answer: quotientFamilialAnswer},
		{Path: "/api/prestations/composition-familiale", Scopes: []string{"cnaf_composition_familiale"}, answer: compositionFamiliale},
	},
}

// scopeLabels describe the scopes on the providers' pages.
var scopeLabels = map[string]string{
	"dgfip_rfr":                  "revenu fiscal de référence des deux dernières années",
	"dgfip_nbpart":               "nombre de parts fiscales des deux dernières années",
	"cnaf_quotient_familial":     "quotient familial CAF, avec son mois et son année",
	"cnaf_composition_familiale": "allocataires et enfants du dossier CAF",
}

// Schemes of the Authorization header (RFC 6750 §2.1, RFC 9449 §7.1).
const (
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// tokenPattern is RFC 6750's b64token; maxToken bounds what is forwarded
// to a broker.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

const maxToken = 4096

// dpopAlgs is advertised in the DPoP challenge (RFC 9449 §7.1).
var dpopAlgs = func() string {
	var s []string
	for _, a := range dpop.DefaultAlgs {
		s = append(s, string(a))
	}
	return strings.Join(s, " ")
}()

// apiError is a refusal. Descriptions are ASCII without quotes or
// backslashes, as RFC 6750 §3 requires of error_description, since they
// also go in WWW-Authenticate.
type apiError struct {
	status int
	code   string
	desc   string
	// challenge is the scheme whose WWW-Authenticate challenge carries
	// the error; empty means the scheme the request used.
	challenge string
	// bare sends the challenges without error attributes: a request
	// with no credentials at all (RFC 6750 §3.1).
	bare bool
	// scope is the scope attribute of an insufficient_scope challenge.
	scope string
	// reason is the detail for the log line, never sent.
	reason string
}

func invalidRequest(desc string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

func invalidToken(desc, challenge string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: "invalid_token", desc: desc, challenge: challenge}
}

func invalidProof(desc, reason string) *apiError {
	return &apiError{status: http.StatusUnauthorized, code: "invalid_dpop_proof", desc: desc, challenge: schemeDPoP, reason: reason}
}

// callRecord gathers what the log line of one call says. It holds no
// identity attribute: not the sub, not a name, not a birth date.
type callRecord struct {
	status            int
	outcome, reason   string
	scheme, issuer    string
	clientID          string
	scopes            []string
	introspection     []string
	refusedAnAnswer   bool
	brokerUnreachable bool
}

// IntrospectionHeader carries, on every answer after a successful
// introspection, base64url(JSON) of the broker's token_introspection, so
// that the demo SP can show integrators what a data provider is told.
const IntrospectionHeader = "X-Sesame-Introspection"

// serveAPI answers one API call: token, introspection, DPoP binding,
// scopes, person, answer, in that order; each step refuses on its own.
func (p *provider) serveAPI(e *endpoint, w http.ResponseWriter, r *http.Request) {
	rec := &callRecord{}
	defer p.logCall(r, e, rec)
	token, scheme, aerr := accessToken(r)
	rec.scheme = scheme
	if aerr != nil {
		p.fail(w, rec, aerr)
		return
	}
	// A proof is checked before the broker is asked: a request that
	// cannot succeed costs the broker nothing.
	var proof *dpop.Proof
	if scheme == schemeDPoP {
		if proof, aerr = p.checkProof(r, e, token); aerr != nil {
			p.fail(w, rec, aerr)
			return
		}
	}
	g, aerr := p.introspect(r.Context(), token, rec)
	if aerr != nil {
		p.fail(w, rec, aerr)
		return
	}
	rec.issuer, rec.clientID = g.issuer, g.clientID
	if len(g.raw) > 0 {
		// A mock's aid to integrators, never a real provider's habit:
		// what the broker said about this token, for the demo SP to show.
		w.Header().Set(IntrospectionHeader, base64.RawURLEncoding.EncodeToString(g.raw))
	}
	rec.scopes = intersect(g.scopes, p.scopes())
	if aerr := p.checkBinding(scheme, proof, g); aerr != nil {
		p.fail(w, rec, aerr)
		return
	}
	granted := intersect(g.scopes, e.Scopes)
	if len(granted) == 0 {
		p.fail(w, rec, &apiError{
			status: http.StatusForbidden, code: "insufficient_scope", scope: strings.Join(e.Scopes, " "),
			desc: "the access token grants none of the scopes of this resource",
		})
		return
	}
	if g.pivot == nil {
		p.fail(w, rec, &apiError{
			status: http.StatusForbidden, code: "insufficient_scope",
			desc:   "the introspection of the access token does not carry the whole pivot identity, so the person cannot be found",
			reason: "pivot identity incomplete in the introspection answer",
		})
		return
	}
	body, ok := e.answer(p, granted, *g.pivot)
	if !ok {
		p.fail(w, rec, &apiError{
			status: http.StatusNotFound, code: "not_found",
			desc: "this provider has no record of exactly one person matching the pivot identity",
		})
		return
	}
	rec.status, rec.outcome = http.StatusOK, "ok"
	writeJSON(w, http.StatusOK, body)
}

// accessToken reads the token of the Authorization header. The query
// string (RFC 6750 §2.3) is refused: URLs end up in logs and histories.
func accessToken(r *http.Request) (token, scheme string, e *apiError) {
	if r.URL.Query().Has("access_token") {
		return "", "", invalidRequest("access tokens in the URL query are not accepted (RFC 6750 section 2.3 is not supported): send Authorization: Bearer <token>")
	}
	vals := r.Header.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", "", &apiError{status: http.StatusUnauthorized, code: "invalid_token", bare: true,
			desc: "an access token is required: Authorization: Bearer <token>, or DPoP <token> with a DPoP proof"}
	case len(vals) > 1:
		return "", "", invalidRequest("more than one Authorization header")
	}
	name, tok, _ := strings.Cut(vals[0], " ")
	switch {
	case strings.EqualFold(name, schemeBearer):
		scheme = schemeBearer
	case strings.EqualFold(name, schemeDPoP):
		scheme = schemeDPoP
	default:
		return "", "", &apiError{status: http.StatusUnauthorized, code: "invalid_token", bare: true,
			desc: "unsupported authorization scheme: use Bearer, or DPoP with a DPoP proof"}
	}
	tok = strings.Trim(tok, " ")
	if len(tok) > maxToken || !tokenPattern.MatchString(tok) {
		return "", scheme, invalidRequest("malformed access token in the Authorization header")
	}
	return tok, scheme, nil
}

// checkProof verifies the DPoP proof of a request made with the DPoP
// scheme, for this endpoint's public URL and this token (ath).
func (p *provider) checkProof(r *http.Request, e *endpoint, token string) (*dpop.Proof, *apiError) {
	raw, present, err := dpop.FromHeader(r.Header)
	switch {
	case err != nil:
		return nil, invalidProof("invalid DPoP proof", err.Error())
	case !present:
		return nil, invalidProof("the DPoP scheme needs a DPoP proof header", "no DPoP header")
	}
	proof, err := dpop.Verify(raw, dpop.Check{Method: r.Method, URL: p.url + e.Path, AccessToken: token, Now: p.now()})
	if err != nil {
		return nil, invalidProof("invalid DPoP proof", err.Error())
	}
	return proof, nil
}

// checkBinding holds a DPoP-bound token to its key (RFC 9449 §7.1): the
// DPoP scheme, and a proof signed by the key of cnf.jkt, used once.
func (p *provider) checkBinding(scheme string, proof *dpop.Proof, g *grant) *apiError {
	if !g.dpop {
		if scheme == schemeDPoP {
			return invalidToken("the access token is not DPoP-bound: send it with the Bearer scheme", schemeBearer)
		}
		return nil
	}
	if scheme != schemeDPoP {
		return invalidToken("the access token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof", schemeDPoP)
	}
	if proof.JKT != g.jkt {
		return invalidProof("the DPoP proof is not signed by the key the access token is bound to", "proof jkt is not cnf.jkt")
	}
	if !p.jtis.add(proof.JTI, proof.IssuedAt.Add(dpop.DefaultWindow), p.now()) {
		return invalidProof("the DPoP proof was already used", "replayed jti")
	}
	return nil
}

// introspect asks each broker in turn until one says the token is active.
// An answer that does not verify counts as inactive there. When none says
// active and one could not be asked, the provider cannot tell: 502.
func (p *provider) introspect(ctx context.Context, token string, rec *callRecord) (*grant, *apiError) {
	for _, b := range p.brokers {
		g, err := b.introspect(ctx, token)
		var re *refusedError
		switch {
		case err == nil && g != nil:
			rec.introspection = append(rec.introspection, b.issuer+": active")
			return g, nil
		case err == nil:
			rec.introspection = append(rec.introspection, b.issuer+": inactive")
		case errors.As(err, &re):
			rec.refusedAnAnswer = true
			rec.introspection = append(rec.introspection, b.issuer+": "+err.Error())
		default:
			rec.brokerUnreachable = true
			rec.introspection = append(rec.introspection, b.issuer+": "+err.Error())
		}
	}
	if rec.brokerUnreachable {
		return nil, &apiError{status: http.StatusBadGateway, code: "temporarily_unavailable",
			desc: "the identity broker cannot be reached to check the access token; try again later"}
	}
	return nil, invalidToken("the access token is not active (unknown, expired or revoked)", "")
}

// scopes are every scope the provider serves.
func (p *provider) scopes() []string {
	var out []string
	for _, e := range p.endpoints {
		out = append(out, e.Scopes...)
	}
	return out
}

func intersect(have, want []string) []string {
	var out []string
	for _, s := range want {
		if slices.Contains(have, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// fail answers a refusal: JSON {error, error_description}, and the
// WWW-Authenticate challenges RFC 6750 §3 and RFC 9449 §7.1 call for.
func (p *provider) fail(w http.ResponseWriter, rec *callRecord, e *apiError) {
	rec.status, rec.outcome, rec.reason = e.status, e.code, e.reason
	scheme := e.challenge
	if scheme == "" {
		scheme = rec.scheme
	}
	if scheme == "" {
		scheme = schemeBearer
	}
	h := w.Header()
	switch e.status {
	case http.StatusUnauthorized:
		// Both schemes are offered; the error goes with the one the
		// client used, or must use.
		for _, s := range []string{schemeBearer, schemeDPoP} {
			h.Add("WWW-Authenticate", p.challenge(s, e, s == scheme && !e.bare))
		}
	case http.StatusBadRequest, http.StatusForbidden:
		h.Add("WWW-Authenticate", p.challenge(scheme, e, true))
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

func (p *provider) challenge(scheme string, e *apiError, withError bool) string {
	params := []string{`realm="` + p.cfg.ID + `"`}
	if scheme == schemeDPoP {
		params = append(params, `algs="`+dpopAlgs+`"`)
	}
	if withError {
		params = append(params, `error="`+e.code+`"`, `error_description="`+e.desc+`"`)
		if e.scope != "" {
			params = append(params, `scope="`+e.scope+`"`)
		}
	}
	return scheme + " " + strings.Join(params, ", ")
}

// logCall writes the one line of a call.
func (p *provider) logCall(r *http.Request, e *endpoint, rec *callRecord) {
	level := slog.LevelInfo
	if rec.refusedAnAnswer || rec.brokerUnreachable {
		level = slog.LevelWarn
	}
	p.log.Log(r.Context(), level, "dataprovider: call",
		"dp", p.cfg.ID, "endpoint", e.Path, "status", rec.status, "outcome", rec.outcome,
		"scopes", strings.Join(rec.scopes, " "), "scheme", rec.scheme, "client_id", rec.clientID,
		"issuer", rec.issuer, "introspection", strings.Join(rec.introspection, "; "), "reason", rec.reason,
		"correlation_id", web.CorrelationID(r.Context()))
}

// writeJSON answers v, never cached: it is personal data.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// yearAnswer is one tax year of the DGFiP answer: only the fields whose
// scope was granted.
type yearAnswer struct {
	Annee                   int      `json:"annee"`
	RevenuFiscalDeReference *int     `json:"revenu_fiscal_de_reference,omitempty"`
	NombreDeParts           *float64 `json:"nombre_de_parts,omitempty"`
}

// revenuFiscal is GET /dp/dgfip/api/impot/revenu-fiscal: the last two tax
// years of the person.
func revenuFiscal(p *provider, granted []string, id pivot) (any, bool) {
	c, ok := findOne(p.data.DGFiP.Contribuables, func(c *taxpayer) []person { return []person{c.person} }, id)
	if !ok {
		return nil, false
	}
	out := struct {
		Annees []yearAnswer `json:"annees"`
	}{Annees: []yearAnswer{}}
	for _, y := range latestYears(c.Annees) {
		a := yearAnswer{Annee: y.Annee}
		if slices.Contains(granted, "dgfip_rfr") {
			a.RevenuFiscalDeReference = &y.RevenuFiscalDeReference
		}
		if slices.Contains(granted, "dgfip_nbpart") {
			a.NombreDeParts = &y.NombreDeParts
		}
		out.Annees = append(out.Annees, a)
	}
	return out, true
}

// latestYears are the two most recent tax years, latest first.
func latestYears(years []taxYear) []taxYear {
	s := slices.Clone(years)
	slices.SortFunc(s, func(a, b taxYear) int { return b.Annee - a.Annee })
	return s[:min(2, len(s))]
}

func householdOf(p *provider, id pivot) (*household, bool) {
	return findOne(p.data.CNAF.Foyers, func(h *household) []person { return h.Allocataires }, id)
}

// quotientFamilialAnswer is GET /dp/cnaf/api/prestations/quotient-familial.
func quotientFamilialAnswer(p *provider, _ []string, id pivot) (any, bool) {
	h, ok := householdOf(p, id)
	if !ok {
		return nil, false
	}
	return h.QuotientFamilial, true
}

// compositionFamiliale is GET /dp/cnaf/api/prestations/composition-familiale.
func compositionFamiliale(p *provider, _ []string, id pivot) (any, bool) {
	h, ok := householdOf(p, id)
	if !ok {
		return nil, false
	}
	out := struct {
		Allocataires []member `json:"allocataires"`
		Enfants      []member `json:"enfants"`
	}{Enfants: append([]member{}, h.Enfants...)}
	for _, a := range h.Allocataires {
		out.Allocataires = append(out.Allocataires, a.member)
	}
	return out, true
}

// jtiCache remembers the jti of each DPoP proof a provider accepted until
// the proof would be refused anyway, so that a proof is used once.
type jtiCache struct {
	mu    sync.Mutex
	until map[string]time.Time
	purge int
}

func newJTICache() *jtiCache { return &jtiCache{until: map[string]time.Time{}, purge: 1024} }

// add records jti until then and reports whether it was new.
func (c *jtiCache) add(jti string, until, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, seen := c.until[jti]; seen && now.Before(t) {
		return false
	}
	if len(c.until) >= c.purge {
		for k, t := range c.until {
			if !now.Before(t) {
				delete(c.until, k)
			}
		}
		c.purge = 2*len(c.until) + 1024
	}
	c.until[jti] = until
	return true
}
