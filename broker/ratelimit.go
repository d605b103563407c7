package broker

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/sesame-id/sesame/broker/oidcerr"
	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/internal/web"
)

// rateWindow is the fixed window of every limit.
const rateWindow = time.Minute

var errTooMany = web.Error{Code: "S190006", Status: http.StatusTooManyRequests, Retry: true, BackURL: "/authorize/choose",
	MessageFR: "Trop de tentatives de connexion depuis votre réseau. Réessayez dans une minute.",
	MessageEN: "Too many login attempts from your network. Try again in a minute."}

// allowed counts one event for subject against a per-minute limit. The
// counter lives in the store, so replicas share it. When the store fails
// the request is let through (fail open): a Redis outage already stops
// logins, and a limiter must not turn a slow Redis into refusals.
func (p *Platform) allowed(ctx context.Context, name, subject string, perMinute int) bool {
	if perMinute <= 0 {
		return true
	}
	n, err := p.kv.Incr(ctx, p.cfg.Namespace+"rl:"+name+":"+session.Digest(subject), rateWindow)
	if err != nil {
		p.log.WarnContext(ctx, "rate limit not applied", "limit", name, "err", err)
		return true
	}
	return n <= int64(perMinute)
}

// clientIP is the peer's address. Behind a proxy it is the proxy's: put
// the limit there, or give each proxy its own replica pool.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func retryAfter(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(rateWindow.Seconds())))
}

// tooManyTokens answers a token request over its client's limit.
func (p *Platform) tooManyTokens(w http.ResponseWriter) {
	retryAfter(w)
	e := oidcerr.New(oidcerr.TemporarilyUnavailable, "too many token requests for this client; retry later")
	e.Status = http.StatusTooManyRequests
	e.WriteJSON(w)
}

// tooManyLogins answers a login attempt over its network's limit.
func (p *Platform) tooManyLogins(w http.ResponseWriter, r *http.Request) {
	retryAfter(w)
	p.pages.RenderError(w, r, errTooMany)
}
