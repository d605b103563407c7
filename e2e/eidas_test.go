package e2e

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The eIDAS bridge on real processes: the broker, and the mock eIDAS node
// inside the providers process, sharing the broker's Redis as a real
// node shares Ignite with its specific parts.

func TestE2EEIDAS(t *testing.T) {
	st := startStack(t, stackOptions{EIDAS: true})
	t.Run("foreign citizen at the demo SP, standard", func(t *testing.T) {
		a := newAgent(t)
		auth := a.post(st.DemoSP+"/login", url.Values{"acr_values": {"eidas1"}}).redirect(t, st.Broker+"/authorize")
		me := a.eidasDemoSP(t, st, st.Broker, auth.String(), "CB", "CB/FR/12345", "http://eidas.europa.eu/LoA/low")
		for id, want := range map[string]string{"acr": "eidas1", "amr": "eidas", "citizen-name": "Anaïs Sofía Ødegård García"} {
			if got := me.byID(t, id); got != want {
				t.Errorf("demo SP /me #%s = %q, want %q", id, got, want)
			}
		}
		if !strings.Contains(me.text(), "1982-03-04") {
			t.Errorf("demo SP /me does not show the date of birth")
		}
	})
	t.Run("foreign citizen at the demo SP, plus at substantial and high", func(t *testing.T) {
		for _, c := range []struct{ acr, loa string }{{"eidas2", "substantial"}, {"eidas3", "high"}} {
			a := newAgent(t)
			auth := a.post(st.DemoSP+"/login", url.Values{"platform": {"plus"}, "acr_values": {c.acr}}).redirect(t, st.Plus+"/authorize")
			me := a.eidasDemoSP(t, st, st.Plus, auth.String(), "BE", "BE/FR/85073003328", "http://eidas.europa.eu/LoA/"+c.loa)
			for id, want := range map[string]string{"acr": c.acr, "amr": "eidas", "citizen-name": "Zoë Élise Van den Brœck"} {
				if got := me.byID(t, id); got != want {
					t.Errorf("%s: demo SP /me #%s = %q, want %q", c.acr, id, got, want)
				}
			}
		}
	})
	t.Run("low is refused on plus", func(t *testing.T) {
		a := newAgent(t)
		auth := a.post(st.DemoSP+"/login", url.Values{"platform": {"plus"}, "acr_values": {"eidas2"}}).redirect(t, st.Plus+"/authorize")
		cb := a.eidasAtNode(t, st, st.Plus, auth.String(), "CB", "CB/FR/12345", "http://eidas.europa.eu/LoA/low", "success")
		a.get(cb.String()).errorPage(t, http.StatusForbidden, "S100001")
	})
	t.Run("node faults are pages, never 5xx", func(t *testing.T) {
		for scenario, want := range map[string]string{"bad_digest": "S020070", "expired_token": "S020070"} {
			a := newAgent(t)
			auth := a.post(st.DemoSP+"/login", url.Values{"acr_values": {"eidas1"}}).redirect(t, st.Broker+"/authorize")
			a.eidasNodeAnswer(t, st, st.Broker, auth.String(), "CB", "CB/FR/12345", "http://eidas.europa.eu/LoA/low", scenario).errorPage(t, http.StatusBadRequest, want)
		}
		a := newAgent(t)
		auth := a.post(st.DemoSP+"/login", url.Values{"acr_values": {"eidas1"}}).redirect(t, st.Broker+"/authorize")
		cb := a.eidasAtNode(t, st, st.Broker, auth.String(), "CB", "CB/FR/12345", "http://eidas.europa.eu/LoA/low", "wrong_relay_state")
		a.get(cb.String()).errorPage(t, http.StatusBadRequest, "S190003")
	})
	t.Run("French citizen at a foreign SP, sub per country", func(t *testing.T) {
		be := frenchCitizenAbroad(t, st, "BE", "http://eidas.europa.eu/LoA/low", "laposte", "angela-dubois")
		de := frenchCitizenAbroad(t, st, "DE", "http://eidas.europa.eu/LoA/low", "laposte", "angela-dubois")
		for _, res := range []*page{be, de} {
			if got := res.byID(t, "status"); got != "success" {
				t.Fatalf("foreign SP result %q\n%s", got, excerpt(res.body))
			}
			for id, want := range map[string]string{"attr-CurrentGivenName": "Angela Claire Louise", "attr-CurrentFamilyName": "Dubois", "attr-DateOfBirth": "1962-08-24"} {
				if got := res.byID(t, id); got != want {
					t.Errorf("#%s = %q, want %q", id, got, want)
				}
			}
			if got := res.byID(t, "loa"); got != "http://eidas.europa.eu/LoA/low" {
				t.Errorf("LoA %q", got)
			}
		}
		subBE, subDE := be.byID(t, "subject"), de.byID(t, "subject")
		if !strings.HasPrefix(subBE, "FR/BE/") || !strings.HasPrefix(subDE, "FR/DE/") || strings.TrimPrefix(subBE, "FR/BE/") == strings.TrimPrefix(subDE, "FR/DE/") {
			t.Errorf("subjects %q and %q, want FR/<country>/ and a different sub per country", subBE, subDE)
		}
		if again := frenchCitizenAbroad(t, st, "BE", "http://eidas.europa.eu/LoA/low", "impots", "angela-dubois").byID(t, "subject"); again != subBE {
			t.Errorf("BE subject %q then %q through another IdP", subBE, again)
		}
		plus := frenchCitizenAbroad(t, st, "BE", "http://eidas.europa.eu/LoA/substantial", "laposte", "angela-dubois")
		if got := plus.byID(t, "loa"); got != "http://eidas.europa.eu/LoA/substantial" && got != "http://eidas.europa.eu/LoA/high" {
			t.Errorf("substantial asked, LoA %q", got)
		}
	})
}

// eidasAtNode runs a login from the SP's authorization URL up to the
// foreign IdP's answer, and returns the broker's redirect to its callback.
func (a *agent) eidasAtNode(t *testing.T, st *stack, issuer, authURL, country, citizen, loa, scenario string) *url.URL {
	t.Helper()
	p := a.eidasNodeAnswer(t, st, issuer, authURL, country, citizen, loa, scenario)
	return p.redirect(t, issuer+"/idp/callback")
}

// eidasNodeAnswer is eidasAtNode up to the broker's answer to the node's
// token, whatever it is.
func (a *agent) eidasNodeAnswer(t *testing.T, st *stack, issuer, authURL, country, citizen, loa, scenario string) *page {
	t.Helper()
	a.get(authURL).redirect(t, issuer+"/authorize/choose")
	ch := a.get(issuer + "/authorize/choose").ok(t)
	if !ch.has("idp-eidas") {
		t.Fatalf("the chooser of %s does not offer the eIDAS bridge", issuer)
	}
	to := a.post(issuer+"/authorize/choose", url.Values{"csrf": {ch.hidden(t, "csrf")}, "idp": {"eidas"}}).redirect(t, issuer+"/eidas/connector/country")
	countries := a.get(to.String()).ok(t)
	toNode := a.post(countries.anyFormAction(t), url.Values{"csrf": {countries.hidden(t, "csrf")}, "state": {countries.hidden(t, "state")}, "country": {country}}).ok(t)
	if got := toNode.anyFormAction(t); got != st.Providers+"/eidas-node/SpecificConnectorRequest" {
		t.Fatalf("the bridge posts to %s", got)
	}
	idp := a.post(toNode.anyFormAction(t), url.Values{"token": {toNode.hidden(t, "token")}}).ok(t)
	back := a.post(idp.anyFormAction(t), url.Values{"login": {idp.hidden(t, "login")}, "citizen": {citizen}, "loa": {loa}, "scenario": {scenario}}).ok(t)
	if got := back.anyFormAction(t); got != issuer+"/eidas/connector/response" {
		t.Fatalf("the node posts to %s", got)
	}
	return a.post(back.anyFormAction(t), url.Values{"token": {back.hidden(t, "token")}})
}

// eidasDemoSP is a whole foreign citizen's login at the demo SP; it
// returns the demo SP's /me.
func (a *agent) eidasDemoSP(t *testing.T, st *stack, issuer, authURL, country, citizen, loa string) *page {
	t.Helper()
	cb := a.eidasAtNode(t, st, issuer, authURL, country, citizen, loa, "success")
	a.get(cb.String()).redirect(t, issuer+"/authorize/consent")
	info := a.get(issuer + "/authorize/consent").ok(t)
	final := a.post(info.anyFormAction(t), url.Values{"csrf": {info.hidden(t, "csrf")}}).redirect(t, st.DemoSP+"/callback")
	a.get(final.String()).redirect(t, st.DemoSP+"/me")
	return a.get(st.DemoSP + "/me").ok(t)
}

// frenchCitizenAbroad starts the FR→EU direction at the mock foreign SP
// and logs the citizen in through a French mock IdP; it returns the
// foreign SP's result page.
func frenchCitizenAbroad(t *testing.T, st *stack, spCountry, loa, idp, identityID string) *page {
	t.Helper()
	a := newAgent(t)
	sp := a.get(st.Providers + "/eidas-node/sp").ok(t)
	form := url.Values{"country": {spCountry}, "loa": {loa}}
	for _, attr := range []string{"PersonIdentifier", "CurrentGivenName", "CurrentFamilyName", "DateOfBirth", "Gender", "PlaceOfBirth"} {
		form.Add("attribute", "http://eidas.europa.eu/attributes/naturalperson/"+attr)
	}
	toBridge := a.post(sp.anyFormAction(t), form).ok(t)
	if got := toBridge.anyFormAction(t); got != st.Broker+"/eidas/proxy/request" {
		t.Fatalf("the node posts to %s", got)
	}
	start := a.post(toBridge.anyFormAction(t), url.Values{"token": {toBridge.hidden(t, "token")}})
	issuer := st.Broker
	if !strings.HasSuffix(loa, "/low") {
		issuer = st.Plus
	}
	auth := start.redirect(t, issuer+"/eidas/proxy/start")
	authorize := a.get(auth.String()).redirect(t, issuer+"/authorize")
	a.get(authorize.String()).redirect(t, issuer+"/authorize/choose")
	ch := a.get(issuer + "/authorize/choose").ok(t)
	to := a.post(issuer+"/authorize/choose", url.Values{"csrf": {ch.hidden(t, "csrf")}, "idp": {idp}}).redirect(t, st.IdPIssuer(idp)+"/authorize")
	login := a.get(to.String()).ok(t)
	cb := a.post(login.anyFormAction(t), url.Values{"tx": {login.hidden(t, "tx")}, "identity": {identityID}, "action": {"login"}}).redirect(t, issuer+"/idp/callback")
	a.get(cb.String()).redirect(t, issuer+"/authorize/consent")
	info := a.get(issuer + "/authorize/consent").ok(t)
	back := a.post(info.anyFormAction(t), url.Values{"csrf": {info.hidden(t, "csrf")}}).redirect(t, issuer+"/eidas/proxy/callback")
	answer := a.get(back.String()).ok(t)
	if got := answer.anyFormAction(t); got != st.Providers+"/eidas-node/SpecificProxyServiceResponse" {
		t.Fatalf("the bridge answers at %s", got)
	}
	return a.post(answer.anyFormAction(t), url.Values{"token": {answer.hidden(t, "token")}}).ok(t)
}

var anyFormRE = regexp.MustCompile(`<form\b[^>]*\baction="([^"]+)"`)

// anyFormAction is formAction for forms whose attributes come in any
// order (the node's auto-submitted ones).
func (p *page) anyFormAction(t *testing.T) string {
	t.Helper()
	m := anyFormRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("%s: no form\nbody: %s", p, excerpt(p.body))
	}
	u, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatalf("%s: form action %q: %v", p, m[1], err)
	}
	return u.String()
}
