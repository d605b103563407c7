package providers

import (
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/web"
)

// pendingLogin is a validated authorization request waiting for the tester
// to pick an identity. It stays server-side: the login form carries only
// the random id it is stored under, so nothing in the page can be edited to
// change the client, the redirect or the level.
type pendingLogin struct {
	ClientID      string
	RedirectURI   string
	State         string
	Nonce         string
	CodeChallenge string
	Scopes        []string
	// RequestedACR is acr_values as sent, shown to the tester; ACR is the
	// level this login will assert.
	RequestedACR string
	ACR          string
	// Lang is the login page's language, "fr" or "en": from ui_locales,
	// else Accept-Language, at the authorization request; the page's
	// language switch changes it.
	Lang string
}

// codeRecord is what an authorization code stands for until it is redeemed.
type codeRecord struct {
	pendingLogin
	IdentityID string
	AuthTime   time.Time
	SID        string
	Scenario   Scenario
}

// loginRecord is a completed login, kept so that end_session or the
// sessions page can end it and userinfo can refuse the tokens of an ended
// login. It is stored under its sid, the one its id_token carries.
type loginRecord struct {
	ClientID   string
	IdentityID string
	// Subject is the sub the client was given, which a logout token repeats.
	Subject  string
	AuthTime time.Time
}

// Limits on authorization parameters: generous for real clients, small
// enough that nothing a tester pastes can bloat the store or the page.
const (
	maxParamLen = 2048
	maxNonceLen = 512
)

var (
	// S256 challenges are base64url SHA-256 digests: exactly 43 characters.
	s256Challenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	// scopeToken is RFC 6749's scope-token character set.
	scopeToken = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]+$`)
)

// authorize validates an authorization request and shows the login page.
// Errors that cannot safely go back to the client (unknown client, wrong
// redirect_uri) are shown here; all others are redirected, per RFC 6749.
func (s *Server) authorize(idp *mockIdP, w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	client, redirectURI, perr := idp.checkClient(q)
	if perr != nil {
		s.pages.RenderError(w, r, *perr)
		return
	}
	state := q.Get("state")
	p, oerr := idp.parseAuthRequest(q)
	if oerr == nil && slices.Contains(strings.Fields(q.Get("prompt")), "none") {
		// The mock keeps no session, so it can never log in silently.
		oerr = &oauthError{Code: "login_required", Description: "this mock IdP keeps no session; prompt=none cannot succeed"}
	}
	if oerr != nil {
		idp.redirectError(w, r, redirectURI, state, oerr)
		return
	}
	p.ClientID, p.RedirectURI = client.ClientID, redirectURI
	p.Lang = web.PreferredLang(r)
	tx := newSecret()
	if err := idp.pending.put(hashKey(tx), p, pendingTTL); err != nil {
		s.pages.RenderError(w, r, errBusy)
		return
	}
	s.renderLogin(w, r, idp, http.StatusOK, tx, p, "", "")
}

// checkClient resolves client_id and redirect_uri. Both must be present
// exactly once and the redirect_uri must match a registered one byte for
// byte: prefix or normalised matching is how open redirects happen.
func (idp *mockIdP) checkClient(q url.Values) (config.MockClient, string, *web.Error) {
	if len(q["client_id"]) != 1 || len(q["redirect_uri"]) != 1 {
		return config.MockClient{}, "", &errBadClient
	}
	client, ok := idp.clients[q.Get("client_id")]
	if !ok {
		return config.MockClient{}, "", &errBadClient
	}
	redirectURI := q.Get("redirect_uri")
	if !slices.Contains(client.RedirectURIs, redirectURI) {
		return config.MockClient{}, "", &errBadRedirect
	}
	return client, redirectURI, nil
}

// parseAuthRequest checks everything but the client and the redirect_uri.
func (idp *mockIdP) parseAuthRequest(q url.Values) (pendingLogin, *oauthError) {
	invalid := func(desc string) (pendingLogin, *oauthError) {
		return pendingLogin{}, &oauthError{Code: "invalid_request", Description: desc}
	}
	for name, vs := range q {
		if len(vs) > 1 {
			return invalid(name + " is repeated")
		}
		if len(vs[0]) > maxParamLen {
			return invalid(name + " is too long")
		}
	}
	if q.Has("request") {
		return pendingLogin{}, &oauthError{Code: "request_not_supported", Description: "request objects are not supported"}
	}
	if q.Has("request_uri") {
		return pendingLogin{}, &oauthError{Code: "request_uri_not_supported", Description: "request_uri is not supported"}
	}
	if rt := q.Get("response_type"); rt != "code" {
		if rt == "" {
			return invalid("response_type is required")
		}
		return pendingLogin{}, &oauthError{Code: "unsupported_response_type", Description: "only response_type=code is supported"}
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return invalid("only response_mode=query is supported")
	}
	scopes, oerr := parseScopes(q.Get("scope"))
	if oerr != nil {
		return pendingLogin{}, oerr
	}
	p := pendingLogin{State: q.Get("state"), Nonce: q.Get("nonce"), Scopes: scopes}
	if p.State == "" {
		return invalid("state is required")
	}
	if p.Nonce == "" {
		return invalid("nonce is required")
	}
	if len(p.Nonce) > maxNonceLen {
		return invalid("nonce is too long")
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return invalid("code_challenge_method without code_challenge")
	case challenge != "" && method != "S256":
		// A missing method means plain (RFC 7636), which gives no protection
		// against a leaked authorization request.
		return invalid("only code_challenge_method=S256 is supported")
	case challenge != "" && !s256Challenge.MatchString(challenge):
		return invalid("code_challenge is not a base64url SHA-256 digest")
	}
	p.CodeChallenge = challenge
	p.RequestedACR = q.Get("acr_values")
	for _, a := range strings.Fields(p.RequestedACR) {
		if !scopeToken.MatchString(a) {
			return invalid("acr_values holds an invalid character")
		}
	}
	p.ACR = chooseACR(idp.cfg.ACRValues, p.RequestedACR)
	return p, nil
}

// parseScopes requires openid and keeps the scopes the mock knows, in
// request order; unknown ones are dropped as RFC 6749 allows.
func parseScopes(scope string) ([]string, *oauthError) {
	var out []string
	for _, sc := range strings.Fields(scope) {
		if !scopeToken.MatchString(sc) {
			return nil, &oauthError{Code: "invalid_scope", Description: "scope holds an invalid character"}
		}
		if _, known := scopeClaims[sc]; known && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if !slices.Contains(out, "openid") {
		return nil, &oauthError{Code: "invalid_scope", Description: "scope must contain openid"}
	}
	return out, nil
}

// chooseACR picks the level to assert: the highest requested level the IdP
// supports or, when it supports none of them (or none was asked), its
// lowest level. Levels rank as in config.KnownACR. A real IdP behaves the
// same way, and answering below the request is what lets the broker's
// "acr too low" check be exercised.
func chooseACR(supported []string, requested string) string {
	rank := func(a string) int { return slices.Index(config.KnownACR, a) }
	best := ""
	for _, a := range strings.Fields(requested) {
		if slices.Contains(supported, a) && (best == "" || rank(a) > rank(best)) {
			best = a
		}
	}
	if best != "" {
		return best
	}
	lowest := supported[0]
	for _, a := range supported[1:] {
		if rank(a) >= 0 && (rank(lowest) < 0 || rank(a) < rank(lowest)) {
			lowest = a
		}
	}
	return lowest
}

// login handles the login form: the chosen identity gets a code, "cancel"
// gets access_denied. Both go back to the client with state and iss.
func (s *Server) login(idp *mockIdP, w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.pages.RenderError(w, r, errBadForm)
		return
	}
	f := r.PostForm
	tx := f.Get("tx")
	p, ok := idp.pending.get(hashKey(tx))
	if tx == "" || !ok {
		s.pages.RenderError(w, r, errExpired)
		return
	}
	if f.Get("action") == "cancel" {
		if _, ok := idp.pending.take(hashKey(tx)); !ok {
			s.pages.RenderError(w, r, errExpired)
			return
		}
		idp.redirectError(w, r, p.RedirectURI, p.State,
			&oauthError{Code: "access_denied", Description: "the user cancelled the login"})
		return
	}
	if lang, ok := f[fieldLang]; ok && f.Get("action") == "" {
		// The language switch: the same page in the other language.
		p.Lang = pageLang(strings.TrimSpace(lang[0]))
		if err := idp.pending.put(hashKey(tx), p, pendingTTL); err != nil {
			s.pages.RenderError(w, r, errBusy)
			return
		}
		s.renderLogin(w, r, idp, http.StatusOK, tx, p, "", "")
		return
	}
	ident, ok := s.byID[f.Get("identity")]
	if typed := strings.TrimSpace(f.Get(fieldIdentityID)); typed != "" {
		// Typed in the short form: it wins over the radio buttons, one
		// of which is always checked.
		if ident, ok = s.byID[typed]; !ok {
			s.renderLoginPage(w, r, idp, http.StatusBadRequest, tx, p, "",
				tr(p.Lang, "Aucune identité de test n'a l'identifiant ", "No test identity has the id ")+quoted(typed)+
					tr(p.Lang, " : choisissez-en une dans la liste.", ": pick one from the list."), f, "")
			return
		}
	}
	if !ok {
		s.renderLogin(w, r, idp, http.StatusBadRequest, tx, p, "",
			tr(p.Lang, "Choisissez une identité de test dans la liste.", "Pick a test identity from the list."))
		return
	}
	err := applyPreset(f)
	var sc Scenario
	if err == nil {
		sc, err = scenarioFromForm(f)
	}
	if err != nil {
		s.renderScenarioError(w, r, idp, tx, p, ident.ID, f, err)
		return
	}
	// Taking the transaction now, not at the start, lets a form sent
	// without a choice be shown again; of two racing submits one wins.
	if _, ok := idp.pending.take(hashKey(tx)); !ok {
		s.pages.RenderError(w, r, errExpired)
		return
	}
	sid, code := newSecret(), newSecret()
	rec := codeRecord{pendingLogin: p, IdentityID: ident.ID, AuthTime: s.now(), SID: sid, Scenario: sc}
	login := loginRecord{ClientID: p.ClientID, IdentityID: ident.ID, Subject: idp.subject(ident.ID), AuthTime: rec.AuthTime}
	if idp.logins.put(sid, login, loginTTL) != nil ||
		idp.codes.put(hashKey(code), rec, codeTTL) != nil {
		s.pages.RenderError(w, r, errBusy)
		return
	}
	if !sc.isZero() {
		slog.InfoContext(r.Context(), "providers: login with a test scenario", "idp", idp.cfg.ID, "client_id", p.ClientID, "scenario", sc.String())
	}
	params := url.Values{"code": {code}, "state": {p.State}, "iss": {idp.issuer}}
	sc.redirect(params)
	if !params.Has("code") {
		// The scenario answered an error: nothing was issued after all.
		idp.codes.delete(hashKey(code))
		idp.logins.delete(sid)
	}
	redirectWith(w, r, p.RedirectURI, params)
}

// redirectError sends an OAuth error back to a validated redirect_uri, with
// iss so the client can tell which IdP answered (RFC 9207).
func (idp *mockIdP) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state string, e *oauthError) {
	params := url.Values{"error": {e.Code}, "iss": {idp.issuer}}
	if e.Description != "" {
		params.Set("error_description", e.Description)
	}
	if state != "" {
		params.Set("state", state)
	}
	redirectWith(w, r, redirectURI, params)
}

// redirectWith adds params to target's query (keeping the registered URI's
// own query) and answers 303, so the browser follows with a GET even from a
// form POST.
func redirectWith(w http.ResponseWriter, r *http.Request, target string, params url.Values) {
	u, err := url.Parse(target)
	if err != nil { // target is always a registered URI; guard anyway
		http.Error(w, "bad redirect", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}
