package web

import (
	"net/http"
	"strings"
)

// SecurityPolicy is the set of security response headers sent with pages
// and assets. The zero value is the default policy.
type SecurityPolicy struct {
	// FormAction lists the CSP sources forms may be submitted to, e.g.
	// "'self'" or "https://sp.example.fr". Empty leaves form-action out of
	// the policy, i.e. unrestricted. It is off by default because browsers
	// (Chromium at least) also check form-action against every redirect
	// that follows a submission: a form posting to the broker, answered
	// with a 303 to an identity provider or back to a service provider,
	// would be blocked by form-action 'self'. Set it only where every
	// redirect target of every form is known.
	FormAction []string
}

// ContentSecurityPolicy returns the Content-Security-Policy header value.
// Pages need no script, no inline style and no third-party resource; data:
// images are allowed because the DSFR stylesheet inlines small SVGs.
func (p SecurityPolicy) ContentSecurityPolicy() string {
	var b strings.Builder
	b.WriteString("default-src 'self'; img-src 'self' data:; style-src 'self'; font-src 'self'; ")
	if len(p.FormAction) > 0 {
		b.WriteString("form-action ")
		b.WriteString(strings.Join(p.FormAction, " "))
		b.WriteString("; ")
	}
	b.WriteString("frame-ancestors 'none'; base-uri 'none'")
	return b.String()
}

// Apply sets the policy's headers on h, replacing any already there.
func (p SecurityPolicy) Apply(h http.Header) {
	setSecurityHeaders(h, p.ContentSecurityPolicy())
}

func setSecurityHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	// frame-ancestors supersedes it, but older browsers only know this one;
	// login pages are the classic clickjacking target.
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// URLs in an OIDC flow carry codes, states and session ids: none of it
	// should leak to the next site through Referer.
	h.Set("Referrer-Policy", "no-referrer")
}

// Wrap returns a handler that sets the policy's headers before calling next.
// Headers are set before next runs so that next can still override them.
func (p SecurityPolicy) Wrap(next http.Handler) http.Handler {
	// Rendering the policy once, not per request.
	csp := p.ContentSecurityPolicy()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		setSecurityHeaders(w.Header(), csp)
		next.ServeHTTP(w, req)
	})
}

// SecureHeaders wraps h so that every response carries the default
// SecurityPolicy headers (CSP without form-action, X-Frame-Options DENY,
// nosniff, Referrer-Policy no-referrer). Use SecurityPolicy.Wrap for a
// different form-action.
func SecureHeaders(h http.Handler) http.Handler {
	return SecurityPolicy{}.Wrap(h)
}
