package broker

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
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

// limit counts one event for subject against a per-minute limit and
// reports whether it is within it and, when not, how long until the window
// ends (the Retry-After). The counter lives in the store, so replicas share
// it. When the store fails the request is let through (fail open): a Redis
// outage already stops logins, and a limiter must not turn a slow Redis
// into refusals.
func (p *Platform) limit(ctx context.Context, name, subject string, perMinute int) (bool, time.Duration) {
	if perMinute <= 0 {
		return true, 0
	}
	n, left, err := p.kv.Incr(ctx, p.cfg.Namespace+"rl:"+name+":"+session.Digest(subject), rateWindow)
	if err != nil {
		p.log.WarnContext(ctx, "rate limit not applied", "limit", name, "err", err)
		return true, 0
	}
	return n <= int64(perMinute), left
}

// clientIP is the address per-IP limits count: the peer's, or, when the
// peer is a trusted proxy, the right-most X-Forwarded-For address that is
// not a trusted proxy (the left-most ones are the client's to forge).
func (p *Platform) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(p.proxies) == 0 || !p.trusted(host) {
		return host
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a := strings.TrimSpace(parts[j])
			if _, err := netip.ParseAddr(a); err != nil {
				return host // a malformed hop: stop at the proxy we trust
			}
			if !p.trusted(a) {
				return a
			}
			host = a
		}
	}
	return host
}

// trusted reports whether addr is in a trusted proxy range.
func (p *Platform) trusted(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, pr := range p.proxies {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// tooManyTokens answers a token request over a limit, with the real
// remainder of the window as Retry-After.
func (p *Platform) tooManyTokens(w http.ResponseWriter, r *http.Request, why string, retry time.Duration) {
	e := oidcerr.New(oidcerr.TemporarilyUnavailable, why+"; retry later")
	e.Status, e.RetryAfter = http.StatusTooManyRequests, retry
	p.tokenError(w, r, e)
}

// tooManyPages answers a browser over its network's limit.
func (p *Platform) tooManyPages(w http.ResponseWriter, r *http.Request, retry time.Duration) {
	e := errTooMany
	e.RetryAfter = retry
	p.pages.RenderError(w, r, e)
}

// blocklist remembers, in this process, the sources whose failed token
// authentications went over the shared limit, so that their next requests
// are refused before any work or store round trip. Every replica that
// sees such a source fail learns the shared count from the store and
// blocks it too; the list is bounded, and entries end with their window.
type blocklist struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// maxBlocked bounds the list; past it, expired entries are swept and, if
// still full, new sources are not remembered (they are still counted and
// refused on failure).
const maxBlocked = 100_000

func (b *blocklist) block(subject string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until == nil {
		b.until = map[string]time.Time{}
	}
	now := time.Now()
	if len(b.until) >= maxBlocked {
		for k, t := range b.until {
			if !now.Before(t) {
				delete(b.until, k)
			}
		}
		if len(b.until) >= maxBlocked {
			return
		}
	}
	b.until[subject] = now.Add(d)
}

// blocked reports whether subject is blocked and for how long still.
func (b *blocklist) blocked(subject string) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.until[subject]
	if !ok {
		return false, 0
	}
	left := time.Until(t)
	if left <= 0 {
		delete(b.until, subject)
		return false, 0
	}
	return true, left
}
