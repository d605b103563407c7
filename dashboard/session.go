package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// session is a citizen logged in to the space. It lives in a sealed
// cookie (AES-GCM under cookie_key, bound to the cookie's name), so the
// space keeps no server-side state and runs as several replicas.
type session struct {
	// Account is the account id the history is kept under
	// (sesame_account), IdP the account used for this login (idp_id).
	Account string `json:"a"`
	IdP     string `json:"i"`
	// GivenName greets the citizen; Email receives the confirmation of a
	// change of preferences.
	GivenName string `json:"g,omitempty"`
	Email     string `json:"e,omitempty"`
	// IDToken is the broker's id_token, the id_token_hint of the logout.
	IDToken string `json:"t"`
	// CSRF is the token every form of the session carries.
	CSRF string `json:"c"`
	// Expires is when the session ends, whatever the cookie says.
	Expires int64 `json:"x"`
}

// transaction is a login under way: its secrets stay sealed in the
// browser, bound to it, for the callback to check.
type transaction struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	// Return is where the citizen goes once logged in (a page of the
	// space, from an allow-list).
	Return string `json:"r,omitempty"`
	// Started is when the login began: the authentication must be later.
	Started int64 `json:"b"`
	Expires int64 `json:"x"`
}

// maxCookie is what browsers keep of one cookie.
const maxCookie = 4096

// errCookieTooLarge is a session that would not fit in a cookie (an
// id_token far larger than the broker's).
var errCookieTooLarge = errors.New("dashboard: sealed cookie over 4096 bytes")

// writeSealed seals v into the cookie name, for ttl (v holds its own
// expiry, which is what counts).
func (a *App) writeSealed(w http.ResponseWriter, name string, v any, ttl time.Duration) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	value := base64.RawURLEncoding.EncodeToString(a.box.Seal(raw, []byte(name)))
	if len(value)+len(name) > maxCookie {
		return errCookieTooLarge
	}
	a.setCookie(w, name, value, ttl)
	return nil
}

// readSealed opens the cookie name into v; false when it is absent,
// altered, sealed under another key, or not JSON.
func (a *App) readSealed(r *http.Request, name string, v any) bool {
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > maxCookie {
		return false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return false
	}
	raw, err := a.box.Open(sealed, []byte(name))
	if err != nil {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}

// currentSession is the session of the request; nil and false when there
// is none or it expired.
func (a *App) currentSession(r *http.Request) (*session, bool) {
	var s session
	if !a.readSealed(r, sessionCookie, &s) || s.Account == "" || a.now().Unix() >= s.Expires {
		return nil, false
	}
	return &s, true
}

// requireSession is currentSession for the pages of a logged-in citizen:
// without a session, a page read goes to the landing page (whose login
// comes back to that page), and a form
// posted gets the expired-session page (nothing it asked is done).
func (a *App) requireSession(w http.ResponseWriter, r *http.Request) (*session, bool) {
	s, ok := a.currentSession(r)
	if ok {
		return s, true
	}
	a.clearCookie(w, sessionCookie)
	if r.Method == http.MethodPost {
		a.fail(w, r, errSessionExpired)
		return nil, false
	}
	// The landing page's login button then comes back here.
	http.Redirect(w, r, "/?retour="+url.QueryEscape(returnPath(r.URL.Path)), http.StatusSeeOther)
	return nil, false
}

// checkForm reads a posted form (bounded) and checks its CSRF token
// against want, in constant time; it answers the error page itself.
func (a *App) checkForm(w http.ResponseWriter, r *http.Request, want string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		a.failWith(w, r, errBadForm, err)
		return false
	}
	if !equal(r.PostForm.Get("csrf"), want) {
		a.fail(w, r, errCSRF)
		return false
	}
	return true
}

// setCookie sets a cookie for ttl.
func (a *App) setCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: max(int(ttl.Seconds()), 1),
		HttpOnly: true, Secure: a.secure,
		// Lax, not Strict: the return from the broker is a cross-site
		// top-level navigation, and it must carry the cookies.
		SameSite: http.SameSiteLaxMode,
	})
}

func (a *App) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteLaxMode})
}

// randomString is n random bytes, base64url.
func randomString(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never fails on supported platforms (Go ≥ 1.24).
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// equal compares secrets in constant time; an empty value never matches,
// so a missing token cannot match a missing session.
func equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
