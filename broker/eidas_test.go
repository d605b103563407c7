package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/eidas/light"
)

// The eIDAS bridge, connector direction (a foreign citizen at a French
// SP), with the test playing the node through the light protocol: it
// takes the bridge's LightRequest from the shared store and answers as a
// node would, or as a faulty or hostile one.

const testNode = "https://node.example/EidasNode"

var (
	lightTokenRE  = regexp.MustCompile(`name="token" value="([^"]+)"`)
	lightActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)" data-autosubmit`)
	stateRE       = regexp.MustCompile(`name="state" value="([^"]+)"`)
)

// node plays the FR eIDAS-Node with the test secrets.
type node struct {
	t  *testing.T
	r  *rig
	rq light.Token // checks the bridge's request tokens
	rs light.Token // makes the response tokens
}

func newNode(t *testing.T, r *rig) *node {
	e := teststack.EIDASTest
	rq, err := light.NewToken(e.Connector.RequestIssuer, e.Connector.RequestSecret)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := light.NewToken(e.Connector.ResponseIssuer, e.Connector.ResponseSecret)
	if err != nil {
		t.Fatal(err)
	}
	return &node{t: t, r: r, rq: rq, rs: rs}
}

// toNode logs in up to the bridge's post to the node: chooser, eIDAS,
// country; it returns the LightRequest the node receives.
func (n *node) toNode(p url.Values, country string) *light.Request {
	t := n.t
	t.Helper()
	countryURL := toBridge(t, n.r, p)
	if !strings.HasPrefix(countryURL.String(), n.r.BrokerURL+"/eidas/connector/country?") {
		t.Fatalf("the eIDAS trip starts at %s", countryURL)
	}
	resp, page := teststack.Get(t, n.r.Browser, countryURL.String())
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="country-CB"`) {
		t.Fatalf("country page: %d", resp.StatusCode)
	}
	form := url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "state": {teststack.Field(t, stateRE, page)}, "country": {country}}
	resp, page = teststack.Post(t, n.r.Browser, n.r.BrokerURL+"/eidas/connector/country", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("country choice: %d\n%s", resp.StatusCode, page)
	}
	if got := teststack.Field(t, lightActionRE, page); got != testNode+"/SpecificConnectorRequest" {
		t.Fatalf("the bridge posts to %s", got)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://node.example") {
		t.Errorf("CSP %q does not let the form post to the node", csp)
	}
	id, err := n.rq.Parse(teststack.Field(t, lightTokenRE, page), time.Now())
	if err != nil {
		t.Fatalf("request token: %v", err)
	}
	req, err := light.NewCache(n.r.Broker.Store, light.CacheConnectorRequest, 0).TakeRequest(context.Background(), id)
	if err != nil {
		t.Fatalf("request in the node's cache: %v", err)
	}
	return req
}

// citizen is a foreign citizen's answer to req at loa.
func citizen(req *light.Request, loa string) *light.Response {
	return &light.Response{
		ID: light.NewID(), InResponseToID: req.ID, Issuer: "mock node", RelayState: req.RelayState,
		Subject: "CB/FR/12345", SubjectNameIDFormat: light.NameIDPersistent, LevelOfAssurance: loa,
		Status: light.Status{StatusCode: light.StatusSuccess},
		Attributes: []light.Attribute{
			{Definition: light.AttrPersonIdentifier, Values: []string{"CB/FR/12345"}},
			{Definition: light.AttrCurrentGivenName, Values: []string{"Javier", "María"}},
			{Definition: light.AttrCurrentFamilyName, Values: []string{"García Núñez"}},
			{Definition: light.AttrDateOfBirth, Values: []string{"1965-01-01"}},
			{Definition: light.AttrGender, Values: []string{"Male"}},
			{Definition: light.AttrPlaceOfBirth, Values: []string{"Sevilla"}},
		},
	}
}

// answer puts resp in the node's cache and posts its token (made by
// tok, at issued) to the bridge, as the browser does.
func (n *node) answer(resp *light.Response, tok light.Token, issued time.Time) (*http.Response, string) {
	n.t.Helper()
	if err := light.NewCache(n.r.Broker.Store, light.CacheConnectorResponse, 0).PutResponse(context.Background(), resp); err != nil {
		n.t.Fatal(err)
	}
	return n.post(tok.Make(resp.ID, issued))
}

func (n *node) post(token string) (*http.Response, string) {
	n.t.Helper()
	return teststack.Post(n.t, n.r.Browser, n.r.BrokerURL+"/eidas/connector/response", url.Values{"token": {token}})
}

func amrParams(p url.Values) url.Values {
	p.Set("claims", `{"id_token":{"amr":{"essential":true}}}`)
	return p
}

func TestEIDASConnector(t *testing.T) {
	withAMR := onSP(func(sp *config.SP) { sp.Claims = []string{"amr"}; sp.Scopes = append(sp.Scopes, "profile") })
	t.Run("standard: a foreign citizen at low", func(t *testing.T) {
		r := newRig(t, nil, false, withAMR, teststack.EIDAS(testNode))
		n := newNode(t, r)
		req := n.toNode(amrParams(authParams("scope", "openid profile")), "CB")
		if req.CitizenCountryCode != "CB" || req.LevelOfAssurance != light.LoALow || req.SPCountryCode != "FR" || req.RelayState == "" {
			t.Fatalf("LightRequest %+v", req)
		}
		for _, a := range []string{light.AttrPersonIdentifier, light.AttrCurrentGivenName, light.AttrCurrentFamilyName, light.AttrDateOfBirth, light.AttrGender} {
			if !req.Requests(a) {
				t.Errorf("profile does not ask for %s", a)
			}
		}
		resp, body := n.answer(citizen(req, light.LoALow), n.rs, time.Now())
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/idp/callback?") {
			t.Fatalf("response: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		tok := r.redeem(t, teststack.SPID, r.Finish(t, teststack.Abs(r.BrokerURL, resp.Header.Get("Location"))))
		if tok.ID["acr"] != "eidas1" || !slices.Equal(amr(t, tok.ID), []string{"eidas"}) {
			t.Errorf("acr %v amr %v, want eidas1 [eidas]", tok.ID["acr"], tok.ID["amr"])
		}
		info := r.userinfo(t, tok.AccessToken)
		if info["given_name"] != "Javier María" || info["family_name"] != "García Núñez" || info["birthdate"] != "1965-01-01" || info["gender"] != "male" {
			t.Errorf("userinfo %v", info)
		}
		sub1, _ := info["sub"].(string)
		// The same citizen again: the same sub, whatever the session.
		r2 := r.browser()
		n2 := newNode(t, r2)
		req2 := n2.toNode(amrParams(authParams("scope", "openid profile")), "CB")
		resp, _ = n2.answer(citizen(req2, light.LoALow), n2.rs, time.Now())
		info2 := r2.userinfo(t, r2.redeem(t, teststack.SPID, r2.Finish(t, teststack.Abs(r2.BrokerURL, resp.Header.Get("Location")))).AccessToken)
		if info2["sub"] != sub1 || sub1 == "" {
			t.Errorf("sub %v then %v, want one stable sub", sub1, info2["sub"])
		}
	})
	t.Run("a foreign identity is not checked against the French civil registry", func(t *testing.T) {
		// The mock registry knows no foreign citizen: checked, the login
		// would end on S020050.
		r := newRig(t, nil, false, teststack.CivilRegistry(config.OutageRefuse, 2*time.Second), teststack.EIDAS(testNode))
		n := newNode(t, r)
		req := n.toNode(authParams(), "CB")
		resp, _ := n.answer(citizen(req, light.LoALow), n.rs, time.Now())
		if tok := r.redeem(t, teststack.SPID, r.Finish(t, teststack.Abs(r.BrokerURL, resp.Header.Get("Location")))); tok.ID["acr"] != "eidas1" {
			t.Errorf("acr %v", tok.ID["acr"])
		}
	})
	t.Run("plus: substantial passes, low is refused", func(t *testing.T) {
		for _, tc := range []struct {
			loa, acr string
		}{{light.LoASubstantial, "eidas2"}, {light.LoAHigh, "eidas2"}} {
			r := newRig(t, nil, true, teststack.EIDAS(testNode))
			n := newNode(t, r)
			req := n.toNode(amrParams(authParams("acr_values", "eidas2")), "CB")
			if req.LevelOfAssurance != light.LoASubstantial {
				t.Fatalf("eidas2 asks for %s", req.LevelOfAssurance)
			}
			resp, _ := n.answer(citizen(req, tc.loa), n.rs, time.Now())
			tok := r.redeem(t, teststack.SPID, r.Finish(t, teststack.Abs(r.BrokerURL, resp.Header.Get("Location"))))
			want, _ := url.Parse(tc.loa)
			if got := tok.ID["acr"]; got != map[string]string{"substantial": "eidas2", "high": "eidas3"}[strings.TrimPrefix(want.Path, "/LoA/")] {
				t.Errorf("%s: acr %v", tc.loa, got)
			}
			if !slices.Equal(amr(t, tok.ID), []string{"eidas"}) {
				t.Errorf("amr %v", tok.ID["amr"])
			}
		}
		r := newRig(t, nil, true, teststack.EIDAS(testNode))
		n := newNode(t, r)
		req := n.toNode(authParams("acr_values", "eidas2"), "CB")
		resp, _ := n.answer(citizen(req, light.LoALow), n.rs, time.Now())
		cb, body := teststack.Get(t, r.Browser, teststack.Abs(r.BrokerURL, resp.Header.Get("Location")))
		wantPage(t, cb, body, http.StatusForbidden, "S100001")
		// With an essential acr, the SP gets the registered error.
		r = newRig(t, nil, true, teststack.EIDAS(testNode))
		n = newNode(t, r)
		req = n.toNode(authParams("acr_values", "", "claims", `{"id_token":{"acr":{"essential":true,"value":"eidas2"}}}`), "CB")
		resp, _ = n.answer(citizen(req, light.LoALow), n.rs, time.Now())
		cb, _ = teststack.Get(t, r.Browser, teststack.Abs(r.BrokerURL, resp.Header.Get("Location")))
		wantSPError(t, r, cb, "unmet_authentication_requirements")
	})
}

// Every light-protocol fault is a clear page or a banner, never a 5xx,
// and nothing of a refused answer logs anyone in.
func TestEIDASConnectorFaults(t *testing.T) {
	e := teststack.EIDASTest
	fresh := func(t *testing.T) (*rig, *node, *light.Request) {
		r := newRig(t, nil, false, teststack.EIDAS(testNode))
		n := newNode(t, r)
		return r, n, n.toNode(authParams(), "CB")
	}
	t.Run("bad digest", func(t *testing.T) {
		_, n, req := fresh(t)
		forged := light.Token{Issuer: e.Connector.ResponseIssuer, Secret: "another-secret-of-enough-length-0123456789"}
		resp, body := n.answer(citizen(req, light.LoALow), forged, time.Now())
		wantPage(t, resp, body, http.StatusBadRequest, "S020070")
	})
	t.Run("expired token", func(t *testing.T) {
		_, n, req := fresh(t)
		resp, body := n.answer(citizen(req, light.LoALow), n.rs, time.Now().Add(-10*time.Minute))
		wantPage(t, resp, body, http.StatusBadRequest, "S020070")
	})
	t.Run("token of another direction", func(t *testing.T) {
		_, n, req := fresh(t)
		resp, body := n.answer(citizen(req, light.LoALow), n.rq, time.Now())
		wantPage(t, resp, body, http.StatusBadRequest, "S020070")
	})
	t.Run("garbage token", func(t *testing.T) {
		_, n, _ := fresh(t)
		for _, tok := range []string{"", "not base64 !", strings.Repeat("A", 5000)} {
			resp, body := n.post(tok)
			wantPage(t, resp, body, http.StatusBadRequest, "S020070")
		}
	})
	t.Run("replayed token", func(t *testing.T) {
		r, n, req := fresh(t)
		ans := citizen(req, light.LoALow)
		resp, _ := n.answer(ans, n.rs, time.Now())
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("first post: %d", resp.StatusCode)
		}
		again, body := n.post(n.rs.Make(ans.ID, time.Now()))
		wantPage(t, again, body, http.StatusBadRequest, "S020071")
		r.Finish(t, teststack.Abs(r.BrokerURL, resp.Header.Get("Location")))
	})
	t.Run("unknown message id", func(t *testing.T) {
		_, n, _ := fresh(t)
		resp, body := n.post(n.rs.Make(light.NewID(), time.Now()))
		wantPage(t, resp, body, http.StatusBadRequest, "S020071")
	})
	t.Run("answer to an unknown request", func(t *testing.T) {
		r, n, req := fresh(t)
		ans := citizen(req, light.LoALow)
		ans.InResponseToID = light.NewID()
		resp, _ := n.answer(ans, n.rs, time.Now())
		cb, _ := teststack.Get(t, r.Browser, teststack.Abs(r.BrokerURL, resp.Header.Get("Location")))
		wantBanner(t, r, cb, "S020027")
	})
	t.Run("wrong relayState", func(t *testing.T) {
		r, n, req := fresh(t)
		ans := citizen(req, light.LoALow)
		ans.RelayState = "another-relay-state"
		resp, _ := n.answer(ans, n.rs, time.Now())
		cb, body := teststack.Get(t, r.Browser, teststack.Abs(r.BrokerURL, resp.Header.Get("Location")))
		wantPage(t, cb, body, http.StatusBadRequest, "S190003")
	})
	t.Run("cancelled at the foreign IdP", func(t *testing.T) {
		r, n, req := fresh(t)
		ans := &light.Response{ID: light.NewID(), InResponseToID: req.ID, Issuer: "mock node", RelayState: req.RelayState,
			Status: light.Status{Failure: true, StatusCode: light.StatusResponder, SubStatusCode: light.SubStatusAuthnFailed, StatusMessage: "cancelled"}}
		resp, _ := n.answer(ans, n.rs, time.Now())
		cb, _ := teststack.Get(t, r.Browser, teststack.Abs(r.BrokerURL, resp.Header.Get("Location")))
		wantBanner(t, r, cb, "S020030")
	})
	t.Run("identity of another country", func(t *testing.T) {
		r, n, req := fresh(t)
		ans := citizen(req, light.LoALow)
		ans.Attributes[0].Values = []string{"BE/FR/999"}
		resp, _ := n.answer(ans, n.rs, time.Now())
		cb, _ := teststack.Get(t, r.Browser, teststack.Abs(r.BrokerURL, resp.Header.Get("Location")))
		wantBanner(t, r, cb, "S020027")
	})
	t.Run("a country not offered", func(t *testing.T) {
		r := newRig(t, nil, false, teststack.EIDAS(testNode))
		u := toBridge(t, r, authParams())
		_, page := teststack.Get(t, r.Browser, u.String())
		resp, body := teststack.Post(t, r.Browser, r.BrokerURL+"/eidas/connector/country", url.Values{
			"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "state": {teststack.Field(t, stateRE, page)}, "country": {"XX"}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="country-CB"`) {
			t.Fatalf("unknown country: %d", resp.StatusCode)
		}
	})
}

// toBridge runs /authorize and the chooser's choice of the bridge.
func toBridge(t *testing.T, r *rig, p url.Values) *url.URL {
	t.Helper()
	wantLocation(t, r.authorize(t, p), "/authorize/choose")
	u, err := url.Parse(r.Choose(t, "eidas"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// FuzzEIDASEndpoints sends arbitrary tokens, states and cookies to the
// bridge's endpoints: never a 5xx. Seeds include well-signed tokens of
// unknown messages, tokens of the wrong direction and garbage.
func FuzzEIDASEndpoints(f *testing.F) {
	s := teststack.New(f, teststack.EIDAS(testNode))
	e := teststack.EIDASTest
	conn := light.Token{Issuer: e.Connector.ResponseIssuer, Secret: e.Connector.ResponseSecret}
	proxy := light.Token{Issuer: e.Proxy.RequestIssuer, Secret: e.Proxy.RequestSecret}
	paths := []string{"/eidas/connector/response", "/eidas/proxy/request", "/eidas/connector/country", "/eidas/proxy/start", "/eidas/proxy/callback"}
	f.Add(uint8(0), "token="+url.QueryEscape(conn.Make(light.NewID(), time.Now())), "")
	f.Add(uint8(1), "token="+url.QueryEscape(proxy.Make(light.NewID(), time.Now())), "")
	f.Add(uint8(1), "token="+url.QueryEscape(conn.Make("x|y", time.Now())), "")
	f.Add(uint8(0), "token=%00%ff&token=2", "sesame_std=x")
	f.Add(uint8(2), "state=abc&csrf=x&country=CB", "sesame_std=abc")
	f.Add(uint8(3), "state=abc&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax", "")
	f.Add(uint8(4), "code=x&state=y&error=access_denied", "sesame_std_eidas=y")
	f.Fuzz(func(t *testing.T, which uint8, form, cookie string) {
		path := paths[int(which)%len(paths)]
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req := httptest.NewRequest(method, "http://broker"+path, strings.NewReader(form))
			if method == http.MethodGet {
				req.URL.RawQuery = form
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			rec := httptest.NewRecorder()
			s.Platform.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %s %q cookie %q: %d", method, path, form, cookie, rec.Code)
			}
		}
	})
}
