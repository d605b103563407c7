package eidasnode

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/eidas/light"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/store/memstore"
	"github.com/sesame-id/sesame/internal/store/redisstore"
	"github.com/sesame-id/sesame/internal/testredis"
)

// The tests play the bridge with the light package: they write and read
// the shared store's caches and make and check tokens with the bridge's
// side of each secret, over real HTTP.

const (
	bridgeIssuer  = "https://bridge.example/eidas/connector"
	connectorURL  = "https://bridge.example/eidas/connector/response"
	proxyURL      = "https://bridge.example/eidas/proxy/request"
	secretConnReq = "connector-request-secret-0123456789abcdef"
	secretConnRes = "connector-response-secret-0123456789abcdef"
	secretProxReq = "proxy-request-secret-0123456789abcdef"
	secretProxRes = "proxy-response-secret-0123456789abcdef"
)

type harness struct {
	t   testing.TB
	st  store.Store
	srv *httptest.Server
	// The bridge's tokens and caches.
	connReq, connResp, proxyReq, proxyResp                     light.Token
	connReqCache, connRespCache, proxyReqCache, proxyRespCache *light.Cache
}

func mustToken(t testing.TB, issuer, secret string) light.Token {
	t.Helper()
	tok, err := light.NewToken(issuer, secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newHarness(t testing.TB, st store.Store) *harness {
	t.Helper()
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	cfg := config.EIDASNode{
		BaseURL:                 srv.URL + "/eidas-node",
		ConnectorRequestSecret:  secretConnReq,
		ConnectorResponseSecret: secretConnRes,
		ProxyRequestSecret:      secretProxReq,
		ProxyResponseSecret:     secretProxRes,
		ConnectorResponseURLs:   map[string]string{bridgeIssuer: connectorURL},
		ProxyRequestURL:         proxyURL,
	}
	node, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = node
	return &harness{
		t: t, st: st, srv: srv,
		connReq:        mustToken(t, light.IssuerConnectorRequest, secretConnReq),
		connResp:       mustToken(t, light.IssuerConnectorResponse, secretConnRes),
		proxyReq:       mustToken(t, light.IssuerProxyserviceRequest, secretProxReq),
		proxyResp:      mustToken(t, light.IssuerProxyserviceResponse, secretProxRes),
		connReqCache:   light.NewCache(st, light.CacheConnectorRequest, 0),
		connRespCache:  light.NewCache(st, light.CacheConnectorResponse, 0),
		proxyReqCache:  light.NewCache(st, light.CacheProxyserviceRequest, 0),
		proxyRespCache: light.NewCache(st, light.CacheProxyserviceResponse, 0),
	}
}

// post sends a form and returns the status and body; a 5xx fails the test
// (the node answers bad input with 400 pages).
func (h *harness) post(path string, form url.Values) (int, string) {
	h.t.Helper()
	resp, err := http.PostForm(h.srv.URL+"/eidas-node"+path, form)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		h.t.Fatalf("POST %s: %d\n%s", path, resp.StatusCode, b)
	}
	return resp.StatusCode, string(b)
}

func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get(h.srv.URL + "/eidas-node" + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var (
	reAction = regexp.MustCompile(`<form id="autopost" method="post" action="([^"]*)"`)
	reToken  = regexp.MustCompile(`name="token" value="([^"]*)"`)
	reLogin  = regexp.MustCompile(`name="login" value="([^"]*)"`)
)

func find(t testing.TB, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in\n%s", re, body)
	}
	return html.UnescapeString(m[1])
}

// dd reads <dd id="name">...</dd> from a result page.
func dd(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<dd id="` + regexp.QuoteMeta(id) + `">([^<]*)</dd>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no dd#%s in\n%s", id, body)
	}
	return html.UnescapeString(m[1])
}

func wantError(t *testing.T, status int, body, code string) {
	t.Helper()
	if status != http.StatusBadRequest || !strings.Contains(body, code) {
		t.Fatalf("want 400 %s, got %d\n%s", code, status, body)
	}
}

func connectorRequest(country string) *light.Request {
	return &light.Request{
		ID: light.NewID(), Issuer: bridgeIssuer, CitizenCountryCode: country, LevelOfAssurance: light.LoASubstantial,
		NameIDFormat: light.NameIDUnspecified, ProviderName: "Sésame", SPType: light.SPTypePublic, SPCountryCode: "FR",
		RelayState: "rs-" + light.NewID()[1:20],
		RequestedAttributes: []light.Attribute{{Definition: light.AttrPersonIdentifier}, {Definition: light.AttrCurrentGivenName},
			{Definition: light.AttrCurrentFamilyName}, {Definition: light.AttrDateOfBirth}, {Definition: light.AttrCurrentAddress}},
	}
}

// startConnector does the bridge's half of step one and returns the demo
// IdP page's login id.
func (h *harness) startConnector(req *light.Request) (login, page string) {
	h.t.Helper()
	if err := h.connReqCache.PutRequest(context.Background(), req); err != nil {
		h.t.Fatal(err)
	}
	status, body := h.post("/SpecificConnectorRequest", url.Values{"token": {h.connReq.Make(req.ID, time.Now())}})
	if status != http.StatusOK {
		h.t.Fatalf("SpecificConnectorRequest: %d\n%s", status, body)
	}
	return find(h.t, reLogin, body), body
}

// answer submits the demo IdP page and returns the auto-post's action and
// token.
func (h *harness) answer(login, citizen, loa string, s Scenario) (action, token string) {
	h.t.Helper()
	status, body := h.post("/idp", url.Values{"login": {login}, "citizen": {citizen}, "loa": {loa}, "scenario": {string(s)}})
	if status != http.StatusOK {
		h.t.Fatalf("idp %s: %d\n%s", s, status, body)
	}
	if !strings.Contains(body, `<script src="/eidas-node/autosubmit.js" defer></script>`) || !strings.Contains(body, "<noscript>") {
		h.t.Errorf("auto-post page lacks its script or noscript:\n%s", body)
	}
	return find(h.t, reAction, body), find(h.t, reToken, body)
}

func forEachStore(t *testing.T, run func(t *testing.T, h *harness)) {
	t.Run("memory", func(t *testing.T) {
		st := memstore.New()
		t.Cleanup(func() { _ = st.Close() })
		run(t, newHarness(t, st))
	})
	t.Run("redis", func(t *testing.T) {
		srv := testredis.Start(t)
		st, err := redisstore.Open(redisstore.Config{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		run(t, newHarness(t, st))
	})
}

func TestConnectorScenarios(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *harness) {
		const zoe = "BE/FR/85073003328"
		cases := []struct {
			scenario Scenario
			tokenErr error // what the bridge's Parse says
			check    func(t *testing.T, req *light.Request, resp *light.Response)
		}{
			{ScenarioSuccess, nil, func(t *testing.T, req *light.Request, resp *light.Response) {
				if resp.Status.Failure || resp.Status.StatusCode != light.StatusSuccess || resp.InResponseToID != req.ID ||
					resp.RelayState != req.RelayState || resp.LevelOfAssurance != light.LoASubstantial || resp.Subject != zoe {
					t.Errorf("success: %+v", resp)
				}
				if resp.Value(light.AttrCurrentGivenName) != "Zoë Élise" || resp.Value(light.AttrCurrentFamilyName) != "Van den Brœck" ||
					resp.Value(light.AttrDateOfBirth) != "1985-07-30" || resp.Value(light.AttrPersonIdentifier) != zoe || resp.Value(light.AttrCurrentAddress) == "" {
					t.Errorf("attributes: %+v", resp.Attributes)
				}
				if resp.Values(light.AttrGender) != nil {
					t.Error("Gender returned though not requested")
				}
			}},
			{ScenarioCancelled, nil, func(t *testing.T, _ *light.Request, resp *light.Response) {
				if !resp.Status.Failure || resp.Status.StatusCode != light.StatusRequester || resp.Status.SubStatusCode != light.SubStatusRequestDenied || resp.Subject != "" {
					t.Errorf("cancelled: %+v", resp.Status)
				}
			}},
			{ScenarioAuthnFailed, nil, func(t *testing.T, _ *light.Request, resp *light.Response) {
				if !resp.Status.Failure || resp.Status.StatusCode != light.StatusResponder || resp.Status.SubStatusCode != light.SubStatusAuthnFailed {
					t.Errorf("authn_failed: %+v", resp.Status)
				}
			}},
			{ScenarioLoATooLow, nil, func(t *testing.T, req *light.Request, resp *light.Response) {
				if resp.Status.Failure || light.LoAAtLeast(resp.LevelOfAssurance, req.LevelOfAssurance) || resp.LevelOfAssurance != light.LoALow {
					t.Errorf("loa_too_low: %s for %s", resp.LevelOfAssurance, req.LevelOfAssurance)
				}
			}},
			{ScenarioBadDigest, light.ErrTokenDigest, nil},
			{ScenarioExpiredToken, light.ErrTokenExpired, nil},
			{ScenarioUnknownRequest, nil, func(t *testing.T, req *light.Request, resp *light.Response) {
				if resp.InResponseToID == req.ID || light.ValidID(resp.InResponseToID) != nil {
					t.Errorf("unknown_request: inResponseTo %q", resp.InResponseToID)
				}
			}},
			{ScenarioWrongRelayState, nil, func(t *testing.T, req *light.Request, resp *light.Response) {
				if resp.RelayState == req.RelayState || resp.InResponseToID != req.ID {
					t.Errorf("wrong_relay_state: %q", resp.RelayState)
				}
			}},
		}
		for _, c := range cases {
			t.Run(string(c.scenario), func(t *testing.T) {
				req := connectorRequest("BE")
				login, page := h.startConnector(req)
				if !strings.Contains(page, "Zoë Élise Van den Brœck") || !strings.Contains(page, light.LoASubstantial) {
					t.Errorf("IdP page lacks the Belgian citizens or the level:\n%s", page)
				}
				action, token := h.answer(login, zoe, light.LoASubstantial, c.scenario)
				if action != connectorURL {
					t.Errorf("posts to %q, want %q", action, connectorURL)
				}
				id, err := h.connResp.Parse(token, time.Now())
				if c.tokenErr != nil {
					if !errors.Is(err, c.tokenErr) {
						t.Fatalf("token: %v, want %v", err, c.tokenErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("token: %v", err)
				}
				resp, err := h.connRespCache.TakeResponse(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				c.check(t, req, resp)
			})
		}
	})
}

func TestConnectorChosenLoAAndCountries(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	h := newHarness(t, st)
	for _, c := range []struct{ country, citizen, name string }{
		{"CB", "CB/FR/12345", "Anaïs Sofía Ødegård García"},
		{"DE", "DE/FR/T22000129", "Jürgen Müller-Lüdenscheidt"},
	} {
		req := connectorRequest(c.country)
		req.LevelOfAssurance = light.LoALow
		login, page := h.startConnector(req)
		if !strings.Contains(page, c.name) {
			t.Errorf("%s page lacks %s", c.country, c.name)
		}
		_, token := h.answer(login, c.citizen, light.LoAHigh, ScenarioSuccess)
		id, err := h.connResp.Parse(token, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := h.connRespCache.TakeResponse(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if resp.LevelOfAssurance != light.LoAHigh || resp.Subject != c.citizen {
			t.Errorf("%s: LoA %s subject %s", c.country, resp.LevelOfAssurance, resp.Subject)
		}
	}
	// Low asked, "too low" answered: a non-notified level, below any.
	req := connectorRequest("CB")
	req.LevelOfAssurance = light.LoALow
	login, _ := h.startConnector(req)
	_, token := h.answer(login, "CB/FR/67890", "", ScenarioLoATooLow)
	id, _ := h.connResp.Parse(token, time.Now())
	resp, err := h.connRespCache.TakeResponse(context.Background(), id)
	if err != nil || light.LoAAtLeast(resp.LevelOfAssurance, light.LoALow) {
		t.Errorf("too low under low: %v %+v", err, resp)
	}
	// A country without test citizens: the page says so, failures work.
	req = connectorRequest("PT")
	login, page := h.startConnector(req)
	if !strings.Contains(page, `id="no-citizen"`) {
		t.Errorf("PT page:\n%s", page)
	}
	if _, token := h.answer(login, "", "", ScenarioCancelled); token == "" {
		t.Error("no token for a cancel")
	}
}

func TestConnectorRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		t.Run("replayed request token", func(t *testing.T) {
			req := connectorRequest("BE")
			h.startConnector(req)
			status, body := h.post("/SpecificConnectorRequest", url.Values{"token": {h.connReq.Make(req.ID, time.Now())}})
			wantError(t, status, body, "S750402")
		})
		t.Run("token of another direction", func(t *testing.T) {
			req := connectorRequest("BE")
			if err := h.connReqCache.PutRequest(ctx, req); err != nil {
				t.Fatal(err)
			}
			status, body := h.post("/SpecificConnectorRequest", url.Values{"token": {h.proxyResp.Make(req.ID, time.Now())}})
			wantError(t, status, body, "S750401")
			// Still there: a refused token consumes nothing.
			if _, err := h.connReqCache.Take(ctx, req.ID); err != nil {
				t.Errorf("request consumed by a refused token: %v", err)
			}
		})
		t.Run("wrong secret, expired, garbage, missing", func(t *testing.T) {
			req := connectorRequest("BE")
			if err := h.connReqCache.PutRequest(ctx, req); err != nil {
				t.Fatal(err)
			}
			bad := h.connReq
			bad.Secret = strings.Repeat("z", 40)
			for _, tok := range []string{bad.Make(req.ID, time.Now()), h.connReq.Make(req.ID, time.Now().Add(-time.Hour)), "%%%", "", strings.Repeat("A", 5000)} {
				status, body := h.post("/SpecificConnectorRequest", url.Values{"token": {tok}})
				wantError(t, status, body, "S750401")
			}
		})
		t.Run("unknown id", func(t *testing.T) {
			status, body := h.post("/SpecificConnectorRequest", url.Values{"token": {h.connReq.Make(light.NewID(), time.Now())}})
			wantError(t, status, body, "S750402")
		})
		t.Run("invalid message in the cache", func(t *testing.T) {
			id := light.NewID()
			if err := h.connReqCache.Put(ctx, id, []byte(`<!DOCTYPE x><lightRequest/>`)); err != nil {
				t.Fatal(err)
			}
			status, body := h.post("/SpecificConnectorRequest", url.Values{"token": {h.connReq.Make(id, time.Now())}})
			wantError(t, status, body, "S750403")
		})
		t.Run("issuer with no response URL", func(t *testing.T) {
			req := connectorRequest("BE")
			req.Issuer = "https://stranger.example"
			if err := h.connReqCache.PutRequest(ctx, req); err != nil {
				t.Fatal(err)
			}
			status, body := h.post("/SpecificConnectorRequest", url.Values{"token": {h.connReq.Make(req.ID, time.Now())}})
			wantError(t, status, body, "S750406")
		})
		t.Run("IdP form replayed or forged", func(t *testing.T) {
			login, _ := h.startConnector(connectorRequest("BE"))
			h.answer(login, "BE/FR/90021512345", "", ScenarioSuccess)
			status, body := h.post("/idp", url.Values{"login": {login}, "citizen": {"BE/FR/90021512345"}, "scenario": {"success"}})
			wantError(t, status, body, "S750410")
			login, _ = h.startConnector(connectorRequest("BE"))
			for _, f := range []url.Values{
				{"login": {login}, "citizen": {"BE/FR/90021512345"}, "scenario": {"explode"}},
				{"login": {login}, "citizen": {"BE/FR/90021512345"}, "scenario": {"success"}, "loa": {"http://eidas.europa.eu/LoA/max"}},
				{"login": {"a b"}, "scenario": {"success"}},
			} {
				status, body := h.post("/idp", f)
				wantError(t, status, body, "S750400")
			}
			// A citizen of another country is not this IdP's.
			status, body = h.post("/idp", url.Values{"login": {login}, "citizen": {"DE/FR/T22000129"}, "scenario": {"success"}})
			wantError(t, status, body, "S750400")
		})
	})
}

// startProxy submits the mock SP form and returns the LightRequest the
// bridge takes from the cache.
func (h *harness) startProxy(country string, attrs ...string) *light.Request {
	h.t.Helper()
	f := url.Values{"country": {country}, "loa": {light.LoASubstantial}, "attribute": attrs}
	status, body := h.post("/sp", f)
	if status != http.StatusOK {
		h.t.Fatalf("sp: %d\n%s", status, body)
	}
	if a := find(h.t, reAction, body); a != proxyURL {
		h.t.Errorf("posts to %q, want %q", a, proxyURL)
	}
	id, err := h.proxyReq.Parse(find(h.t, reToken, body), time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := h.proxyReqCache.TakeRequest(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return req
}

// reply is the bridge's answer, put and posted.
func (h *harness) reply(resp *light.Response) (int, string) {
	h.t.Helper()
	if err := h.proxyRespCache.PutResponse(context.Background(), resp); err != nil {
		h.t.Fatal(err)
	}
	return h.post("/SpecificProxyServiceResponse", url.Values{"token": {h.proxyResp.Make(resp.ID, time.Now())}})
}

func bridgeAnswer(req *light.Request) *light.Response {
	return &light.Response{
		ID: light.NewID(), InResponseToID: req.ID, Issuer: "FR EidasBridge - ProxyService", RelayState: req.RelayState,
		Subject: "5a1f0c9e", SubjectNameIDFormat: light.NameIDPersistent, LevelOfAssurance: light.LoASubstantial,
		Status: light.Status{StatusCode: light.StatusSuccess},
		Attributes: []light.Attribute{
			{Definition: light.AttrPersonIdentifier, Values: []string{"5a1f0c9e"}},
			{Definition: light.AttrCurrentGivenName, Values: []string{"Marie-Thérèse"}},
			{Definition: light.AttrCurrentFamilyName, Values: []string{"Lefèvre"}},
			{Definition: light.AttrDateOfBirth, Values: []string{"1970-01-01"}},
		},
	}
}

func TestProxyRoundTrip(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *harness) {
		if status, body := h.get("/sp"); status != http.StatusOK || !strings.Contains(body, `name="country"`) {
			t.Fatalf("sp page: %d\n%s", status, body)
		}
		req := h.startProxy("BE", light.AttrPersonIdentifier, light.AttrCurrentGivenName, light.AttrCurrentFamilyName, light.AttrDateOfBirth)
		if req.CitizenCountryCode != "FR" || req.SPCountryCode != "BE" || req.RelayState == "" || req.LevelOfAssurance != light.LoASubstantial ||
			len(req.RequestedAttributes) != 4 || !req.Requests(light.AttrDateOfBirth) {
			t.Fatalf("request: %+v", req)
		}
		resp := bridgeAnswer(req)
		token := h.proxyResp.Make(resp.ID, time.Now())
		if err := h.proxyRespCache.PutResponse(context.Background(), resp); err != nil {
			t.Fatal(err)
		}
		status, body := h.post("/SpecificProxyServiceResponse", url.Values{"token": {token}})
		if status != http.StatusOK {
			t.Fatalf("result: %d\n%s", status, body)
		}
		for id, want := range map[string]string{
			"status": "success", "subject": "FR/BE/5a1f0c9e", "attr-PersonIdentifier": "FR/BE/5a1f0c9e",
			"attr-CurrentGivenName": "Marie-Thérèse", "attr-CurrentFamilyName": "Lefèvre", "attr-DateOfBirth": "1970-01-01",
			"loa": light.LoASubstantial,
		} {
			if got := dd(t, body, id); got != want {
				t.Errorf("%s = %q, want %q", id, got, want)
			}
		}
		// Replayed: the response was taken once.
		status, body = h.post("/SpecificProxyServiceResponse", url.Values{"token": {token}})
		wantError(t, status, body, "S750402")
	})
}

func TestProxyRefusals(t *testing.T) {
	forEachStore(t, func(t *testing.T, h *harness) {
		t.Run("wrong relayState", func(t *testing.T) {
			resp := bridgeAnswer(h.startProxy("DE", light.AttrPersonIdentifier))
			resp.RelayState = "not-the-one-sent"
			status, body := h.reply(resp)
			wantError(t, status, body, "S750405")
		})
		t.Run("no relayState", func(t *testing.T) {
			resp := bridgeAnswer(h.startProxy("DE", light.AttrPersonIdentifier))
			resp.RelayState = ""
			status, body := h.reply(resp)
			wantError(t, status, body, "S750405")
		})
		t.Run("unknown inResponseToId", func(t *testing.T) {
			resp := bridgeAnswer(h.startProxy("BE", light.AttrPersonIdentifier))
			resp.InResponseToID = light.NewID()
			status, body := h.reply(resp)
			wantError(t, status, body, "S750404")
		})
		t.Run("second answer to one request", func(t *testing.T) {
			req := h.startProxy("BE", light.AttrPersonIdentifier)
			if status, body := h.reply(bridgeAnswer(req)); status != http.StatusOK {
				t.Fatalf("first answer: %d\n%s", status, body)
			}
			status, body := h.reply(bridgeAnswer(req))
			wantError(t, status, body, "S750404")
		})
		t.Run("token of the connector direction", func(t *testing.T) {
			resp := bridgeAnswer(h.startProxy("BE", light.AttrPersonIdentifier))
			if err := h.proxyRespCache.PutResponse(context.Background(), resp); err != nil {
				t.Fatal(err)
			}
			status, body := h.post("/SpecificProxyServiceResponse", url.Values{"token": {h.connResp.Make(resp.ID, time.Now())}})
			wantError(t, status, body, "S750401")
		})
		t.Run("failure shown", func(t *testing.T) {
			req := h.startProxy("CB", light.AttrPersonIdentifier)
			status, body := h.reply(&light.Response{
				ID: light.NewID(), InResponseToID: req.ID, Issuer: "FR EidasBridge - ProxyService", RelayState: req.RelayState,
				Status: light.Status{Failure: true, StatusCode: light.StatusResponder, SubStatusCode: light.SubStatusAuthnFailed, StatusMessage: "[access_denied]: user cancelled"},
			})
			if status != http.StatusOK || dd(t, body, "status") != "failure" || dd(t, body, "sub-status-code") != light.SubStatusAuthnFailed {
				t.Errorf("failure page: %d\n%s", status, body)
			}
		})
		t.Run("bad SP forms", func(t *testing.T) {
			for _, f := range []url.Values{
				{"country": {"FR"}, "loa": {light.LoALow}, "attribute": {light.AttrPersonIdentifier}},
				{"country": {"BE"}, "loa": {"high"}, "attribute": {light.AttrPersonIdentifier}},
				{"country": {"BE"}, "loa": {light.LoALow}},
				{"country": {"BE"}, "loa": {light.LoALow}, "attribute": {"urn:evil"}},
			} {
				status, body := h.post("/sp", f)
				wantError(t, status, body, "S750400")
			}
		})
	})
}

func TestPagesAndConfig(t *testing.T) {
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	h := newHarness(t, st)
	status, body := h.get("/")
	if status != http.StatusOK || !strings.Contains(body, "CB/FR/12345") || !strings.Contains(body, "wrong_relay_state") {
		t.Errorf("index: %d\n%s", status, body)
	}
	if status, _ := h.get("/nothing-here"); status != http.StatusNotFound {
		t.Errorf("unknown path: %d", status)
	}
	if status, body := h.get("/autosubmit.js"); status != http.StatusOK || !strings.Contains(body, "submit()") {
		t.Errorf("autosubmit.js: %d", status)
	}
	cfg := config.EIDASNode{BaseURL: "http://127.0.0.1:1/eidas-node", ConnectorRequestSecret: "short",
		ConnectorResponseSecret: secretConnRes, ProxyRequestSecret: secretProxReq, ProxyResponseSecret: secretProxRes,
		ConnectorResponseURLs: map[string]string{"*": connectorURL}, ProxyRequestURL: proxyURL}
	if _, err := New(cfg, st); err == nil || !strings.Contains(err.Error(), "connector_request_secret") {
		t.Errorf("short secret: %v", err)
	}
	cfg.ConnectorRequestSecret = secretConnReq
	if _, err := New(cfg, nil); err == nil {
		t.Error("no store accepted")
	}
	if _, err := New(cfg, st); err != nil {
		t.Errorf("good config: %v", err)
	}
}
