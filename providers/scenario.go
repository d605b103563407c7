package providers

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/internal/keys"
)

// Scenario is how a mock IdP misbehaves for one login, so that the broker's
// defences can be tested against a real OIDC exchange. The zero value
// behaves correctly.
//
// A scenario is chosen on the login form (scenarioFromForm), travels in the
// code record and then in the access-token record, and is consulted at
// exactly one switch point per step:
//
//   - the redirect back to the client (Scenario.redirect),
//   - the token answer and its id_token (Scenario.token),
//   - the userinfo answer (Scenario.userinfo).
//
// Every field is independent; docs/scenarios.md lists them with the form
// field that sets each one and what the broker does about it.
type Scenario struct {
	// ACR replaces the acr the id_token asserts, whatever was asked and
	// whatever the IdP's acr_values allow; acrNone leaves the claim out.
	ACR string
	// AMR, when not nil, replaces amr (["pwd"]); OmitAMR leaves it out.
	AMR     []string
	OmitAMR bool
	// Error is sent back on the redirect instead of a code.
	Error string
	// TokenDelay is how long the token endpoint waits before answering.
	TokenDelay time.Duration
	// WrongKey signs the id_token with a key the IdP does not publish:
	// wrongKeyForged under the published kid, wrongKeyUnknownKid under a
	// kid of its own.
	WrongKey string
	// DropClaim is left out of the id_token and userinfo, or only out of
	// DropFrom ("id_token" or "userinfo") when that is set.
	DropClaim string
	DropFrom  string
	// BadCOG replaces birthplace (badCOGBirthplace) or birthcountry
	// (badCOGBirthcountry) in userinfo with a malformed COG code.
	BadCOG string
}

// The form fields a tester or a scripted client sets. Anything else named
// scenario_* is refused, so a typo never silently runs the normal flow.
const (
	fieldACR        = "scenario_acr"
	fieldAMR        = "scenario_amr"
	fieldError      = "scenario_error"
	fieldTokenDelay = "scenario_token_delay"
	fieldWrongKey   = "scenario_wrong_key"
	fieldDropClaim  = "scenario_drop_claim"
	fieldBadCOG     = "scenario_bad_cog"
)

var scenarioFields = []string{fieldACR, fieldAMR, fieldError, fieldTokenDelay, fieldWrongKey, fieldDropClaim, fieldBadCOG}

const (
	// acrNone (scenario_acr) and amrNone (scenario_amr) leave the claim out.
	acrNone = "none"
	amrNone = "none"

	wrongKeyForged     = "forged"
	wrongKeyUnknownKid = "unknown_kid"

	badCOGBirthplace   = "birthplace"
	badCOGBirthcountry = "birthcountry"
	// The malformed codes sent: one digit short of a commune code (Paris
	// 7e cut short) and of France's country code.
	badBirthplace   = "7510"
	badBirthcountry = "9910"

	// maxTokenDelay bounds scenario_token_delay: far beyond any sane
	// client timeout, yet short enough not to hold a connection for long.
	maxTokenDelay = 60 * time.Second
	// maxScenarioValue bounds every scenario field.
	maxScenarioValue = 256
	maxAMRValues     = 8
)

// scenarioErrors are the OAuth error codes scenario_error may send, in the
// order the login page offers them.
var scenarioErrors = []string{
	"access_denied", "server_error", "temporarily_unavailable",
	"login_required", "consent_required", "interaction_required", "invalid_request",
}

// idTokenDroppable and userinfoDroppable are the claims scenario_drop_claim
// may remove from each answer; a claim in both lists is removed from both
// unless the value says where ("userinfo:sub", "id_token:sub").
var (
	idTokenDroppable  = []string{"sub", "nonce", "acr", "amr", "auth_time", "at_hash", "iat", "exp", "aud", "iss", "sid"}
	userinfoDroppable = []string{"sub", "given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry", "email", "preferred_username"}
)

var (
	// claimValue is what scenario_acr and scenario_amr accept: one token
	// such as eidas9 or http://eidas.europa.eu/LoA/high, nothing that needs
	// escaping in a page or a log line.
	claimValue = regexp.MustCompile(`^[A-Za-z0-9._:/#-]{1,64}$`)
	// bareSeconds lets scenario_token_delay be "10" as well as "10s".
	bareSeconds = regexp.MustCompile(`^[0-9]{1,2}$`)
)

// scenarioError is a refused scenario field, shown on the login page (400)
// with the field named so that a scripted client's author sees the fix.
type scenarioError struct {
	Field   string
	Message string
	// MessageEN is Message in English, for the English login page; empty
	// where only French exists (the sessions page).
	MessageEN string
}

func (e *scenarioError) Error() string {
	return "Scénario de test, champ " + e.Field + " : " + e.Message
}

func badField(field, format string, args ...any) *scenarioError {
	return &scenarioError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// badFieldFREN is badField with the sentence in French and in English,
// both formatted with args.
func badFieldFREN(field, fr, en string, args ...any) *scenarioError {
	return &scenarioError{Field: field, Message: fmt.Sprintf(fr, args...), MessageEN: fmt.Sprintf(en, args...)}
}

// quoted shows a refused value, cut short so a pasted blob stays readable.
func quoted(v string) string {
	if r := []rune(v); len(r) > 40 {
		v = string(r[:40]) + "…"
	}
	return strconv.Quote(v)
}

// scenarioFromForm reads the tester's choice from the login form. Empty or
// absent fields mean correct behaviour; anything it does not understand is
// refused with a *scenarioError, never guessed at.
func scenarioFromForm(f url.Values) (Scenario, error) {
	var sc Scenario
	for _, name := range slices.Sorted(maps.Keys(f)) {
		vs := f[name]
		if strings.HasPrefix(name, "scenario_") && !slices.Contains(scenarioFields, name) {
			return Scenario{}, badFieldFREN(name, "champ inconnu ; les champs admis sont %s.", "unknown field; the fields are %s.", strings.Join(scenarioFields, ", "))
		}
		if slices.Contains(scenarioFields, name) {
			if len(vs) > 1 {
				return Scenario{}, badFieldFREN(name, "envoyé plusieurs fois ; envoyez-le une fois au plus.", "sent more than once; send it once at most.")
			}
			if len(vs[0]) > maxScenarioValue {
				return Scenario{}, badFieldFREN(name, "valeur trop longue (%d octets au plus).", "value too long (%d bytes at most).", maxScenarioValue)
			}
		}
	}
	get := func(name string) string { return strings.TrimSpace(f.Get(name)) }

	if v := get(fieldACR); v != "" {
		if !claimValue.MatchString(v) {
			return Scenario{}, badFieldFREN(fieldACR, "%s n'est pas une valeur d'acr ; attendu eidas1, eidas2, eidas3, none (claim absent) ou une autre valeur sans espace telle que eidas9 (64 caractères au plus).",
				"%s is not an acr value; expected eidas1, eidas2, eidas3, none (no claim) or another value without spaces such as eidas9 (64 characters at most).", quoted(v))
		}
		sc.ACR = v
	}

	if v := get(fieldAMR); v != "" {
		if v == amrNone {
			sc.OmitAMR = true
		} else {
			for a := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ',' || r == ' ' }) {
				switch {
				case !claimValue.MatchString(a) || a == amrNone:
					return Scenario{}, badFieldFREN(fieldAMR, "%s n'est pas une valeur d'amr ; attendu une liste séparée par des espaces ou des virgules (p. ex. « pwd » ou « mfa otp »), ou none pour omettre le claim.",
						"%s is not an amr value; expected a list separated by spaces or commas (e.g. \"pwd\" or \"mfa otp\"), or none to leave the claim out.", quoted(a))
				case slices.Contains(sc.AMR, a):
					return Scenario{}, badFieldFREN(fieldAMR, "%s est répété.", "%s is repeated.", quoted(a))
				}
				sc.AMR = append(sc.AMR, a)
			}
			if len(sc.AMR) == 0 {
				return Scenario{}, badFieldFREN(fieldAMR, "aucune valeur ; laissez le champ vide pour le comportement normal (pwd) ou envoyez none pour omettre le claim.",
					"no value; leave the field empty for the normal behaviour (pwd) or send none to leave the claim out.")
			}
			if len(sc.AMR) > maxAMRValues {
				return Scenario{}, badFieldFREN(fieldAMR, "%d valeurs au plus.", "%d values at most.", maxAMRValues)
			}
		}
	}

	if v := get(fieldError); v != "" {
		if !slices.Contains(scenarioErrors, v) {
			return Scenario{}, badFieldFREN(fieldError, "%s n'est pas proposé ; attendu l'un de %s.", "%s is not offered; expected one of %s.", quoted(v), strings.Join(scenarioErrors, ", "))
		}
		sc.Error = v
	}

	if v := get(fieldTokenDelay); v != "" {
		d, err := parseDelay(v)
		if err != nil {
			return Scenario{}, &scenarioError{Field: fieldTokenDelay, Message: quoted(v) + " : " + err.fr, MessageEN: quoted(v) + ": " + err.en}
		}
		sc.TokenDelay = d
	}

	if v := get(fieldWrongKey); v != "" {
		if v != wrongKeyForged && v != wrongKeyUnknownKid {
			return Scenario{}, badFieldFREN(fieldWrongKey, "%s n'est pas proposé ; attendu %s (clé non publiée, kid de la clé publiée) ou %s (clé et kid inconnus).",
				"%s is not offered; expected %s (unpublished key, the published key's kid) or %s (unknown key and kid).", quoted(v), wrongKeyForged, wrongKeyUnknownKid)
		}
		sc.WrongKey = v
	}

	if v := get(fieldDropClaim); v != "" {
		where, claim, scoped := strings.Cut(v, ":")
		if !scoped {
			where, claim = "", v
		}
		var ok bool
		switch where {
		case "":
			ok = slices.Contains(idTokenDroppable, claim) || slices.Contains(userinfoDroppable, claim)
		case "id_token":
			ok = slices.Contains(idTokenDroppable, claim)
		case "userinfo":
			ok = slices.Contains(userinfoDroppable, claim)
		}
		if !ok {
			return Scenario{}, badFieldFREN(fieldDropClaim, "%s n'est pas proposé ; attendu un claim de l'id_token (%s) ou de userinfo (%s), éventuellement préfixé par id_token: ou userinfo:.",
				"%s is not offered; expected a claim of the id_token (%s) or of userinfo (%s), maybe prefixed with id_token: or userinfo:.",
				quoted(v), strings.Join(idTokenDroppable, ", "), strings.Join(userinfoDroppable, ", "))
		}
		sc.DropClaim, sc.DropFrom = claim, where
	}

	if v := get(fieldBadCOG); v != "" {
		if v != badCOGBirthplace && v != badCOGBirthcountry {
			return Scenario{}, badFieldFREN(fieldBadCOG, "%s n'est pas proposé ; attendu %s (lieu de naissance %s) ou %s (pays de naissance %s).",
				"%s is not offered; expected %s (birthplace %s) or %s (birth country %s).", quoted(v), badCOGBirthplace, badBirthplace, badCOGBirthcountry, badBirthcountry)
		}
		sc.BadCOG = v
	}

	return sc, sc.conflicts()
}

// parseDelay reads a positive duration of at most maxTokenDelay: "10s",
// "1500ms", "1m" or a bare number of seconds.
func parseDelay(v string) (time.Duration, *delayError) {
	if bareSeconds.MatchString(v) {
		v += "s"
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return 0, &delayError{"attendu une durée telle que 10s, 1500ms ou 10 (secondes)", "expected a duration such as 10s, 1500ms or 10 (seconds)"}
	case d <= 0:
		return 0, &delayError{"la durée doit être positive ; laissez le champ vide pour une réponse immédiate", "the duration must be positive; leave the field empty for an immediate answer"}
	case d > maxTokenDelay:
		n := int(maxTokenDelay / time.Second)
		return 0, &delayError{fmt.Sprintf("%d s au plus", n), fmt.Sprintf("%d s at most", n)}
	}
	return d, nil
}

// delayError is parseDelay's refusal, in French and English.
type delayError struct{ fr, en string }

func (e *delayError) Error() string { return e.fr }

// conflicts refuses combinations where one field would silently cancel
// another, so that what the tester asked is what happens.
func (sc Scenario) conflicts() error {
	if sc.Error != "" {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{fieldACR, sc.ACR != ""}, {fieldAMR, sc.AMR != nil || sc.OmitAMR}, {fieldTokenDelay, sc.TokenDelay > 0},
			{fieldWrongKey, sc.WrongKey != ""}, {fieldDropClaim, sc.DropClaim != ""}, {fieldBadCOG, sc.BadCOG != ""},
		} {
			if f.set {
				return badFieldFREN(f.name, "sans effet avec %s : la connexion s'arrête au retour d'erreur, avant tout appel au jeton ; laissez l'un des deux vide.",
					"no effect with %s: the login stops at the error redirect, before any token call; leave one of them empty.", fieldError)
			}
		}
	}
	inIDToken := sc.DropFrom != "userinfo"
	inUserinfo := sc.DropFrom != "id_token"
	switch {
	case sc.ACR != "" && sc.DropClaim == "acr" && inIDToken:
		return badFieldFREN(fieldDropClaim, "acr est déjà choisi par %s (utilisez none pour l'omettre).", "acr is chosen by %s already (use none to leave it out).", fieldACR)
	case (sc.AMR != nil || sc.OmitAMR) && sc.DropClaim == "amr" && inIDToken:
		return badFieldFREN(fieldDropClaim, "amr est déjà choisi par %s (utilisez none pour l'omettre).", "amr is chosen by %s already (use none to leave it out).", fieldAMR)
	case sc.BadCOG != "" && sc.DropClaim == sc.BadCOG && inUserinfo:
		return badFieldFREN(fieldDropClaim, "%s ne peut pas être à la fois omis et faux (%s).", "%s cannot be both left out and wrong (%s).", sc.DropClaim, fieldBadCOG)
	}
	return nil
}

// isZero reports the correct behaviour.
func (sc Scenario) isZero() bool { return reflect.ValueOf(sc).IsZero() }

// String sums the scenario up for the log.
func (sc Scenario) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("acr", sc.ACR)
	if sc.OmitAMR {
		add("amr", amrNone)
	} else {
		add("amr", strings.Join(sc.AMR, " "))
	}
	add("error", sc.Error)
	if sc.TokenDelay > 0 {
		add("token_delay", sc.TokenDelay.String())
	}
	add("wrong_key", sc.WrongKey)
	if sc.DropFrom != "" {
		add("drop_claim", sc.DropFrom+":"+sc.DropClaim)
	} else {
		add("drop_claim", sc.DropClaim)
	}
	add("bad_cog", sc.BadCOG)
	return strings.Join(parts, " ")
}

// redirect may alter the parameters of the redirect to the client: with
// Error, an OAuth error (with state and iss, RFC 9207) instead of a code.
func (sc Scenario) redirect(q url.Values) {
	if sc.Error == "" {
		return
	}
	q.Del("code")
	q.Set("error", sc.Error)
	q.Set("error_description", "test scenario: the mock identity provider answers "+sc.Error)
}

// tokenStep is what the token endpoint is about to do, exposed to the
// scenario whole so that a fault can change the claims, the key, the
// algorithm or the timing without another hook.
type tokenStep struct {
	Claims idTokenClaims
	// Omit lists id_token claims left out of the signed payload.
	Omit   []string
	Signer keys.Signer
	Alg    jose.SignatureAlgorithm
	// Delay is waited before answering.
	Delay time.Duration
	// Err, when set, is answered instead of tokens.
	Err *oauthError
}

// payload is what gets signed: the claims, less those in Omit.
func (step *tokenStep) payload() (any, error) {
	if len(step.Omit) == 0 {
		return step.Claims, nil
	}
	raw, err := json.Marshal(step.Claims)
	if err != nil {
		return nil, err
	}
	// Each value stays the JSON it was, so exp and iat remain numbers,
	// digit for digit (go-jose re-encodes a json.Number as a string).
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	m := make(map[string]any, len(fields))
	for k, v := range fields {
		m[k] = v
	}
	for _, c := range step.Omit {
		delete(m, c)
	}
	return m, nil
}

// token may alter the token answer.
func (sc Scenario) token(step *tokenStep) {
	switch {
	case sc.ACR == acrNone:
		step.Omit = append(step.Omit, "acr")
	case sc.ACR != "":
		step.Claims.ACR = sc.ACR
	}
	switch {
	case sc.OmitAMR:
		step.Omit = append(step.Omit, "amr")
	case sc.AMR != nil:
		step.Claims.AMR = slices.Clone(sc.AMR)
	}
	if sc.DropClaim != "" && sc.DropFrom != "userinfo" && slices.Contains(idTokenDroppable, sc.DropClaim) {
		step.Omit = append(step.Omit, sc.DropClaim)
	}
	step.Delay = sc.TokenDelay
	if sc.WrongKey != "" {
		s, err := newRogueSigner(step.Signer, step.Alg, sc.WrongKey == wrongKeyForged)
		if err != nil {
			step.Err = &oauthError{Code: "server_error"}
			return
		}
		step.Signer = s
	}
}

// userinfo may alter the claims userinfo returns. A bad COG code replaces
// a claim the scopes released; it adds none.
func (sc Scenario) userinfo(claims map[string]any) {
	if sc.DropClaim != "" && sc.DropFrom != "id_token" {
		delete(claims, sc.DropClaim)
	}
	switch sc.BadCOG {
	case badCOGBirthplace:
		if _, ok := claims["birthplace"]; ok {
			claims["birthplace"] = badBirthplace
		}
	case badCOGBirthcountry:
		if _, ok := claims["birthcountry"]; ok {
			claims["birthcountry"] = badBirthcountry
		}
	}
}

// rogueSigner signs with a fresh key that no JWKS publishes: a forgery
// when it reuses the IdP's published kid, a stranger's token otherwise.
type rogueSigner struct {
	key jose.JSONWebKey
}

func newRogueSigner(published keys.Signer, alg jose.SignatureAlgorithm, keepKid bool) (*rogueSigner, error) {
	k, err := keys.NewKey(alg)
	if err != nil {
		return nil, err
	}
	if keepKid {
		i := slices.IndexFunc(published.PublicJWKS().Keys, func(p jose.JSONWebKey) bool { return p.Algorithm == string(alg) })
		if i < 0 {
			return nil, fmt.Errorf("providers: no published %s key", alg)
		}
		k.KeyID = published.PublicJWKS().Keys[i].KeyID
	}
	return &rogueSigner{key: k}, nil
}

// SignJWT implements keys.Signer.
func (s *rogueSigner) SignJWT(alg jose.SignatureAlgorithm, typ string, claims any) (string, error) {
	if typ == "" {
		typ = "JWT"
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", s.key.KeyID)
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: s.key.Key}, opts)
	if err != nil {
		return "", err
	}
	return jwt.Signed(sig).Claims(claims).Serialize()
}

// PublicJWKS implements keys.Signer; nothing ever serves it.
func (s *rogueSigner) PublicJWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{s.key.Public()}}
}
