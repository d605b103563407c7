package broker_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
)

// The metrics count requests by route, IdP returns by outcome and OAuth
// errors by code, and carry no request input in their labels.
func TestMetrics(t *testing.T) {
	s := teststack.New(t)
	b, err := broker.New(s.Config.Broker, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := httptest.NewServer(b.Platforms[0])
	defer srv.Close()

	// One login through this replica, one refused request with input
	// that must not become a label.
	teststack.Get(t, s.Browser, srv.URL+"/authorize?"+teststack.AuthParams().Encode())
	_, page := teststack.Get(t, s.Browser, srv.URL+"/authorize/choose")
	resp, _ := teststack.Post(t, s.Browser, srv.URL+"/authorize/choose", url.Values{"csrf": {teststack.Field(t, teststack.CSRFRE, page)}, "idp": {"impots"}})
	back := s.IdPLogin(t, resp.Header.Get("Location"), "angela-dubois", nil)
	teststack.Get(t, s.Browser, strings.Replace(back, s.BrokerURL, srv.URL, 1))
	bad := teststack.AuthParams()
	bad.Set("scope", "profile")
	bad.Set("state", "secret-looking-state")
	teststack.Get(t, teststack.NewBrowser(), srv.URL+"/authorize?"+bad.Encode())

	rec := httptest.NewRecorder()
	b.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`sesame_http_requests_total{platform="std",route="GET /authorize",status="303"} 2`,
		`sesame_http_requests_total{platform="std",route="POST /authorize/choose",status="303"} 1`,
		`sesame_idp_logins_total{idp="impots",outcome="ok",platform="std"} 1`,
		`sesame_oauth_errors_total{endpoint="authorize",error="invalid_scope",platform="std"} 1`,
		`sesame_idp_exchange_duration_seconds_count{idp="impots"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "secret-looking-state") || strings.Contains(body, "Dubois") {
		t.Error("request input leaked into the metrics")
	}
}
