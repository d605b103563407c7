// Package authreq parses and validates an SP's authorization request. It is
// pure (no I/O) so every rule is unit-tested and fuzzed directly.
package authreq

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sesame-id/sesame/broker/acr"
	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/config"
)

// Request is a validated authorization request, kept in the session until
// the code is issued.
type Request struct {
	ClientID      string   `json:"client_id"`
	RedirectURI   string   `json:"redirect_uri"`
	State         string   `json:"state,omitempty"`
	Nonce         string   `json:"nonce,omitempty"`
	Scopes        []string `json:"scopes"`
	ACR           string   `json:"acr"`
	ACREssential  bool     `json:"acr_essential,omitempty"`
	CodeChallenge string   `json:"code_challenge,omitempty"`
	Prompt        []string `json:"prompt,omitempty"`
	// MaxAge is -1 when absent.
	MaxAge int `json:"max_age"`
	// Claims lists individual claims asked through the claims parameter,
	// by destination ("id_token" or "userinfo").
	IDTokenClaims  []string `json:"id_token_claims,omitempty"`
	UserinfoClaims []string `json:"userinfo_claims,omitempty"`
	IDPHint        string   `json:"idp_hint,omitempty"`
	UILocales      string   `json:"ui_locales,omitempty"`
	// DPoPJKT binds the code to a DPoP key (RFC 9449 §10): the
	// dpop_jkt parameter, or the key of the proof sent at PAR.
	DPoPJKT string `json:"dpop_jkt,omitempty"`
}

// HasPrompt reports whether the SP sent prompt value p.
func (r *Request) HasPrompt(p string) bool { return slices.Contains(r.Prompt, p) }

// Policy is what a platform decides about requests.
type Policy struct {
	ACRValues     []string
	DefaultACR    string
	NonceRequired bool
	// ACRErrorCode is the error for a level outside the platform:
	// invalid_request unless FranceConnect's invalid_acr is wanted.
	ACRErrorCode string
	// DataScopes are the scopes of the data-scope catalogue.
	DataScopes []string
	// PKCERequired refuses a request without a code_challenge (FAPI 2.0).
	PKCERequired bool
	// Pushed is set when the request came through PAR (RFC 9126), where
	// request_uri itself is refused.
	Pushed bool
}

// Registry finds a registered SP by client_id.
type Registry interface {
	Client(clientID string) (*config.SP, bool)
}

// Limits on what we accept. They are generous for real SPs and keep a
// hostile request from costing memory in the session.
const (
	maxClientID  = 256
	maxState     = 1024
	maxNonce     = 512
	maxACRValues = 512
	maxClaims    = 8 << 10
	maxHint      = 256
)

var (
	challengeRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
	knownPrompt = []string{"none", "login", "consent", "select_account"}
)

// Parse validates q against the registry and policy. Errors that come
// before the client and redirect_uri are trusted never redirect; the rest
// carry what is needed to go back to the SP (the parsed client, redirect_uri
// and state are returned with them).
func Parse(q url.Values, reg Registry, pol Policy) (*Request, *config.SP, *oidcerr.Error) {
	r := &Request{MaxAge: -1}

	// 1. The client and its redirect_uri: until both hold, we cannot
	// redirect anywhere.
	for _, p := range []string{"client_id", "redirect_uri"} {
		if len(q[p]) > 1 {
			return nil, nil, oidcerr.Newf(oidcerr.InvalidRequest, "%s is repeated", p).Page()
		}
	}
	r.ClientID = q.Get("client_id")
	if r.ClientID == "" || len(r.ClientID) > maxClientID {
		return nil, nil, oidcerr.New(oidcerr.InvalidRequest, "client_id is missing or invalid").Page()
	}
	sp, ok := reg.Client(r.ClientID)
	if !ok || !sp.IsActive() {
		return nil, nil, oidcerr.New(oidcerr.InvalidClient, "unknown client_id").Page()
	}
	r.RedirectURI = q.Get("redirect_uri")
	if !slices.Contains(sp.RedirectURIs, r.RedirectURI) {
		return nil, sp, oidcerr.New(oidcerr.InvalidRequest, "redirect_uri is not registered for this client").Page()
	}

	// 2. state next, so every later error can carry it back. A state we
	// refuse is not echoed.
	if len(q["state"]) > 1 {
		return r, sp, oidcerr.New(oidcerr.InvalidRequest, "state is repeated")
	}
	state := q.Get("state")
	if printable(state) && len(state) <= maxState {
		r.State = state
	}
	// Unsupported request objects are answered first: their state may be
	// inside the object, which we do not read (OIDC Core §6).
	if q.Has("request") {
		return r, sp, oidcerr.New(oidcerr.RequestNotSupported, "request objects are not supported")
	}
	if q.Has("request_uri") {
		if pol.Pushed {
			return r, sp, oidcerr.New(oidcerr.InvalidRequest, "request_uri cannot be pushed")
		}
		return r, sp, oidcerr.New(oidcerr.RequestURINotSupported, "request_uri is only taken as issued by this provider's pushed authorization request endpoint")
	}
	r.State = ""
	switch {
	case state == "":
		return r, sp, oidcerr.New(oidcerr.InvalidRequest, "state is required")
	case len(state) > maxState || !printable(state):
		return r, sp, oidcerr.Newf(oidcerr.InvalidRequest, "state must be at most %d printable characters", maxState)
	}
	r.State = state

	// 3. Everything else goes back to the SP.
	for p, vs := range q {
		if len(vs) > 1 {
			return r, sp, oidcerr.Newf(oidcerr.InvalidRequest, "parameter %s is repeated", safeName(p))
		}
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return r, sp, oidcerr.New(oidcerr.InvalidRequest, "response_type is required")
	default:
		return r, sp, oidcerr.New(oidcerr.UnsupportedResponseType, "only response_type=code is supported")
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return r, sp, oidcerr.New(oidcerr.InvalidRequest, "only response_mode=query is supported")
	}

	scopes := strings.Fields(q.Get("scope"))
	if !slices.Contains(scopes, "openid") {
		return r, sp, oidcerr.New(oidcerr.InvalidScope, "scope must contain openid")
	}
	// Unknown or unregistered identity scopes are dropped, not refused:
	// OIDC says to ignore what is not understood. A data scope of the
	// catalogue that this SP was not granted is refused (FranceConnect's
	// "requested scope is not allowed"): asking for someone's tax data
	// without the right to is no request to ignore silently.
	for _, s := range scopes {
		if slices.Contains(pol.DataScopes, s) && !slices.Contains(sp.Scopes, s) {
			return r, sp, oidcerr.Newf(oidcerr.InvalidScope, "scope %s is not allowed for this client", s)
		}
	}
	for _, s := range scopes {
		if slices.Contains(sp.Scopes, s) && !slices.Contains(r.Scopes, s) {
			r.Scopes = append(r.Scopes, s)
		}
	}

	nonce := q.Get("nonce")
	switch {
	case nonce == "" && pol.NonceRequired:
		return r, sp, oidcerr.New(oidcerr.InvalidRequest, "nonce is required")
	case len(nonce) > maxNonce || !printable(nonce):
		return r, sp, oidcerr.Newf(oidcerr.InvalidRequest, "nonce must be at most %d printable characters", maxNonce)
	}
	r.Nonce = nonce

	if err := r.parsePrompt(q.Get("prompt")); err != nil {
		return r, sp, err
	}
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1<<30 {
			return r, sp, oidcerr.New(oidcerr.InvalidRequest, "max_age must be a non-negative integer of seconds")
		}
		r.MaxAge = n
	}

	if err := r.parseChallenge(q); err != nil {
		return r, sp, err
	}
	if pol.PKCERequired && r.CodeChallenge == "" {
		return r, sp, oidcerr.New(oidcerr.InvalidRequest, "code_challenge (PKCE, S256) is required on this platform")
	}
	if err := r.parseClaims(q.Get("claims")); err != nil {
		return r, sp, err
	}

	values := q.Get("acr_values")
	if len(values) > maxACRValues {
		return r, sp, oidcerr.New(oidcerr.InvalidRequest, "acr_values is too long")
	}
	level, outside := acr.Choose(values, pol.ACRValues, pol.DefaultACR)
	if outside {
		code := pol.ACRErrorCode
		if code == "" {
			code = oidcerr.InvalidRequest
		}
		return r, sp, oidcerr.Newf(code, "acr_values: %s is not offered on this platform (offered: %s)", level, strings.Join(pol.ACRValues, " "))
	}
	r.ACR = level

	for _, p := range []string{"idp_hint", "ui_locales", "login_hint"} {
		if v := q.Get(p); len(v) > maxHint || !printable(v) {
			return r, sp, oidcerr.Newf(oidcerr.InvalidRequest, "%s must be at most %d printable characters", p, maxHint)
		}
	}
	r.IDPHint = q.Get("idp_hint")
	r.UILocales = q.Get("ui_locales")
	// dpop_jkt is a JWK SHA-256 thumbprint: 43 base64url characters.
	if jkt := q.Get("dpop_jkt"); jkt != "" {
		if !jktRE.MatchString(jkt) {
			return r, sp, oidcerr.New(oidcerr.InvalidRequest, "dpop_jkt must be a base64url SHA-256 JWK thumbprint")
		}
		r.DPoPJKT = jkt
	}
	return r, sp, nil
}

var jktRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func (r *Request) parsePrompt(v string) *oidcerr.Error {
	for _, p := range strings.Fields(v) {
		if !slices.Contains(knownPrompt, p) {
			return oidcerr.New(oidcerr.InvalidRequest, "prompt accepts none, login, consent and select_account")
		}
		if !slices.Contains(r.Prompt, p) {
			r.Prompt = append(r.Prompt, p)
		}
	}
	if r.HasPrompt("none") && len(r.Prompt) > 1 {
		return oidcerr.New(oidcerr.InvalidRequest, "prompt=none cannot be combined with another value")
	}
	return nil
}

// parseChallenge accepts PKCE S256 only: plain, or a challenge without a
// method (which RFC 7636 reads as plain), would let a stolen code be
// redeemed with the challenge itself.
func (r *Request) parseChallenge(q url.Values) *oidcerr.Error {
	ch, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case ch == "" && method == "":
		return nil
	case ch == "":
		return oidcerr.New(oidcerr.InvalidRequest, "code_challenge_method without code_challenge")
	case method != "S256":
		return oidcerr.New(oidcerr.InvalidRequest, "code_challenge_method must be S256")
	case !challengeRE.MatchString(ch):
		return oidcerr.New(oidcerr.InvalidRequest, "code_challenge must be 43 to 128 unreserved characters")
	}
	r.CodeChallenge = ch
	return nil
}

// claimRequest is one entry of the claims parameter (OIDC Core §5.5.1).
type claimRequest struct {
	Essential bool     `json:"essential"`
	Value     *string  `json:"value"`
	Values    []string `json:"values"`
}

func (r *Request) parseClaims(v string) *oidcerr.Error {
	if v == "" {
		return nil
	}
	if len(v) > maxClaims {
		return oidcerr.New(oidcerr.InvalidRequest, "claims is too long")
	}
	var c struct {
		IDToken  map[string]*claimRequest `json:"id_token"`
		Userinfo map[string]*claimRequest `json:"userinfo"`
	}
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return oidcerr.New(oidcerr.InvalidRequest, "claims is not a valid JSON claims request")
	}
	for name, cr := range c.IDToken {
		if !validClaimName(name) {
			return oidcerr.New(oidcerr.InvalidRequest, "claims names an invalid claim")
		}
		r.IDTokenClaims = append(r.IDTokenClaims, name)
		if name == "acr" && cr != nil && cr.Essential {
			r.ACREssential = true
		}
	}
	for name := range c.Userinfo {
		if !validClaimName(name) {
			return oidcerr.New(oidcerr.InvalidRequest, "claims names an invalid claim")
		}
		r.UserinfoClaims = append(r.UserinfoClaims, name)
	}
	slices.Sort(r.IDTokenClaims)
	slices.Sort(r.UserinfoClaims)
	return nil
}

var claimNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

func validClaimName(s string) bool { return claimNameRE.MatchString(s) }

// printable accepts visible ASCII and space, and valid UTF-8 letters, but no
// control characters (CR, LF, TAB, NUL) that could split headers or logs.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// safeName keeps a parameter name fit for an error_description: known
// names as they are, anything else replaced so no input is reflected.
func safeName(p string) string {
	if regexp.MustCompile(`^[a-z_]{1,32}$`).MatchString(p) {
		return p
	}
	return "(unnamed)"
}
