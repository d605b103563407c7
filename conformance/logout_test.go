package conformance

// oidcc-rp-initiated-logout-certification-test-plan, against
// end_session_endpoint (RP-Initiated Logout 1.0). Each module logs in
// first; those that expect the logout to happen then send a prompt=none
// authorization request, which must fail with an error that needs a user
// interface (AbstractOIDCCRpInitiatedLogout).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/broker/teststack"
)

// The broker's pages, told apart by their markers.
const (
	confirmMarker   = `id="confirm-logout"`
	loggedOutMarker = `id="logged-out"`
)

// uiErrors is CheckErrorFromAuthorizationEndpointIsOneThatRequiredAUserInterface.
var uiErrors = []string{"login_required", "interaction_required", "consent_required", "account_selection_required"}

// loggedIn is the plan's first step: a normal login.
func loggedIn(t *testing.T) (*rp, tokens) {
	t.Helper()
	r := newRP(t)
	return r, r.flow(t, params(pivot), person)
}

// logoutRequest is CreateEndSessionEndpointRequest: id_token_hint,
// post_logout_redirect_uri and a 128-character state (the suite uses a long
// one to check the OP does not corrupt it).
func logoutRequest(tk tokens) url.Values {
	return url.Values{"id_token_hint": {tk.raw}, "post_logout_redirect_uri": {postLogout}, "state": {strings.Repeat(random(), 5)[:128]}}
}

// endSession sends the browser to end_session_endpoint and follows it.
func (r *rp) endSession(t *testing.T, q url.Values) landing {
	t.Helper()
	ep, _ := r.meta["end_session_endpoint"].(string)
	if ep == "" {
		t.Fatal("no end_session_endpoint in discovery")
	}
	if len(q) > 0 {
		ep += "?" + q.Encode()
	}
	resp, body := teststack.Get(t, r.s.Browser, ep)
	return follow(t, r.s.Browser, ep, resp, body)
}

// loggedOut is the plan's second authorization: prompt=none must now fail.
func (r *rp) loggedOut(t *testing.T) {
	t.Helper()
	p := params(pivot)
	p.Set("prompt", "none")
	r.errorFrom(t, toSP(t, r.authorize(t, p)), uiErrors, p.Get("state"))
}

// stillLoggedIn asserts a refused logout request changed nothing: the
// session still answers prompt=none for the same person.
func (r *rp) stillLoggedIn(t *testing.T, sub string) {
	t.Helper()
	p := params(pivot)
	p.Set("prompt", "none")
	u := toSP(t, r.authorize(t, p))
	if tk := r.exchange(t, r.basic, r.codeFrom(t, u, p.Get("state")), p.Get("nonce")); tk.sub() != sub {
		t.Errorf("sub %s after a refused logout, want %s", tk.sub(), sub)
	}
}

// backAt asserts the browser landed at postLogout with exactly want as
// query (CheckPostLogoutState, CheckForUnexpectedParametersInPostLogoutRedirect).
func backAt(t *testing.T, l landing, want url.Values) {
	t.Helper()
	if l.SP == nil {
		t.Fatalf("not sent back to %s: ended at %s (%d)", postLogout, l.URL, l.Status)
	}
	if base := l.SP.Scheme + "://" + l.SP.Host + l.SP.Path; base != postLogout || l.SP.Fragment != "" {
		t.Fatalf("sent to %s, want %s", l.SP, postLogout)
	}
	if got := l.SP.Query(); !equalValues(got, want) {
		t.Errorf("post-logout redirect query = %v, want %v", got, want)
	}
}

func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// refused asserts the OP did not redirect back and showed an error page or,
// when allowed, a confirmation; it returns which.
func refused(t *testing.T, l landing, allowConfirm bool) string {
	t.Helper()
	switch {
	case l.SP != nil:
		t.Fatalf("redirected back to the SP: %s", l.SP)
	case l.Status == http.StatusOK && strings.Contains(l.Body, confirmMarker):
		if !allowConfirm {
			t.Errorf("a confirmation page where the suite wants an error page")
		}
		return "confirm"
	case l.Status == http.StatusOK && strings.Contains(l.Body, loggedOutMarker):
		t.Fatalf("logged out silently (no error, no confirmation) at %s", l.URL)
	case l.Status >= 400 && l.Status < 500:
		return "error"
	default:
		t.Fatalf("ended at %s with %d, want an error page", l.URL, l.Status)
	}
	return ""
}

// loggedOutPage asserts the browser ended on the "you are logged out"
// page, not at the SP.
func loggedOutPage(t *testing.T, l landing) {
	t.Helper()
	if l.SP != nil {
		t.Fatalf("redirected to %s though no post_logout_redirect_uri was given", l.SP)
	}
	if l.Status != http.StatusOK || !strings.Contains(l.Body, loggedOutMarker) {
		t.Fatalf("ended at %s with %d, want the logged-out page", l.URL, l.Status)
	}
}

// oidcc-rp-initiated-logout.
func TestOidccRpInitiatedLogout(t *testing.T) {
	t.Parallel()
	r, tk := loggedIn(t)
	q := logoutRequest(tk)
	backAt(t, r.endSession(t, q), url.Values{"state": {q.Get("state")}})
	r.loggedOut(t)
}

// oidcc-rp-initiated-logout-bad-id-token-hint: a hint signed by the test
// suite's own key (GenerateFakeIdTokenClaims, SignFakeIdToken) gets an
// error page.
func TestOidccRpInitiatedLogoutBadIdTokenHint(t *testing.T) {
	t.Parallel()
	r, tk := loggedIn(t)
	h := r.checkSignature(t, tk.raw, "")
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, kid := range map[string]string{"own kid": "suite-key", "broker's kid": h.KeyID} {
		t.Run(name, func(t *testing.T) {
			sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
			if err != nil {
				t.Fatal(err)
			}
			fake, err := jwt.Signed(sig).Claims(tk.claims).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			q := logoutRequest(tk)
			q.Set("id_token_hint", fake)
			refused(t, r.endSession(t, q), false)
			r.stillLoggedIn(t, tk.sub())
		})
	}
}

// oidcc-rp-initiated-logout-bad-post-logout-redirect-uri: an unregistered
// post_logout_redirect_uri is never redirected to.
func TestOidccRpInitiatedLogoutBadPostLogoutRedirectUri(t *testing.T) {
	t.Parallel()
	r, tk := loggedIn(t)
	for _, bad := range []string{"https://sp.example/" + strings.ToLower(random()), "https://sp.example/bye/", "https://evil.example/bye"} {
		q := logoutRequest(tk)
		q.Set("post_logout_redirect_uri", bad)
		if refused(t, r.endSession(t, q), true) == "error" {
			r.stillLoggedIn(t, tk.sub())
		}
	}
}

// oidcc-rp-initiated-logout-modified-id-token-hint: the hint changed to
// alg none (ChangeIdTokenToAlgNone), or its payload changed under the
// original signature.
func TestOidccRpInitiatedLogoutModifiedIdTokenHint(t *testing.T) {
	t.Parallel()
	r, tk := loggedIn(t)
	parts := strings.Split(tk.raw, ".")
	enc := base64.RawURLEncoding.EncodeToString
	other := map[string]any{}
	for k, v := range tk.claims {
		other[k] = v
	}
	other["sub"] = strings.ToLower(random())
	payload, _ := json.Marshal(other)
	for name, hint := range map[string]string{
		"alg none":         enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		"payload modified": parts[0] + "." + enc(payload) + "." + parts[2],
	} {
		t.Run(name, func(t *testing.T) {
			q := logoutRequest(tk)
			q.Set("id_token_hint", hint)
			if refused(t, r.endSession(t, q), true) == "error" {
				r.stillLoggedIn(t, tk.sub())
			}
		})
	}
}

// oidcc-rp-initiated-logout-no-id-token-hint: post_logout_redirect_uri and
// state but no hint (nor client_id): no redirect back; an error or a
// confirmation. With client_id the client is known (RP-Initiated Logout
// §2), so after the citizen confirms the redirect is allowed.
func TestOidccRpInitiatedLogoutNoIdTokenHint(t *testing.T) {
	t.Parallel()
	t.Run("as the suite sends it", func(t *testing.T) {
		r, tk := loggedIn(t)
		q := logoutRequest(tk)
		q.Del("id_token_hint")
		if refused(t, r.endSession(t, q), true) == "error" {
			r.stillLoggedIn(t, tk.sub())
		}
	})
	t.Run("with client_id", func(t *testing.T) {
		r, tk := loggedIn(t)
		q := logoutRequest(tk)
		q.Del("id_token_hint")
		q.Set("client_id", teststack.SPID)
		l := r.endSession(t, q)
		if refused(t, l, true) != "confirm" {
			return
		}
		r.stillLoggedIn(t, tk.sub()) // nothing happens before the citizen confirms
		backAt(t, submit(t, r.s.Browser, l.URL, l.Body), url.Values{"state": {q.Get("state")}})
		r.loggedOut(t)
	})
}

// oidcc-rp-initiated-logout-no-params: the OP logs the citizen out (after
// asking, which RP-Initiated Logout §3 recommends) and shows that they are
// logged out, without redirecting anywhere.
func TestOidccRpInitiatedLogoutNoParams(t *testing.T) {
	t.Parallel()
	r, _ := loggedIn(t)
	logoutWithoutClient(t, r, nil)
}

// logoutWithoutClient is a logout request that names no client: the
// citizen may be asked, and then ends on the logged-out page.
func logoutWithoutClient(t *testing.T, r *rp, q url.Values) {
	t.Helper()
	l := r.endSession(t, q)
	if l.SP == nil && l.Status == http.StatusOK && strings.Contains(l.Body, confirmMarker) {
		l = submit(t, r.s.Browser, l.URL, l.Body)
	}
	loggedOutPage(t, l)
	r.loggedOut(t)
}

// oidcc-rp-initiated-logout-no-post-logout-redirect-uri: a valid hint, no
// post_logout_redirect_uri: logged out, shown the logged-out page.
func TestOidccRpInitiatedLogoutNoPostLogoutRedirectUri(t *testing.T) {
	t.Parallel()
	r, tk := loggedIn(t)
	q := logoutRequest(tk)
	q.Del("post_logout_redirect_uri")
	loggedOutPage(t, r.endSession(t, q))
	r.loggedOut(t)
}

// oidcc-rp-initiated-logout-no-state: back at post_logout_redirect_uri
// with no state and nothing else (CheckNoPostLogoutState).
func TestOidccRpInitiatedLogoutNoState(t *testing.T) {
	t.Parallel()
	r, tk := loggedIn(t)
	q := logoutRequest(tk)
	q.Del("state")
	backAt(t, r.endSession(t, q), url.Values{})
	r.loggedOut(t)
}

// oidcc-rp-initiated-logout-only-state: only state; as with no parameters,
// the OP logs out without redirecting anywhere.
func TestOidccRpInitiatedLogoutOnlyState(t *testing.T) {
	t.Parallel()
	r, _ := loggedIn(t)
	logoutWithoutClient(t, r, url.Values{"state": {random()}})
}

// oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri: the
// registered URI with ?foo=bar added is not the registered URI.
func TestOidccRpInitiatedLogoutQueryAddedToPostLogoutRedirectUri(t *testing.T) {
	t.Parallel()
	r, tk := loggedIn(t)
	q := logoutRequest(tk)
	q.Set("post_logout_redirect_uri", postLogout+"?foo=bar")
	if refused(t, r.endSession(t, q), true) == "error" {
		r.stillLoggedIn(t, tk.sub())
	}
}

// oidcc-rp-initiated-logout-discovery-endpoint-verification:
// end_session_endpoint is advertised, on the issuer's origin (https when the
// issuer is: CheckDiscEndpointAllEndpointsAreHttps), and answers.
func TestOidccRpInitiatedLogoutDiscoveryEndpointVerification(t *testing.T) {
	t.Parallel()
	r := newRP(t)
	ep, _ := r.meta["end_session_endpoint"].(string)
	u, err := url.Parse(ep)
	if ep == "" || err != nil || !u.IsAbs() || u.Fragment != "" {
		t.Fatalf("end_session_endpoint = %q, want an absolute URL", ep)
	}
	iss, _ := url.Parse(r.s.BrokerURL)
	if u.Scheme != iss.Scheme || u.Host != iss.Host {
		t.Errorf("end_session_endpoint %s is not on the issuer's origin %s", ep, r.s.BrokerURL)
	}
	l := r.endSession(t, nil) // no session: nothing to confirm
	loggedOutPage(t, l)
}
