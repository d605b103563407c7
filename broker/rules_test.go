package broker_test

// One end-to-end test per rule of issue 3 (levels, SSO and step-up, per-SP
// policy, consent, mock-IdP scenarios), through the real HTTP flow between
// a browser, the broker and the mock IdPs, on both stores. The figures are
// those of shared/reference/franceconnect.md and docs/scenarios.md.
//
// Stacks (broker/teststack): standard platform "std" with IdPs impots
// (eidas1) and laposte (eidas1-3); "+" (teststack.Plus) with laposte and
// msa, where the broker trusts msa up to eidas2 although the mock can
// assert eidas3.

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

const (
	loaLow         = "http://eidas.europa.eu/LoA/low"
	loaSubstantial = "http://eidas.europa.eu/LoA/substantial"
	loaHigh        = "http://eidas.europa.eu/LoA/high"

	essentialACR = `{"id_token":{"acr":{"essential":true}}}`
	amrClaims    = `{"id_token":{"amr":null}}`
)

// scenario builds mock-IdP scenario fields from pairs.
func scenario(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// Levels: the lowest known value of acr_values wins, unknown values are
// ignored, none known means the platform default, and the eIDAS LoA URIs
// are synonyms answered in the platform's form. The level shows on the
// chooser, is what the IdP is asked for, and is the id_token's acr.
func TestRuleACRChoice(t *testing.T) {
	t.Parallel()
	rows := []struct {
		plus      bool
		acrValues string // "" leaves acr_values out
		want      string
	}{
		{false, "eidas1", "eidas1"},
		{false, "eidas9 eidas1 foo", "eidas1"},
		{false, "eidas9", "eidas1"},
		{false, "", "eidas1"},
		{false, loaLow, "eidas1"},
		{true, "eidas3", "eidas3"},
		{true, "eidas3 eidas2", "eidas2"},
		{true, "eidas2 eidas3", "eidas2"},
		{true, "eidas9 eidas3 foo", "eidas3"},
		{true, "eidas9 foo", "eidas3"},
		{true, "foo eidas2 eidas9", "eidas2"},
		{true, "", "eidas3"},
		{true, loaSubstantial, "eidas2"},
		{true, "eidas9 " + loaHigh, "eidas3"},
		{true, loaHigh + " " + loaSubstantial, "eidas2"},
	}
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		rigs := map[bool]*rig{false: newRig(t, store, false), true: newRig(t, store, true)}
		for _, row := range rows {
			name := map[bool]string{false: "std", true: "plus"}[row.plus] + "/" + row.acrValues
			t.Run(name, func(t *testing.T) {
				r := rigs[row.plus].browser()
				p := authParams("acr_values", row.acrValues)
				wantLocation(t, r.authorize(t, p), "/authorize/choose")
				if badge, _ := r.chooser(t); badge != row.want {
					t.Errorf("chooser shows level %q, want %q", badge, row.want)
				}
				idpAuth := r.Choose(t, "laposte")
				if u, _ := url.Parse(idpAuth); u.Query().Get("acr_values") != row.want {
					t.Errorf("laposte asked acr_values=%q, want %q", u.Query().Get("acr_values"), row.want)
				}
				u := r.Finish(t, r.IdPLogin(t, idpAuth, "angela-dubois", nil))
				if got := r.redeem(t, teststack.SPID, u).ID["acr"]; got != row.want {
					t.Errorf("id_token acr %v, want %s", got, row.want)
				}
			})
		}
	})
}

// A level outside the platform's set goes back to the SP as an error with
// state and iss: invalid_request, or FranceConnect's invalid_acr with the
// acr_error switch. No chooser, no session.
func TestRuleACROutsidePlatform(t *testing.T) {
	t.Parallel()
	fcCode := func(c *config.Config) { c.Broker.Platforms[0].ACRError = "invalid_acr" }
	rows := []struct {
		plus      bool
		fc        bool
		acrValues string
		want      string
	}{
		{true, false, "eidas1", "invalid_request"},
		{true, false, "eidas2 eidas1", "invalid_request"}, // the lowest known is eidas1
		{true, false, loaLow, "invalid_request"},
		{true, false, "eidas9 eidas1", "invalid_request"},
		{false, false, "eidas2", "invalid_request"},
		{false, false, "eidas3 eidas9", "invalid_request"},
		{false, false, loaHigh, "invalid_request"},
		{true, true, "eidas1", "invalid_acr"},
		{false, true, "eidas2", "invalid_acr"},
	}
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		rigs := map[[2]bool]*rig{}
		for _, plus := range []bool{false, true} {
			rigs[[2]bool{plus, false}] = newRig(t, store, plus)
			rigs[[2]bool{plus, true}] = newRig(t, store, plus, fcCode)
		}
		for _, row := range rows {
			name := map[bool]string{false: "std", true: "plus"}[row.plus] + "/" + row.want + "/" + row.acrValues
			t.Run(name, func(t *testing.T) {
				r := rigs[[2]bool{row.plus, row.fc}].browser()
				resp := r.authorize(t, authParams("acr_values", row.acrValues))
				wantSPError(t, r, resp, row.want)
				if c := resp.Header.Get("Set-Cookie"); c != "" {
					t.Errorf("a refused request opened a session: %s", c)
				}
			})
		}
	})
}

// The broker asks the IdP for max(SP level, IdP's lowest allowed level),
// always with prompt=login; the login then carries what the IdP asserted.
func TestRuleACRAskedOfIdP(t *testing.T) {
	t.Parallel()
	rows := []struct {
		name      string
		rig       string // "std", "plus", or with laposte's floor raised
		spLevel   string
		idp       string
		wantAsked string
	}{
		{"std SP level", "std", "eidas1", "impots", "eidas1"},
		{"std IdP floor above SP", "std, laposte eidas2-3", "eidas1", "laposte", "eidas2"},
		{"plus SP level above IdP floor", "plus", "eidas2", "msa", "eidas2"},
		{"plus eidas3", "plus", "eidas3", "laposte", "eidas3"},
		{"plus IdP floor above SP", "plus, laposte eidas3", "eidas2", "laposte", "eidas3"},
	}
	floor := func(levels ...string) teststack.Option {
		return onIdP("laposte", func(c *config.IdP) { c.ACRValues = levels })
	}
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		rigs := map[string]*rig{
			"std":                   newRig(t, store, false),
			"std, laposte eidas2-3": newRig(t, store, false, floor("eidas2", "eidas3")),
			"plus":                  newRig(t, store, true),
			"plus, laposte eidas3":  newRig(t, store, true, floor("eidas3")),
		}
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				r := rigs[row.rig].browser()
				u := r.toIdP(t, authParams("acr_values", row.spLevel), row.idp)
				if got := u.Query().Get("acr_values"); got != row.wantAsked {
					t.Errorf("%s asked acr_values=%q, want %q", row.idp, got, row.wantAsked)
				}
				if got := u.Query().Get("prompt"); got != "login" {
					t.Errorf("%s asked prompt=%q, want login", row.idp, got)
				}
				// The mock asserts the level it was asked; the SP gets it.
				sp := r.Finish(t, r.IdPLogin(t, u.String(), "angela-dubois", nil))
				if got := r.redeem(t, teststack.SPID, sp).ID["acr"]; got != row.wantAsked {
					t.Errorf("id_token acr %v, want %s as asserted", got, row.wantAsked)
				}
			})
		}
	})
}

// The acr the IdP returns must be known, at least the level asked, and in
// that IdP's allowed list; otherwise no code, and a page with a code (or,
// for an essential acr that is not met, unmet_authentication_requirements
// to the SP). An accepted acr is passed on as asserted: never raised,
// never lowered, in the platform's form.
func TestRuleACRReturned(t *testing.T) {
	t.Parallel()
	type outcome struct {
		page    string // an error page with this code (403)
		spError string // a redirect to the SP with this error
		acr     string // accepted: the id_token's acr
	}
	rows := []struct {
		name      string
		plus      bool
		floorStd  bool // std laposte registered at eidas2-3 only
		level     string
		idp       string
		acr       string // scenario_acr
		essential bool
		want      outcome
	}{
		{"lower than asked", true, false, "eidas3", "laposte", "eidas2", false, outcome{page: "S100001"}},
		{"eidas1 on plus", true, false, "eidas2", "laposte", "eidas1", false, outcome{page: "S100001"}},
		{"below the level asked of the IdP", false, true, "eidas1", "laposte", "eidas1", false, outcome{page: "S100001"}},
		{"unknown acr", true, false, "eidas2", "laposte", "eidas9", false, outcome{page: "S100001"}},
		{"no acr", true, false, "eidas2", "laposte", "none", false, outcome{page: "S100001"}},
		{"unknown acr on std", false, false, "eidas1", "impots", "eidas9", false, outcome{page: "S100001"}},
		{"no acr on std", false, false, "eidas1", "impots", "none", false, outcome{page: "S100001"}},
		{"outside the IdP's list", true, false, "eidas2", "msa", "eidas3", false, outcome{page: "S100018"}},
		{"outside the IdP's list as URI", true, false, "eidas2", "msa", loaHigh, false, outcome{page: "S100018"}},
		{"outside impots's list on std", false, false, "eidas1", "impots", "eidas2", false, outcome{page: "S100018"}},
		{"essential, lower", true, false, "eidas3", "laposte", "eidas2", true, outcome{spError: "unmet_authentication_requirements"}},
		{"essential, unknown", true, false, "eidas2", "laposte", "eidas9", true, outcome{spError: "unmet_authentication_requirements"}},
		{"essential, none on std", false, false, "eidas1", "impots", "none", true, outcome{spError: "unmet_authentication_requirements"}},
		{"essential, outside the IdP's list", true, false, "eidas2", "msa", "eidas3", true, outcome{spError: "unmet_authentication_requirements"}},
		{"as asked, not raised", true, false, "eidas2", "laposte", "eidas2", false, outcome{acr: "eidas2"}},
		{"essential, as asked", true, false, "eidas2", "msa", "eidas2", true, outcome{acr: "eidas2"}},
		{"higher than asked, not lowered", true, false, "eidas2", "laposte", "eidas3", false, outcome{acr: "eidas3"}},
		{"higher than asked on std", false, false, "eidas1", "laposte", "eidas2", false, outcome{acr: "eidas2"}},
		{"URI answered in platform form", true, false, "eidas3", "laposte", loaHigh, false, outcome{acr: "eidas3"}},
		{"substantial URI", true, false, "eidas2", "msa", loaSubstantial, false, outcome{acr: "eidas2"}},
	}
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		rigs := map[string]*rig{
			"std":   newRig(t, store, false),
			"floor": newRig(t, store, false, onIdP("laposte", func(c *config.IdP) { c.ACRValues = []string{"eidas2", "eidas3"} })),
			"plus":  newRig(t, store, true),
		}
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				t.Parallel()
				key := map[bool]string{false: "std", true: "plus"}[row.plus]
				if row.floorStd {
					key = "floor"
				}
				r := rigs[key].browser()
				p := authParams("acr_values", row.level)
				if row.essential {
					p.Set("claims", essentialACR)
				}
				resp, body := r.callback(t, p, row.idp, "angela-dubois", scenario("scenario_acr", row.acr))
				switch {
				case row.want.page != "":
					wantPage(t, resp, body, http.StatusForbidden, row.want.page)
					// Back at the chooser, and no login was kept.
					if resp, _ := teststack.Get(t, r.Browser, r.BrokerURL+"/authorize/choose"); resp.StatusCode != http.StatusOK {
						t.Errorf("chooser after the refusal: %d", resp.StatusCode)
					}
					wantSPError(t, r, r.authorize(t, authParams("acr_values", row.level, "prompt", "none")), "login_required")
				case row.want.spError != "":
					wantSPError(t, r, resp, row.want.spError)
				default:
					wantLocation(t, resp, "/authorize/consent")
					u := r.Finish(t, r.BrokerURL+"/authorize/consent")
					if got := r.redeem(t, teststack.SPID, u).ID["acr"]; got != row.want.acr {
						t.Errorf("id_token acr %v, want %s", got, row.want.acr)
					}
				}
			})
		}
	})
}

// SSO and step-up on "+": an eidas3 session serves eidas2 requests of any
// SP without the chooser, as eidas2 and with the original auth_time; an
// eidas3 request always re-authenticates, and the new login's acr and
// auth_time replace the session's. The chooser greys the IdPs below the
// level.
func TestRuleSSOAndStepUpPlus(t *testing.T) {
	t.Parallel()
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		base := newRig(t, store, true, withSP("sp2", func(sp *config.SP) { sp.Sector = "sector-b" }))
		eidas2, eidas3 := authParams("acr_values", "eidas2"), authParams("acr_values", "eidas3")
		sp2 := func(p url.Values) url.Values { p = maps.Clone(p); p.Set("client_id", "sp2"); return p }

		t.Run("eidas3 session reused as eidas2", func(t *testing.T) {
			t.Parallel()
			r := base.browser()
			u, before, after := r.login(t, eidas3, "laposte", "angela-dubois", nil)
			first := r.redeem(t, teststack.SPID, u).ID
			t1 := authTime(t, first)
			if first["acr"] != "eidas3" || t1 < before || t1 > after {
				t.Fatalf("first login: acr %v auth_time %d, want eidas3 within [%d, %d]", first["acr"], t1, before, after)
			}
			for _, c := range []struct {
				client string
				p      url.Values
			}{{"sp2", sp2(eidas2)}, {teststack.SPID, eidas2}} {
				id := r.redeem(t, c.client, r.sso(t, c.p)).ID
				if id["acr"] != "eidas2" || authTime(t, id) != t1 {
					t.Errorf("SSO for %s: acr %v auth_time %d, want eidas2 and %d", c.client, id["acr"], authTime(t, id), t1)
				}
			}
			// eidas3 again: chooser, a new login, a new auth_time...
			waitNextSecond()
			wantLocation(t, r.authorize(t, sp2(eidas3)), "/authorize/choose")
			idpAuth := r.Choose(t, "laposte")
			before = time.Now().Unix()
			cb := r.IdPLogin(t, idpAuth, "angela-dubois", nil)
			after = time.Now().Unix()
			id := r.redeem(t, "sp2", r.Finish(t, cb)).ID
			t2 := authTime(t, id)
			if id["acr"] != "eidas3" || t2 < before || t2 > after || t2 == t1 {
				t.Fatalf("eidas3 again: acr %v auth_time %d, want eidas3 within [%d, %d]", id["acr"], t2, before, after)
			}
			// ...which the session keeps.
			if id := r.redeem(t, teststack.SPID, r.sso(t, eidas2)).ID; authTime(t, id) != t2 || id["acr"] != "eidas2" {
				t.Errorf("SSO after eidas3 login: acr %v auth_time %d, want eidas2 and %d", id["acr"], authTime(t, id), t2)
			}
		})

		t.Run("step-up from eidas2", func(t *testing.T) {
			t.Parallel()
			r := base.browser()
			u, _, _ := r.login(t, eidas2, "msa", "angela-dubois", nil)
			t1 := authTime(t, r.redeem(t, teststack.SPID, u).ID)
			waitNextSecond()
			wantLocation(t, r.authorize(t, sp2(eidas3)), "/authorize/choose")
			if badge, idps := r.chooser(t); badge != "eidas3" || !idps["msa"] || idps["laposte"] || len(idps) != 2 {
				t.Fatalf("eidas3 chooser: level %s, IdPs (id: greyed) %v; want msa greyed, laposte offered", badge, idps)
			}
			_, page := teststack.Get(t, r.Browser, r.BrokerURL+"/authorize/choose")
			resp, body := teststack.Post(t, r.Browser, r.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"msa"}})
			wantPage(t, resp, body, http.StatusBadRequest, "S020001")
			idpAuth := r.Choose(t, "laposte")
			before := time.Now().Unix()
			cb := r.IdPLogin(t, idpAuth, "angela-dubois", nil)
			after := time.Now().Unix()
			id := r.redeem(t, "sp2", r.Finish(t, cb)).ID
			t2 := authTime(t, id)
			if id["acr"] != "eidas3" || t2 < before || t2 > after || t2 == t1 {
				t.Fatalf("step-up: acr %v auth_time %d, want eidas3 within [%d, %d], not %d", id["acr"], t2, before, after, t1)
			}
			if id := r.redeem(t, teststack.SPID, r.sso(t, eidas2)).ID; authTime(t, id) != t2 {
				t.Errorf("SSO after step-up: auth_time %d, want the step-up's %d", authTime(t, id), t2)
			}
		})
	})
}

// SSO on the standard platform, at eidas1: a second SP (and the first
// again) is served from the session, with the original auth_time.
func TestRuleSSOStandard(t *testing.T) {
	t.Parallel()
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		r := newRig(t, store, false, withSP("sp2", nil))
		u, before, after := r.login(t, authParams(), "impots", "angela-dubois", nil)
		first := r.redeem(t, teststack.SPID, u).ID
		t1 := authTime(t, first)
		if first["acr"] != "eidas1" || t1 < before || t1 > after {
			t.Fatalf("login: acr %v auth_time %d, want eidas1 within [%d, %d]", first["acr"], t1, before, after)
		}
		waitNextSecond()
		for _, client := range []string{"sp2", teststack.SPID} {
			id := r.redeem(t, client, r.sso(t, authParams("client_id", client))).ID
			if id["acr"] != "eidas1" || authTime(t, id) != t1 {
				t.Errorf("SSO for %s: acr %v auth_time %d, want eidas1 and %d", client, id["acr"], authTime(t, id), t1)
			}
		}
	})
}

// prompt=login, max_age=0 and an expired max_age force a new login at the
// IdP, whose time becomes auth_time; a max_age not yet expired keeps SSO
// and the original auth_time.
func TestRuleForcedReauthentication(t *testing.T) {
	t.Parallel()
	rows := []struct {
		name   string
		param  [2]string
		wait   time.Duration
		forced bool
	}{
		{"max_age not expired", [2]string{"max_age", "3600"}, 0, false},
		{"prompt=login", [2]string{"prompt", "login"}, 0, true},
		{"max_age=0", [2]string{"max_age", "0"}, 0, true},
		{"max_age expired", [2]string{"max_age", "1"}, 1100 * time.Millisecond, true},
	}
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		base := newRig(t, store, false)
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				t.Parallel()
				r := base.browser()
				u, _, _ := r.login(t, authParams(), "impots", "angela-dubois", nil)
				t1 := authTime(t, r.redeem(t, teststack.SPID, u).ID)
				time.Sleep(row.wait)
				waitNextSecond()
				p := authParams(row.param[0], row.param[1])
				if !row.forced {
					if got := authTime(t, r.redeem(t, teststack.SPID, r.sso(t, p)).ID); got != t1 {
						t.Errorf("SSO auth_time %d, want the login's %d", got, t1)
					}
					return
				}
				u, before, after := r.login(t, p, "impots", "angela-dubois", nil)
				if got := authTime(t, r.redeem(t, teststack.SPID, u).ID); got < before || got > after {
					t.Errorf("auth_time %d, want the new login's, within [%d, %d] (first login %d)", got, before, after, t1)
				}
			})
		}
	})
}

// idp_hint: a hint within the SP's idp_hints skips the chooser; a hint
// outside them, to a denied IdP or to an unknown one goes back to the SP as
// invalid_request.
func TestRuleIdPHint(t *testing.T) {
	t.Parallel()
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		r := newRig(t, store, false, offering("impots", "laposte", "msa"), onSP(func(sp *config.SP) {
			sp.IdPHints = []string{"laposte", "msa"}
			sp.IdPsDenied = []string{"msa"}
		}))
		t.Run("allowed", func(t *testing.T) {
			b := r.browser()
			resp := b.authorize(t, authParams("idp_hint", "laposte"))
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, r.IdPURL+"/laposte/authorize?") {
				t.Fatalf("idp_hint=laposte: %d to %q, want straight to laposte", resp.StatusCode, loc)
			}
			if id := b.redeem(t, teststack.SPID, b.Finish(t, b.IdPLogin(t, loc, "angela-dubois", nil))).ID; id["acr"] != "eidas1" {
				t.Errorf("acr %v", id["acr"])
			}
		})
		for name, hint := range map[string]string{"not in idp_hints": "impots", "denied": "msa", "unknown": "franceconnect"} {
			t.Run(name, func(t *testing.T) {
				b := r.browser()
				wantSPError(t, b, b.authorize(t, authParams("idp_hint", hint)), "invalid_request")
			})
		}
		t.Run("below the level", func(t *testing.T) {
			plus := newRig(t, store, true, onSP(func(sp *config.SP) { sp.IdPHints = []string{"laposte", "msa"} }))
			wantSPError(t, plus, plus.authorize(t, authParams("acr_values", "eidas3", "idp_hint", "msa")), "invalid_request")
			resp := plus.browser().authorize(t, authParams("acr_values", "eidas2", "idp_hint", "msa"))
			if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, plus.IdPURL+"/msa/authorize?") {
				t.Errorf("idp_hint=msa at eidas2: to %q, want straight to msa", loc)
			}
		})
	})
}

// The chooser greys out a switched-off IdP (and refuses it when posted, or
// named in idp_hint) and leaves out a hidden one.
func TestRuleChooserGreyedAndHidden(t *testing.T) {
	t.Parallel()
	off := false
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		r := newRig(t, store, false, offering("impots", "laposte", "msa"),
			onIdP("laposte", func(c *config.IdP) { c.Active = &off }),
			onIdP("msa", func(c *config.IdP) { c.Display = &off }),
			onSP(func(sp *config.SP) { sp.IdPHints = []string{"laposte"} }))
		b := r.browser()
		wantLocation(t, b.authorize(t, authParams()), "/authorize/choose")
		if _, idps := b.chooser(t); !maps.Equal(idps, map[string]bool{"impots": false, "laposte": true}) {
			t.Errorf("chooser IdPs (id: greyed) %v, want impots, and laposte greyed", idps)
		}
		_, page := teststack.Get(t, b.Browser, b.BrokerURL+"/authorize/choose")
		resp, body := teststack.Post(t, b.Browser, b.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"laposte"}})
		wantPage(t, resp, body, http.StatusBadRequest, "S020001")
		b = r.browser()
		wantSPError(t, b, b.authorize(t, authParams("idp_hint", "laposte")), "invalid_request")
	})
}

// prompt: an SP may send only the prompt values it is registered for.
func TestRulePrompts(t *testing.T) {
	t.Parallel()
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		r := newRig(t, store, false,
			withSP("no-none", func(sp *config.SP) { sp.Prompts = []string{"login", "consent"} }),
			withSP("none-only", func(sp *config.SP) { sp.Prompts = []string{"none"} }))
		rows := []struct {
			client, prompt string
			spError        string // "": the chooser
		}{
			{"no-none", "none", "invalid_request"},
			{"no-none", "login", ""},
			{"no-none", "consent", ""},
			{"none-only", "login", "invalid_request"},
			{"none-only", "consent", "invalid_request"},
			{"none-only", "none", "login_required"}, // allowed, and no session
			{teststack.SPID, "none", "login_required"},
		}
		for _, row := range rows {
			t.Run(row.client+"/"+row.prompt, func(t *testing.T) {
				b := r.browser()
				resp := b.authorize(t, authParams("client_id", row.client, "prompt", row.prompt))
				if row.spError == "" {
					wantLocation(t, resp, "/authorize/choose")
					return
				}
				wantSPError(t, b, resp, row.spError)
			})
		}
	})
}

// Scopes and claims: unregistered scopes are dropped; amr comes only
// through the claims parameter, and only to an SP allowed it.
func TestRuleScopesAndClaims(t *testing.T) {
	t.Parallel()
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		r := newRig(t, store, false,
			withSP("narrow", func(sp *config.SP) { sp.Scopes = []string{"openid", "given_name", "birth"} }),
			withSP("amr", func(sp *config.SP) { sp.Claims = []string{"amr"} }))

		t.Run("unregistered scopes dropped", func(t *testing.T) {
			b := r.browser()
			p := authParams("client_id", "narrow", "scope", "openid given_name family_name identite_pivot email birth",
				"claims", `{"userinfo":{"family_name":null,"email":{"essential":true}},"id_token":{"birthdate":null}}`)
			u, _, _ := b.login(t, p, "impots", "angela-dubois", nil)
			tok := b.redeem(t, "narrow", u)
			if _, ok := tok.ID["birthdate"]; ok {
				t.Errorf("id_token carries birthdate, outside the registered scopes")
			}
			if tok.Scope != "openid given_name birth" {
				t.Errorf("token scope %q, want the registered ones only", tok.Scope)
			}
			info := b.userinfo(t, tok.AccessToken)
			if got := slices.Sorted(maps.Keys(info)); !slices.Equal(got, []string{"birthcountry", "birthplace", "given_name", "sub"}) {
				t.Errorf("userinfo claims %v, want sub, given_name, birthplace and birthcountry only", got)
			}
			if info["given_name"] != "Angela Claire Louise" || info["birthplace"] != "75107" {
				t.Errorf("userinfo %v", info)
			}
		})

		for name, claims := range map[string]string{
			"amr refused in id_token":  amrClaims,
			"amr refused as essential": `{"id_token":{"amr":{"essential":true}}}`,
			"amr refused in userinfo":  `{"userinfo":{"amr":null}}`,
		} {
			t.Run(name, func(t *testing.T) {
				b := r.browser()
				wantSPError(t, b, b.authorize(t, authParams("claims", claims)), "invalid_request")
			})
		}

		t.Run("amr delivered when asked and allowed", func(t *testing.T) {
			b := r.browser()
			u, _, _ := b.login(t, authParams("client_id", "amr", "claims", amrClaims), "impots", "angela-dubois", nil)
			if got := amr(t, b.redeem(t, "amr", u).ID); !slices.Equal(got, []string{"pwd"}) {
				t.Errorf("amr %v, want [pwd]", got)
			}
		})
		t.Run("amr in userinfo when asked there", func(t *testing.T) {
			b := r.browser()
			u, _, _ := b.login(t, authParams("client_id", "amr", "claims", `{"userinfo":{"amr":null}}`), "impots", "angela-dubois", nil)
			info := b.userinfo(t, b.redeem(t, "amr", u).AccessToken)
			if got, _ := info["amr"].([]any); len(got) != 1 || got[0] != "pwd" {
				t.Errorf("userinfo amr %v, want [pwd]", info["amr"])
			}
		})
		t.Run("amr absent when not asked", func(t *testing.T) {
			b := r.browser()
			u, _, _ := b.login(t, authParams("client_id", "amr"), "impots", "angela-dubois", nil)
			if got := amr(t, b.redeem(t, "amr", u).ID); got != nil {
				t.Errorf("amr %v without the claims parameter", got)
			}
		})
	})
}

// IdP allow-list and deny-list: the chooser hides the IdPs an SP may not
// use, choosing one anyway is refused (S020001), and a session made at such
// an IdP gives that SP no SSO.
func TestRuleIdPAllowAndDenyLists(t *testing.T) {
	t.Parallel()
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		r := newRig(t, store, false, offering("impots", "laposte", "msa"),
			withSP("deny", func(sp *config.SP) { sp.IdPsDenied = []string{"impots"} }),
			withSP("allow", func(sp *config.SP) { sp.IdPsAllowed = []string{"impots"} }))

		t.Run("chooser", func(t *testing.T) {
			for client, want := range map[string][]string{
				teststack.SPID: {"impots", "laposte", "msa"},
				"deny":         {"laposte", "msa"},
				"allow":        {"impots"},
			} {
				b := r.browser()
				wantLocation(t, b.authorize(t, authParams("client_id", client)), "/authorize/choose")
				if _, idps := b.chooser(t); !slices.Equal(slices.Sorted(maps.Keys(idps)), want) {
					t.Errorf("%s's chooser offers %v, want %v", client, idps, want)
				}
			}
		})

		t.Run("choosing a hidden IdP", func(t *testing.T) {
			for client, idp := range map[string]string{"deny": "impots", "allow": "laposte"} {
				b := r.browser()
				wantLocation(t, b.authorize(t, authParams("client_id", client)), "/authorize/choose")
				_, page := teststack.Get(t, b.Browser, b.BrokerURL+"/authorize/choose")
				resp, body := teststack.Post(t, b.Browser, b.BrokerURL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {idp}})
				wantPage(t, resp, body, http.StatusBadRequest, "S020001")
			}
		})

		t.Run("no SSO from a session at a refused IdP", func(t *testing.T) {
			rows := []struct {
				idp, client string
				sso         bool
			}{
				{"impots", "allow", true}, // the control: SSO works for a listed IdP
				{"impots", "deny", false},
				{"laposte", "allow", false},
				{"laposte", "deny", true},
			}
			for _, row := range rows {
				b := r.browser()
				b.login(t, authParams(), row.idp, "angela-dubois", nil)
				want := map[bool]string{true: "/authorize/consent", false: "/authorize/choose"}[row.sso]
				if loc := b.authorize(t, authParams("client_id", row.client)).Header.Get("Location"); loc != want {
					t.Errorf("session at %s, request of %s: to %q, want %q", row.idp, row.client, loc, want)
				}
			}
		})
	})
}

// Consent: a private SP with identity consent asks for a ticked box; every
// other SP, and an openid-only request, shows the information page.
func TestRuleConsent(t *testing.T) {
	t.Parallel()
	rows := []struct {
		client, scope string
		checkbox      bool
	}{
		{"private", "openid identite_pivot", true},
		{"private", "openid", false},
		{"private", "openid email", true},
		{"public", "openid identite_pivot", false},
		{"private-no-consent", "openid identite_pivot", false},
	}
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		r := newRig(t, store, false,
			withSP("private", func(sp *config.SP) { sp.Type, sp.IdentityConsent = "private", true }),
			withSP("public", func(sp *config.SP) { sp.Type, sp.IdentityConsent = "public", true }),
			withSP("private-no-consent", func(sp *config.SP) { sp.Type = "private" }))
		for _, row := range rows {
			t.Run(row.client+"/"+row.scope, func(t *testing.T) {
				t.Parallel()
				b := r.browser()
				resp, _ := b.callback(t, authParams("client_id", row.client, "scope", row.scope), "impots", "angela-dubois", nil)
				wantLocation(t, resp, "/authorize/consent")
				consentURL := b.BrokerURL + "/authorize/consent"
				_, page := teststack.Get(t, b.Browser, consentURL)
				csrf := teststack.Field(t, teststack.CSRFRE, page)
				if got := strings.Contains(page, `type="checkbox" id="consent" name="consent"`); got != row.checkbox {
					t.Fatalf("checkbox on the page: %v, want %v", got, row.checkbox)
				}
				if row.checkbox {
					resp, page = teststack.Post(t, b.Browser, consentURL, url.Values{"csrf": {csrf}})
					if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
						!strings.Contains(page, `name="consent"`) || !strings.Contains(page, `id="consent-error"`) {
						t.Fatalf("continue without the box: %d to %q, want 400, the box and its error", resp.StatusCode, resp.Header.Get("Location"))
					}
				}
				form := url.Values{"csrf": {csrf}}
				if row.checkbox {
					form.Set("consent", "yes")
				}
				resp, _ = teststack.Post(t, b.Browser, consentURL, form)
				u, _ := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("continue: %d", resp.StatusCode)
				}
				b.redeem(t, row.client, u)
			})
		}
		// prompt=none shows no page, so it cannot collect the ticked box:
		// a private SP with identity consent gets consent_required
		// (OIDC Core 3.1.2.6), never a code without consent.
		t.Run("prompt=none", func(t *testing.T) {
			t.Parallel()
			for _, row := range rows {
				b := r.browser()
				b.login(t, authParams(), "impots", "angela-dubois", nil)
				resp := b.authorize(t, authParams("client_id", row.client, "scope", row.scope, "prompt", "none"))
				if row.checkbox {
					wantSPError(t, b, resp, "consent_required")
					continue
				}
				u, _ := url.Parse(resp.Header.Get("Location"))
				b.redeem(t, row.client, u)
			}
		})
	})
}

// Every mock-IdP scenario, through the broker, with the outcome
// docs/scenarios.md gives: a banner on the chooser (the citizen can pick
// again), an error page (no code), or an accepted login.
func TestRuleMockScenarios(t *testing.T) {
	t.Parallel()
	type outcome struct {
		banner string                                     // back to the chooser with this banner
		page   string                                     // an error page with this code (502)
		check  func(t *testing.T, id map[string]any) bool // accepted: checks the id_token
	}
	amrIs := func(want ...string) func(*testing.T, map[string]any) bool {
		return func(t *testing.T, id map[string]any) bool { return slices.Equal(amr(t, id), want) }
	}
	accepted := func(*testing.T, map[string]any) bool { return true }
	rows := []struct {
		name, idp, identity string
		scenario            url.Values
		want                outcome
		slow                bool // the token call outlives the IdP's timeout
	}{
		{"amr", "laposte", "", scenario("scenario_amr", "mfa otp"), outcome{check: amrIs("mfa", "otp")}, false},
		{"amr comma list", "laposte", "", scenario("scenario_amr", "pwd,mfa"), outcome{check: amrIs("pwd", "mfa")}, false},
		{"no amr", "laposte", "", scenario("scenario_amr", "none"), outcome{check: amrIs()}, false},
		{"error access_denied", "laposte", "", scenario("scenario_error", "access_denied"), outcome{banner: "S020030"}, false},
		{"error login_required", "laposte", "", scenario("scenario_error", "login_required"), outcome{banner: "S020030"}, false},
		{"error consent_required", "laposte", "", scenario("scenario_error", "consent_required"), outcome{banner: "S020030"}, false},
		{"error interaction_required", "laposte", "", scenario("scenario_error", "interaction_required"), outcome{banner: "S020030"}, false},
		{"error server_error", "laposte", "", scenario("scenario_error", "server_error"), outcome{banner: "S020026"}, false},
		{"error temporarily_unavailable", "laposte", "", scenario("scenario_error", "temporarily_unavailable"), outcome{banner: "S020026"}, false},
		{"error invalid_request", "laposte", "", scenario("scenario_error", "invalid_request"), outcome{banner: "S020027"}, false},
		{"token delay within the timeout", "laposte", "", scenario("scenario_token_delay", "200ms"), outcome{check: accepted}, false},
		{"token delay beyond the timeout", "impots", "", scenario("scenario_token_delay", "1500ms"), outcome{banner: "S020026"}, true},
		{"wrong key forged", "laposte", "", scenario("scenario_wrong_key", "forged"), outcome{banner: "S020027"}, false},
		{"wrong key unknown_kid", "laposte", "", scenario("scenario_wrong_key", "unknown_kid"), outcome{banner: "S020027"}, false},
		{"drop birthdate", "laposte", "", scenario("scenario_drop_claim", "birthdate"), outcome{page: "S010001"}, false},
		{"drop given_name", "laposte", "", scenario("scenario_drop_claim", "given_name"), outcome{page: "S010001"}, false},
		{"drop family_name", "laposte", "", scenario("scenario_drop_claim", "family_name"), outcome{page: "S010001"}, false},
		{"drop gender", "laposte", "", scenario("scenario_drop_claim", "gender"), outcome{page: "S010001"}, false},
		{"drop birthcountry", "laposte", "", scenario("scenario_drop_claim", "birthcountry"), outcome{page: "S010001"}, false},
		{"drop birthplace, born in France", "laposte", "", scenario("scenario_drop_claim", "birthplace"), outcome{page: "S010001"}, false},
		{"drop birthplace, born abroad", "laposte", "klaus-mueller", scenario("scenario_drop_claim", "birthplace"), outcome{check: accepted}, false},
		{"drop email", "laposte", "", scenario("scenario_drop_claim", "email"), outcome{check: accepted}, false},
		{"drop sub", "laposte", "", scenario("scenario_drop_claim", "sub"), outcome{banner: "S020027"}, false},
		{"drop id_token sub", "laposte", "", scenario("scenario_drop_claim", "id_token:sub"), outcome{banner: "S020027"}, false},
		{"drop userinfo sub", "laposte", "", scenario("scenario_drop_claim", "userinfo:sub"), outcome{banner: "S020027"}, false},
		{"drop nonce", "laposte", "", scenario("scenario_drop_claim", "nonce"), outcome{banner: "S020027"}, false},
		{"drop iat", "laposte", "", scenario("scenario_drop_claim", "iat"), outcome{banner: "S020027"}, false},
		{"drop iss", "laposte", "", scenario("scenario_drop_claim", "iss"), outcome{banner: "S020027"}, false},
		{"drop aud", "laposte", "", scenario("scenario_drop_claim", "aud"), outcome{banner: "S020027"}, false},
		{"drop exp", "laposte", "", scenario("scenario_drop_claim", "exp"), outcome{banner: "S020027"}, false},
		{"drop at_hash", "laposte", "", scenario("scenario_drop_claim", "at_hash"), outcome{check: accepted}, false},
		{"drop auth_time", "laposte", "", scenario("scenario_drop_claim", "auth_time"), outcome{check: accepted}, false},
		{"bad COG birthplace", "laposte", "", scenario("scenario_bad_cog", "birthplace"), outcome{page: "S010001"}, false},
		{"bad COG birthplace, born abroad", "laposte", "klaus-mueller", scenario("scenario_bad_cog", "birthplace"), outcome{page: "S010001"}, false},
		{"bad COG birthcountry", "laposte", "", scenario("scenario_bad_cog", "birthcountry"), outcome{page: "S010001"}, false},
		{"invalid COG identity", "laposte", "paul-invalide-lieu", nil, outcome{page: "S010001"}, false},
	}
	const timeout = 500 * time.Millisecond
	bothStores(t, func(t *testing.T, store ...teststack.Option) {
		r := newRig(t, store, false, teststack.IdPTimeout("impots", timeout), onSP(func(sp *config.SP) { sp.Claims = []string{"amr"} }))
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				t.Parallel()
				b := r.browser()
				identity := row.identity
				if identity == "" {
					identity = "angela-dubois"
				}
				idpAuth := b.toIdP(t, authParams("claims", amrClaims), row.idp).String()
				before := time.Now()
				cb := b.IdPLogin(t, idpAuth, identity, row.scenario)
				start := time.Now()
				resp, body := teststack.Get(t, b.Browser, cb)
				elapsed := time.Since(start)
				after := time.Now()
				switch {
				case row.want.banner != "":
					wantBanner(t, b, resp, row.want.banner)
					// The citizen picks again, and logs in.
					b.redeem(t, teststack.SPID, b.Finish(t, b.IdPLogin(t, b.Choose(t, "laposte"), "angela-dubois", nil)))
				case row.want.page != "":
					wantPage(t, resp, body, http.StatusBadGateway, row.want.page)
					if resp, _ := teststack.Get(t, b.Browser, b.BrokerURL+"/authorize/choose"); resp.StatusCode != http.StatusOK {
						t.Errorf("chooser after the page: %d", resp.StatusCode)
					}
				default:
					wantLocation(t, resp, "/authorize/consent")
					id := b.redeem(t, teststack.SPID, b.Finish(t, b.BrokerURL+"/authorize/consent")).ID
					if !row.want.check(t, id) {
						t.Errorf("id_token %v", id)
					}
					// auth_time is the IdP's login time, or the callback's
					// when the IdP sends none.
					if at := authTime(t, id); at < before.Unix() || at > after.Unix() {
						t.Errorf("auth_time %d, want within [%d, %d]", at, before.Unix(), after.Unix())
					}
				}
				if row.slow && (elapsed < timeout || elapsed > timeout+700*time.Millisecond) {
					t.Errorf("callback took %v with an IdP timeout of %v and a token delay of 1.5s", elapsed, timeout)
				}
			})
		}
	})
}
