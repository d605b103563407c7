// Package oidcerr is the broker's one OAuth 2.0 / OIDC error type. Each
// error carries a registered code and a safe sentence for the client, and
// keeps the internal cause apart so it reaches the logs, never the client.
package oidcerr

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sesame-id/sesame/internal/web"
)

// Registered error codes (RFC 6749, OIDC Core, RFC 6750).
const (
	InvalidRequest                  = "invalid_request"
	UnauthorizedClient              = "unauthorized_client"
	AccessDenied                    = "access_denied"
	UnsupportedResponseType         = "unsupported_response_type"
	InvalidScope                    = "invalid_scope"
	ServerError                     = "server_error"
	TemporarilyUnavailable          = "temporarily_unavailable"
	LoginRequired                   = "login_required"
	ConsentRequired                 = "consent_required"
	InteractionRequired             = "interaction_required"
	UnmetAuthenticationRequirements = "unmet_authentication_requirements"
	RequestNotSupported             = "request_not_supported"
	RequestURINotSupported          = "request_uri_not_supported"
	InvalidClient                   = "invalid_client"
	InvalidGrant                    = "invalid_grant"
	UnsupportedGrantType            = "unsupported_grant_type"
	InvalidToken                    = "invalid_token"
	// InvalidRequestURI: a request_uri unknown, expired, used, or of
	// another client (RFC 9126 §4, RFC 9101).
	InvalidRequestURI = "invalid_request_uri"
	// InvalidDPoPProof and UseDPoPNonce are RFC 9449's (§5, §8).
	InvalidDPoPProof = "invalid_dpop_proof"
	UseDPoPNonce     = "use_dpop_nonce"
)

// Error is an OAuth error. Description must be written by us: it never
// carries raw request input or upstream text.
type Error struct {
	Code        string
	Description string
	// Status is the HTTP status for direct (non-redirect) responses.
	Status int
	// NoRedirect marks errors that must be shown on a page because the
	// redirect_uri cannot be trusted (unknown client, bad redirect_uri).
	NoRedirect bool
	// Cause is internal detail for the logs.
	Cause error
	// RetryAfter, when set, is the real wait before a retry (what is left
	// of a rate-limit window); a temporarily_unavailable without one says
	// web.DefaultRetryAfter.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Description, e.Cause)
	}
	return e.Code + ": " + e.Description
}

// Unwrap exposes the cause to errors.Is/As.
func (e *Error) Unwrap() error { return e.Cause }

// New builds an error with a registered code and a fixed description.
func New(code, description string) *Error {
	return &Error{Code: code, Description: description, Status: statusFor(code)}
}

// Newf is New with formatting; arguments must be our own values (parameter
// names, levels from our config), never raw input.
func Newf(code, format string, args ...any) *Error {
	return New(code, fmt.Sprintf(format, args...))
}

// Page marks the error as one that must not redirect.
func (e *Error) Page() *Error { e.NoRedirect = true; return e }

// WithCause attaches internal detail for the logs.
func (e *Error) WithCause(err error) *Error { e.Cause = err; return e }

func statusFor(code string) int {
	switch code {
	case InvalidClient, InvalidToken:
		return http.StatusUnauthorized
	case ServerError:
		return http.StatusInternalServerError
	case TemporarilyUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadRequest
	}
}

// safe strips what RFC 6749 forbids in error_description (characters
// outside %x20-21 / %x23-5B / %x5D-7E), so no CR, LF, TAB, quote or
// backslash can ever be reflected.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}

// RedirectURL builds the authorization error response: the SP's exact
// redirect_uri with error, error_description, state (when the SP sent one)
// and iss (RFC 9207).
func (e *Error) RedirectURL(redirectURI, state, iss string) string {
	q := url.Values{}
	q.Set("error", e.Code)
	if d := safe(e.Description); d != "" {
		q.Set("error_description", d)
	}
	if state != "" {
		q.Set("state", state)
	}
	q.Set("iss", iss)
	return AppendQuery(redirectURI, q)
}

// AppendQuery adds q to a URI that may already have a query of its own.
func AppendQuery(uri string, q url.Values) string {
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + q.Encode()
}

// WriteJSON answers a token-style JSON error with no-store caching. An
// invalid_client answer asks for Basic auth as RFC 6749 §5.2 requires.
func (e *Error) WriteJSON(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.Code == InvalidClient {
		h.Set("WWW-Authenticate", `Basic realm="sesame"`)
	}
	if e.RetryAfter > 0 || e.Code == TemporarilyUnavailable {
		web.SetRetryAfter(h, e.RetryAfter)
	}
	status := e.Status
	if status == 0 {
		status = statusFor(e.Code)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": e.Code, "error_description": safe(e.Description)})
}

// WriteDPoP answers a protected-resource error for a DPoP request
// (RFC 9449 §7.1): 401 with a DPoP challenge naming the accepted algs.
func (e *Error) WriteDPoP(w http.ResponseWriter, algs string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`DPoP error="%s", error_description="%s", algs="%s"`, e.Code, safe(e.Description), algs))
	e.Status = http.StatusUnauthorized
	e.WriteJSON(w)
}

// WriteBearer answers a protected-resource error (RFC 6750 §3).
func (e *Error) WriteBearer(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="%s", error_description="%s"`, e.Code, safe(e.Description)))
	e.WriteJSON(w)
}
