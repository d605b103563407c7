package broker

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/sesame-id/sesame/internal/web"
)

// Readiness is the body of /readyz.
//
// Status is "ok" (HTTP 200) when the store answers, signing keys are
// loaded and the platform is not draining; otherwise "unavailable"
// (HTTP 503), so the load balancer stops sending logins that could not
// be saved or signed. IdPs are reported, never counted: an IdP down must
// not take the replica out, since the chooser greys that IdP and the
// others keep working.
type Readiness struct {
	Status   string            `json:"status"`
	Draining bool              `json:"draining,omitempty"`
	Store    Check             `json:"store"`
	Keys     KeysCheck         `json:"keys"`
	IdPs     map[string]string `json:"idps"`
}

// Check is one dependency's state: "ok" or "unavailable", and how long
// the check took.
type Check struct {
	Status    string  `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
}

// KeysCheck is the signing keys' state: "ok" with the algorithms a key
// is loaded for, or "unavailable" when none is.
type KeysCheck struct {
	Status string   `json:"status"`
	Algs   []string `json:"algs"`
}

// readyTimeout bounds the store check: a probe that waits longer than
// its orchestrator's own timeout says nothing.
const readyTimeout = time.Second

// ready answers /readyz (see Readiness); /healthz, liveness, stays up
// whatever the store does, so the orchestrator does not restart a broker
// that only waits for Redis.
func (p *Platform) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	out := Readiness{Status: "ok", Draining: p.draining.Load(), IdPs: map[string]string{}}

	start := time.Now()
	var err error
	if pinger, ok := p.kv.(interface{ Ping(context.Context) error }); ok {
		err = pinger.Ping(ctx)
	}
	out.Store = Check{Status: "ok", LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		// The cause (addresses, driver words) goes to the log, not to
		// the public listener; logged when the state changes, not at
		// every probe.
		out.Store.Status = "unavailable"
	}
	if down := err != nil; p.storeDown.Swap(down) != down {
		if down {
			p.log.WarnContext(r.Context(), "readiness: store unavailable", "err", err)
		} else {
			p.log.InfoContext(r.Context(), "readiness: store answers again")
		}
	}

	out.Keys = KeysCheck{Status: "ok", Algs: p.signer.Algorithms()}
	if len(out.Keys.Algs) == 0 {
		out.Keys.Status = "unavailable"
	}
	for _, up := range p.reg(r.Context()).idps {
		out.IdPs[up.Config().ID] = up.Status()
	}

	status := http.StatusOK
	if out.Draining || out.Store.Status != "ok" || out.Keys.Status != "ok" {
		out.Status, status = "unavailable", http.StatusServiceUnavailable
		web.SetRetryAfter(w.Header(), 0)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}
