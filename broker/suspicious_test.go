package broker_test

import (
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/audit"
	"github.com/sesame-id/sesame/internal/store"
)

// withRisk turns the suspicious-context rule on with r.
func withRisk(r config.Risk) teststack.Option {
	return func(c *config.Config) { c.Broker.Risk = &r }
}

// behindProxy makes the loopback a trusted proxy, so that the tests'
// X-Forwarded-For and WAF headers are believed.
func behindProxy(c *config.Config) { c.Broker.TrustedProxies = []string{"127.0.0.1/32"} }

// The test IdPs on the chooser: impots gives eidas1 only, laposte up to
// eidas3, msa up to eidas2.
var riskIdPs = offering("impots", "laposte", "msa")

var (
	greyedOnly  = map[string]bool{"impots": true, "laposte": false, "msa": false}
	noneGreyed  = map[string]bool{"impots": false, "laposte": false, "msa": false}
	riskWAF     = &config.RiskWAFHeader{Name: "X-Suspicious", Values: []string{"1"}}
	riskNoticeR = "Pour votre sécurité, seuls les comptes qui offrent un niveau de sécurité renforcé"
)

// authorizeWith sends the SP's request from the rig's browser with extra
// headers (a proxy's X-Forwarded-For, a WAF's verdict).
func (r *rig) authorizeWith(t *testing.T, p url.Values, h http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.BrokerURL+"/authorize?"+p.Encode(), nil)
	maps.Copy(req.Header, h)
	resp, err := r.Browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// chooserPage is the chooser's HTML.
func (r *rig) chooserPage(t *testing.T, lang string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.BrokerURL+"/authorize/choose", nil)
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	resp, err := r.Browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return html.UnescapeString(string(body))
}

// postChoice posts a choice on the chooser, as a forged form may.
func (r *rig) postChoice(t *testing.T, idp string) (*http.Response, string) {
	t.Helper()
	_, page := teststack.Get(t, r.Browser, r.BrokerURL+"/authorize/choose")
	return teststack.Post(t, r.Browser, r.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {idp}})
}

// Each signal makes the request suspicious: the chooser greys out the
// IdPs that give eidas1 only, with the reason, and leaves the others
// chooseable; a trip to one of them asks eidas2, which the SP gets.
func TestRiskSignalsGreyEidas1Only(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		opts   []teststack.Option
		header http.Header
	}{
		{"deny_networks, the peer", []teststack.Option{withRisk(config.Risk{DenyNetworks: []string{"127.0.0.0/8"}})}, nil},
		{"deny_networks, behind the proxy", []teststack.Option{behindProxy, withRisk(config.Risk{DenyNetworks: []string{"192.0.2.0/24"}})},
			http.Header{"X-Forwarded-For": {"192.0.2.10"}}},
		{"waf_header", []teststack.Option{behindProxy, withRisk(config.Risk{WAFHeader: riskWAF})}, http.Header{"X-Suspicious": {"1"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, nil, false, append([]teststack.Option{riskIdPs}, c.opts...)...)
			b := r.browser()
			wantLocation(t, b.authorizeWith(t, authParams(), c.header), "/authorize/choose")
			if _, idps := b.chooser(t); !maps.Equal(idps, greyedOnly) {
				t.Fatalf("chooser (id: greyed) %v, want impots alone greyed", idps)
			}
			page := b.chooserPage(t, "")
			// The reason sits under the button it greys out (the
			// button says the name).
			if !strings.Contains(page, `<p class="sesame-idp__why" id="why-impots">Pour votre sécurité, ce compte n'est pas proposé pour cette connexion.</p>`) {
				t.Errorf("no reason under impots:\n%s", page)
			}
			if !strings.Contains(page, riskNoticeR) {
				t.Error("no notice above the list")
			}
			if en := b.chooserPage(t, "en"); !strings.Contains(en, "For your security, this account is not offered for this sign-in.") {
				t.Error("no English reason")
			}
			// laposte stays chooseable, asked eidas2; the SP gets it.
			u := b.toIdPAgain(t, "laposte")
			if got := u.Query().Get("acr_values"); got != "eidas2" {
				t.Errorf("acr_values asked of laposte %q, want eidas2", got)
			}
			id := b.redeem(t, teststack.SPID, b.Finish(t, b.IdPLogin(t, u.String(), "angela-dubois", nil))).ID
			if id["acr"] != "eidas2" {
				t.Errorf("acr %v, want eidas2", id["acr"])
			}
			// The same request without the signal: nothing greyed (the
			// first case's signal is the test's own address).
			if c.header != nil {
				clean := r.browser()
				wantLocation(t, clean.authorize(t, authParams()), "/authorize/choose")
				if _, idps := clean.chooser(t); !maps.Equal(idps, noneGreyed) {
					t.Errorf("a clean request's chooser %v, want none greyed", idps)
				}
			}
		})
	}
}

// toIdPAgain picks idp on the chooser already shown, and returns the
// broker's redirect to it.
func (r *rig) toIdPAgain(t *testing.T, idp string) *url.URL {
	t.Helper()
	loc := r.Choose(t, idp)
	if !strings.HasPrefix(loc, r.IdPURL+"/"+idp+"/authorize?") {
		t.Fatalf("choose %s: redirect to %q", idp, loc)
	}
	u, _ := url.Parse(loc)
	return u
}

// A forged choice of a greyed IdP is refused server side, on a page with
// a way back; idp_hint to it leads to the chooser (not an error to the
// SP), idp_hint to an IdP giving eidas2 goes straight there at eidas2;
// an eidas2-capable IdP that answers eidas1 is refused; a session's
// eidas1 login does not serve a suspicious request (SSO).
func TestRiskServerSide(t *testing.T) {
	t.Parallel()
	bothStores(t, func(t *testing.T, st ...teststack.Option) {
		rec := &auditRecorder{}
		opts := append(slices.Clone(st), riskIdPs, behindProxy, withRisk(config.Risk{WAFHeader: riskWAF}),
			onSP(func(sp *config.SP) { sp.IdPHints = []string{"impots", "laposte"} }))
		r := &rig{Stack: teststack.NewWith(t, []broker.Option{broker.WithAudit(rec)}, opts...)}
		flag := http.Header{"X-Suspicious": {"1"}}

		t.Run("forged choice", func(t *testing.T) {
			b := r.browser()
			wantLocation(t, b.authorizeWith(t, authParams(), flag), "/authorize/choose")
			resp, body := b.postChoice(t, "impots")
			wantPage(t, resp, body, http.StatusForbidden, "S020060")
			if !strings.Contains(body, `href="/authorize/choose"`) {
				t.Error("the refusal has no way back to the chooser")
			}
			// Still at the chooser: another account works.
			if loc := b.Choose(t, "msa"); !strings.HasPrefix(loc, r.IdPURL+"/msa/authorize?") || !strings.Contains(loc, "acr_values=eidas2") {
				t.Errorf("after the refusal, msa: %q", loc)
			}
		})
		t.Run("idp_hint", func(t *testing.T) {
			b := r.browser()
			wantLocation(t, b.authorizeWith(t, authParams("idp_hint", "impots"), flag), "/authorize/choose")
			if _, idps := b.chooser(t); !maps.Equal(idps, greyedOnly) {
				t.Errorf("chooser after a hint to impots %v", idps)
			}
			b = r.browser()
			resp := b.authorizeWith(t, authParams("idp_hint", "laposte"), flag)
			if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, r.IdPURL+"/laposte/authorize?") || !strings.Contains(loc, "acr_values=eidas2") {
				t.Errorf("idp_hint=laposte: to %q, want straight to laposte at eidas2", loc)
			}
			// Without the signal, the hint to impots goes straight on.
			b = r.browser()
			if loc := b.authorize(t, authParams("idp_hint", "impots")).Header.Get("Location"); !strings.HasPrefix(loc, r.IdPURL+"/impots/authorize?") {
				t.Errorf("a clean idp_hint=impots: to %q", loc)
			}
		})
		t.Run("level given below eidas2", func(t *testing.T) {
			b := r.browser()
			wantLocation(t, b.authorizeWith(t, authParams(), flag), "/authorize/choose")
			cb := b.IdPLogin(t, b.toIdPAgain(t, "laposte").String(), "angela-dubois", url.Values{"scenario_acr": {"eidas1"}})
			resp, body := teststack.Get(t, b.Browser, cb)
			wantPage(t, resp, body, http.StatusForbidden, "S020061")
		})
		t.Run("sso", func(t *testing.T) {
			b := r.browser()
			b.login(t, authParams(), "impots", "angela-dubois", nil)
			wantLocation(t, b.authorize(t, authParams()), "/authorize/consent")
			resp := b.authorizeWith(t, authParams(), flag)
			wantLocation(t, resp, "/authorize/choose")
			if resp := b.authorizeWith(t, authParams("prompt", "none"), flag); !strings.Contains(resp.Header.Get("Location"), "error=login_required") {
				t.Errorf("prompt=none in a suspicious context with an eidas1 session: %q", resp.Header.Get("Location"))
			}
		})

		// The track: the reasons on the request, the trip and the
		// refusal; never an address in them.
		rec.mu.Lock()
		defer rec.mu.Unlock()
		seen := map[string]bool{}
		for _, e := range rec.events {
			if len(e.Risk) > 0 {
				if !slices.Equal(e.Risk, []string{"waf"}) {
					t.Errorf("%s risk %v", e.Name, e.Risk)
				}
				seen[e.Name+" "+e.Outcome] = true
			}
		}
		for _, want := range []string{audit.AuthorizeReceived + " ok", audit.IdPChosen + " ok", audit.Refused + " S020060", audit.IdPReturned + " S020061"} {
			if !seen[want] {
				t.Errorf("no %s event with the reasons; seen %v", want, seen)
			}
		}
	})
}

// The WAF's header means something only from the proxy that sets it: a
// client that reaches the broker directly and sets it is not believed.
func TestRiskWAFHeaderUntrustedSource(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, false, riskIdPs, withRisk(config.Risk{WAFHeader: riskWAF}),
		func(c *config.Config) { c.Broker.TrustedProxies = []string{"10.0.0.0/8"} })
	b := r.browser()
	wantLocation(t, b.authorizeWith(t, authParams(), http.Header{"X-Suspicious": {"1"}}), "/authorize/choose")
	if _, idps := b.chooser(t); !maps.Equal(idps, noneGreyed) {
		t.Errorf("a WAF header from an untrusted peer greyed %v", idps)
	}
	// Nor is X-Forwarded-For, to dodge or to trip the deny list.
	r = newRig(t, nil, false, riskIdPs, withRisk(config.Risk{DenyNetworks: []string{"192.0.2.0/24"}}))
	b = r.browser()
	wantLocation(t, b.authorizeWith(t, authParams(), http.Header{"X-Forwarded-For": {"192.0.2.10"}}), "/authorize/choose")
	if _, idps := b.chooser(t); !maps.Equal(idps, noneGreyed) {
		t.Errorf("X-Forwarded-For from an untrusted peer greyed %v", idps)
	}
}

// failTrip runs one login through impots on the broker at base, with the
// IdP behaving as scenario says, and returns the broker's answer to the
// callback; the IdP sends the browser to the stack's issuer, which the
// test points at base (a load balancer would pick any replica).
func failTrip(t *testing.T, s *teststack.Stack, b *teststack.Stack, base string, scenario url.Values) *http.Response {
	t.Helper()
	resp, _ := teststack.Get(t, b.Browser, base+"/authorize?"+teststack.AuthParams().Encode())
	if resp.Header.Get("Location") != "/authorize/choose" {
		t.Fatalf("authorize on %s: %d to %q", base, resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := teststack.Get(t, b.Browser, base+"/authorize/choose")
	resp, body := teststack.Post(t, b.Browser, base+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"impots"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("choose impots on %s: %d\n%s", base, resp.StatusCode, body)
	}
	cb := b.IdPLogin(t, resp.Header.Get("Location"), "angela-dubois", scenario)
	resp, _ = teststack.Get(t, b.Browser, strings.Replace(cb, s.BrokerURL, base, 1))
	return resp
}

// greyed is the chooser of a new request on the broker at base, from a
// new browser: id → greyed.
func greyed(t *testing.T, s *teststack.Stack, base string) map[string]bool {
	t.Helper()
	b := &rig{Stack: s.WithBrowser()}
	b.BrokerURL = base
	wantLocation(t, b.authorize(t, authParams()), "/authorize/choose")
	_, idps := b.chooser(t)
	return idps
}

// Failed trips from one address, counted in the store the replicas
// share: failures on two replicas add up, the request under way turns
// suspicious at the failure that reaches the limit, a new one on any
// replica is suspicious, and the window's end clears it. A cancel at
// the IdP and an IdP outage are not counted.
func TestRiskFailedTripsAcrossReplicas(t *testing.T) {
	t.Parallel()
	const window = 4 * time.Second
	s, urls := replicas(t, 1, riskIdPs, withRisk(config.Risk{FailedTrips: &config.RiskFailedTrips{Max: 2, Window: config.Duration(window)}}))
	a, b := urls[0], urls[1]

	// Not counted: three cancels and three outages.
	for _, sc := range []string{"access_denied", "access_denied", "access_denied", "temporarily_unavailable", "server_error", "server_error"} {
		resp := failTrip(t, s, s.WithBrowser(), a, url.Values{"scenario_error": {sc}})
		wantLocation(t, resp, "/authorize/choose")
	}
	if idps := greyed(t, s, b); !maps.Equal(idps, noneGreyed) {
		t.Fatalf("cancels and outages were counted: %v", idps)
	}

	// Counted: an IdP error on A, then, from the same browser still at
	// its chooser, an invalid identity on B.
	br := s.WithBrowser()
	first := time.Now()
	wantLocation(t, failTrip(t, s, br, a, url.Values{"scenario_error": {"invalid_request"}}), "/authorize/choose")
	if idps := greyed(t, s, b); !maps.Equal(idps, noneGreyed) {
		t.Fatalf("suspicious after one failure (max 2): %v", idps)
	}
	resp := failTrip(t, s, br, b, url.Values{"scenario_bad_cog": {"birthplace"}})
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("bad identity: %d", resp.StatusCode)
	}
	// The request under way turned suspicious on its way back.
	own := &rig{Stack: br}
	own.BrokerURL = a
	if _, idps := own.chooser(t); !maps.Equal(idps, greyedOnly) {
		t.Errorf("the request that failed twice: chooser %v, want impots greyed", idps)
	}
	for _, u := range []string{a, b} {
		if idps := greyed(t, s, u); !maps.Equal(idps, greyedOnly) {
			t.Errorf("a new request on %s after two failures: %v, want impots greyed", u, idps)
		}
	}
	// The window ends: the address is clean again.
	time.Sleep(time.Until(first.Add(window + 200*time.Millisecond)))
	if idps := greyed(t, s, b); !maps.Equal(idps, noneGreyed) {
		t.Errorf("after the window: %v, want none greyed", idps)
	}
}

// The rule costs a store round trip only with failed_trips: one read per
// authorization request, none at the chooser or the choice. Without it
// (deny list, WAF header) nothing is added.
func TestRiskBudget(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		risk config.Risk
		want int32
	}{
		{"deny list and WAF header", config.Risk{DenyNetworks: []string{"192.0.2.0/24"}, WAFHeader: riskWAF}, 0},
		{"failed trips", config.Risk{FailedTrips: &config.RiskFailedTrips{Max: 3}}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			kv := &counting{}
			s := teststack.NewWrapped(t, func(st store.Store) store.Store { kv.Store = st; return kv }, behindProxy, withRisk(c.risk))
			kv.n.Store(0)
			teststack.Get(t, s.Browser, s.BrokerURL+"/authorize?"+teststack.AuthParams().Encode())
			if got := kv.n.Swap(0); got != c.want {
				t.Errorf("authorize: %d store round trips, want %d", got, c.want)
			}
			teststack.Get(t, s.Browser, s.BrokerURL+"/authorize/choose")
			if got := kv.n.Swap(0); got != 0 {
				t.Errorf("chooser: %d store round trips, want 0", got)
			}
		})
	}
}

// The metric counts suspicious requests by reason.
func TestRiskMetric(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil, false, riskIdPs, behindProxy, withRisk(config.Risk{DenyNetworks: []string{"192.0.2.0/24"}, WAFHeader: riskWAF}))
	var wg sync.WaitGroup
	for _, h := range []http.Header{
		{"X-Suspicious": {"1"}},
		{"X-Suspicious": {"1"}, "X-Forwarded-For": {"192.0.2.1"}},
		{},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.browser().authorizeWith(t, authParams(), h)
		}()
	}
	wg.Wait()
	rec := httptest.NewRecorder()
	r.Broker.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`sesame_risk_suspicious_total{platform="std",reason="waf"} 2`,
		`sesame_risk_suspicious_total{platform="std",reason="deny_network"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
