package broker_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/internal/eidas/light"
)

// The eIDAS bridge, proxy direction (a French citizen at a foreign SP),
// with the test playing the node.

type proxyNode struct {
	t      *testing.T
	r      *rig
	rq, rs light.Token
}

func newProxyNode(t *testing.T, r *rig) *proxyNode {
	e := teststack.EIDASTest.Proxy
	rq, err := light.NewToken(e.RequestIssuer, e.RequestSecret)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := light.NewToken(e.ResponseIssuer, e.ResponseSecret)
	if err != nil {
		t.Fatal(err)
	}
	return &proxyNode{t: t, r: r, rq: rq, rs: rs}
}

// foreignRequest is a foreign SP's request for a French citizen.
func foreignRequest(spCountry, loa string) *light.Request {
	return &light.Request{
		ID: light.NewID(), Issuer: "mock node", CitizenCountryCode: "FR", SPCountryCode: spCountry,
		LevelOfAssurance: loa, NameIDFormat: light.NameIDPersistent, SPType: light.SPTypePublic, RelayState: "relay-" + spCountry,
		RequestedAttributes: []light.Attribute{
			{Definition: light.AttrPersonIdentifier}, {Definition: light.AttrCurrentGivenName}, {Definition: light.AttrCurrentFamilyName},
			{Definition: light.AttrDateOfBirth}, {Definition: light.AttrGender}, {Definition: light.AttrPlaceOfBirth},
		},
	}
}

// send puts req in the node's cache and posts its token to the bridge.
func (n *proxyNode) send(req *light.Request) (*http.Response, string) {
	n.t.Helper()
	if err := light.NewCache(n.r.Broker.Store, light.CacheProxyserviceRequest, 0).PutRequest(context.Background(), req); err != nil {
		n.t.Fatal(err)
	}
	return teststack.Post(n.t, n.r.Browser, n.r.BrokerURL+"/eidas/proxy/request", url.Values{"token": {n.rq.Make(req.ID, time.Now())}})
}

// answer reads the bridge's auto-posted answer from its page.
func (n *proxyNode) answer(resp *http.Response, page string) *light.Response {
	n.t.Helper()
	if resp.StatusCode != http.StatusOK || teststack.Field(n.t, lightActionRE, page) != testNode+"/SpecificProxyServiceResponse" {
		n.t.Fatalf("answer page: %d\n%s", resp.StatusCode, page)
	}
	id, err := n.rs.Parse(teststack.Field(n.t, lightTokenRE, page), time.Now())
	if err != nil {
		n.t.Fatalf("response token: %v", err)
	}
	out, err := light.NewCache(n.r.Broker.Store, light.CacheProxyserviceResponse, 0).TakeResponse(context.Background(), id)
	if err != nil {
		n.t.Fatalf("response in the node's cache: %v", err)
	}
	return out
}

// login runs a French citizen's login for req through idp, and returns
// the bridge's answer.
func (n *proxyNode) login(req *light.Request, idp, identity string) *light.Response {
	t := n.t
	t.Helper()
	resp, body := n.send(req)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("proxy request: %d\n%s", resp.StatusCode, body)
	}
	// start (binds the browser), then /authorize with the pushed request
	next := teststack.Abs(n.r.BrokerURL, resp.Header.Get("Location"))
	for range 2 {
		resp, body = teststack.Get(t, n.r.Browser, next)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d\n%s", next, resp.StatusCode, body)
		}
		next = teststack.Abs(n.r.BrokerURL, resp.Header.Get("Location"))
	}
	if next != n.r.BrokerURL+"/authorize/choose" {
		t.Fatalf("the proxy's login goes to %s", next)
	}
	cb := n.r.FinishAt(t, n.r.IdPLogin(t, n.r.Choose(t, idp), identity, nil), n.r.BrokerURL+"/eidas/proxy/callback")
	return n.answer(teststack.Get(t, n.r.Browser, cb.String()))
}

func TestEIDASProxy(t *testing.T) {
	t.Run("standard: low, attributes mapped, sub per country", func(t *testing.T) {
		r := newRig(t, nil, false, teststack.EIDAS(testNode))
		n := newProxyNode(t, r)
		be := n.login(foreignRequest("BE", light.LoALow), "laposte", "angela-dubois")
		if be.Status.Failure || be.LevelOfAssurance != light.LoALow || be.RelayState != "relay-BE" || be.SubjectNameIDFormat != light.NameIDPersistent {
			t.Fatalf("response %+v", be)
		}
		for def, want := range map[string]string{
			light.AttrCurrentGivenName: "Angela Claire Louise", light.AttrCurrentFamilyName: "Dubois",
			light.AttrDateOfBirth: "1962-08-24", light.AttrGender: "Female",
		} {
			if got := be.Value(def); got != want {
				t.Errorf("%s = %q, want %q", def, got, want)
			}
		}
		if got := be.Value(light.AttrPlaceOfBirth); !strings.HasPrefix(got, "75107 Paris 7") {
			t.Errorf("PlaceOfBirth %q, want the COG code 75107 and its label", got)
		}
		if be.Value(light.AttrPersonIdentifier) != be.Subject || be.Subject == "" {
			t.Errorf("PersonIdentifier %q, subject %q", be.Value(light.AttrPersonIdentifier), be.Subject)
		}
		// Same citizen, same country: same sub; another country: another.
		r2 := r.browser()
		again := newProxyNode(t, r2).login(foreignRequest("BE", light.LoALow), "impots", "angela-dubois")
		r3 := r.browser()
		de := newProxyNode(t, r3).login(foreignRequest("DE", light.LoALow), "laposte", "angela-dubois")
		if again.Subject != be.Subject {
			t.Errorf("BE sub %s then %s", be.Subject, again.Subject)
		}
		if de.Subject == be.Subject {
			t.Errorf("BE and DE get the same sub %s", de.Subject)
		}
	})
	t.Run("plus: substantial", func(t *testing.T) {
		r := newRig(t, nil, true, teststack.EIDAS(testNode))
		n := newProxyNode(t, r)
		resp := n.login(foreignRequest("BE", light.LoASubstantial), "laposte", "angela-dubois")
		if resp.Status.Failure || light.LoARank(resp.LevelOfAssurance) < 2 {
			t.Fatalf("response %+v", resp)
		}
	})
	t.Run("a level no platform serves is answered with a failure", func(t *testing.T) {
		r := newRig(t, nil, false, teststack.EIDAS(testNode))
		n := newProxyNode(t, r)
		resp := n.answer(n.send(foreignRequest("BE", light.LoAHigh)))
		if !resp.Status.Failure || resp.Status.StatusCode != light.StatusRequester || resp.RelayState != "relay-BE" {
			t.Fatalf("response %+v", resp)
		}
	})
	t.Run("the citizen cancels", func(t *testing.T) {
		r := newRig(t, nil, false, teststack.EIDAS(testNode))
		n := newProxyNode(t, r)
		resp, _ := n.send(foreignRequest("BE", light.LoALow))
		next := teststack.Abs(r.BrokerURL, resp.Header.Get("Location"))
		for range 2 {
			resp, _ = teststack.Get(t, r.Browser, next)
			next = teststack.Abs(r.BrokerURL, resp.Header.Get("Location"))
		}
		_, page := teststack.Get(t, r.Browser, next)
		cancel := teststack.Field(t, cancelRE, page)
		ans := n.answer(teststack.Get(t, r.Browser, htmlUnescape(cancel)))
		if !ans.Status.Failure || ans.Status.SubStatusCode != light.SubStatusAuthnFailed || !strings.HasPrefix(ans.Status.StatusMessage, "[access_denied]") {
			t.Fatalf("response %+v", ans.Status)
		}
	})
	t.Run("faults are pages", func(t *testing.T) {
		r := newRig(t, nil, false, teststack.EIDAS(testNode))
		n := newProxyNode(t, r)
		req := foreignRequest("BE", light.LoALow)
		if err := light.NewCache(r.Broker.Store, light.CacheProxyserviceRequest, 0).PutRequest(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		forged := light.Token{Issuer: n.rq.Issuer, Secret: "another-secret-of-enough-length-0123456789"}
		resp, body := teststack.Post(t, r.Browser, r.BrokerURL+"/eidas/proxy/request", url.Values{"token": {forged.Make(req.ID, time.Now())}})
		wantPage(t, resp, body, http.StatusBadRequest, "S020070")
		resp, _ = teststack.Post(t, r.Browser, r.BrokerURL+"/eidas/proxy/request", url.Values{"token": {n.rq.Make(req.ID, time.Now())}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("genuine token: %d", resp.StatusCode)
		}
		resp, body = teststack.Post(t, r.Browser, r.BrokerURL+"/eidas/proxy/request", url.Values{"token": {n.rq.Make(req.ID, time.Now())}})
		wantPage(t, resp, body, http.StatusBadRequest, "S020071")
		// A code carried to another browser answers nothing.
		other := r.browser()
		resp, body = teststack.Get(t, other.Browser, r.BrokerURL+"/eidas/proxy/callback?code=x&state=y")
		wantPage(t, resp, body, http.StatusBadRequest, "S020073")
	})
}

var cancelRE = regexp.MustCompile(`<a class="fr-link" href="([^"]+)">(?:Annuler|Cancel)`)

func htmlUnescape(s string) string { return html.UnescapeString(s) }
