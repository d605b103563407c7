package civilregistry_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/civilregistry"
	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/providers"
)

const secret = "rnipp-secret-0123456789abcdef0123456789"

var angela = identity.Pivot{GivenName: "Angela Claire Louise", FamilyName: "Dubois", Birthdate: "1962-08-24",
	Gender: "female", Birthplace: "75107", Birthcountry: "99100"}

// mock serves the real mock registry of `sesame providers` over the
// built-in identities and returns its check URL.
func mock(t *testing.T, slow time.Duration) (string, *providers.Server) {
	t.Helper()
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	p, err := providers.New(&config.Providers{BaseURL: srv.URL,
		CivilRegistry: &config.MockCivilRegistry{Secret: secret, SlowDelay: config.Duration(slow)}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p
	return srv.URL + "/rnipp/check", p
}

func person(t *testing.T, p *providers.Server, id string) identity.Pivot {
	t.Helper()
	for _, i := range p.Identities() {
		if i.ID == id {
			return identity.Pivot{GivenName: i.GivenName, FamilyName: i.FamilyName, Birthdate: i.Birthdate,
				Gender: i.Gender, Birthplace: i.Birthplace, Birthcountry: i.Birthcountry}
		}
	}
	t.Fatalf("no identity %s", id)
	return identity.Pivot{}
}

func client(t *testing.T, u, s string, timeout time.Duration) *civilregistry.Client {
	t.Helper()
	c, err := civilregistry.NewClient(u, s, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Against the mock: each test identity's status, the corrected pivot.
func TestClientAgainstTheMock(t *testing.T) {
	u, p := mock(t, 2*time.Second)
	c := client(t, u, secret, 300*time.Millisecond)
	ctx := context.Background()

	if res, err := c.Check(ctx, angela); err != nil || res.Status != civilregistry.Found || res.Pivot != angela {
		t.Errorf("angela: %+v, %v", res, err)
	}
	asked := person(t, p, "rnipp-nom-corrige")
	want := asked
	want.GivenName, want.FamilyName = "Sophie Marie", "Bénard"
	if res, err := c.Check(ctx, asked); err != nil || res.Status != civilregistry.Corrected || res.Pivot != want {
		t.Errorf("corrected: %+v, %v", res, err)
	}
	if res, err := c.Check(ctx, person(t, p, "rnipp-inconnu")); err != nil || res.Status != civilregistry.NotFound || res.Pivot != (identity.Pivot{}) {
		t.Errorf("not found: %+v, %v", res, err)
	}
	if res, err := c.Check(ctx, person(t, p, "rnipp-decede")); err != nil || res.Status != civilregistry.Deceased {
		t.Errorf("deceased: %+v, %v", res, err)
	}
	start := time.Now()
	_, err := c.Check(ctx, person(t, p, "rnipp-lent"))
	if d := time.Since(start); !errors.Is(err, civilregistry.ErrUnavailable) || d < 300*time.Millisecond || d > time.Second {
		t.Errorf("slow: %v after %s, want unavailable after 300ms", err, d)
	}
	_, err = client(t, u, strings.Repeat("x", len(secret)), 0).Check(ctx, angela)
	if !errors.Is(err, civilregistry.ErrUnavailable) || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("wrong secret: %v", err)
	}
}

// A registry's broken answers are errors that say what is wrong and
// never carry its text.
func TestClientBadAnswers(t *testing.T) {
	big := `{"status":"found","identity":{"given_name":"` + strings.Repeat("a", 20<<10) + `"}}`
	for name, tc := range map[string]struct {
		status int
		body   string
		want   string
	}{
		"500":               {500, `{"error":"boom: Angela Dubois"}`, "HTTP 500"},
		"redirect":          {302, ``, "HTTP 302"},
		"not JSON":          {200, `<html>Angela</html>`, "not a JSON object"},
		"truncated":         {200, `{"status":"found","identity":{`, "not a JSON object"},
		"trailing data":     {200, `{"status":"not_found"} {}`, "data after"},
		"oversized":         {200, big, "over 16384 bytes"},
		"unknown status":    {200, `{"status":"maybe"}`, "unknown status"},
		"found, no pivot":   {200, `{"status":"found"}`, "without an identity"},
		"found, bad pivot":  {200, `{"status":"found","identity":{"given_name":"Angela","family_name":"Dubois","birthdate":"1962-13-24","gender":"female","birthplace":"75107","birthcountry":"99100"}}`, "birthdate"},
		"found, script tag": {200, `{"status":"found","identity":{"given_name":"<script>","family_name":"Dubois","birthdate":"1962-08-24","gender":"female","birthplace":"75107","birthcountry":"99100"}}`, "given_name"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+secret || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%s: request without the bearer secret or JSON type", name)
			}
			if tc.status == 302 {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		_, err := client(t, srv.URL, secret, time.Second).Check(context.Background(), angela)
		srv.Close()
		if !errors.Is(err, civilregistry.ErrUnavailable) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want unavailable with %q", name, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "Angela") || strings.Contains(err.Error(), "script")) {
			t.Errorf("%s: the error carries the registry's text: %v", name, err)
		}
	}
}

func TestNewClient(t *testing.T) {
	for _, u := range []string{"", "rnipp.example/check", "ftp://rnipp.example/check", "http://"} {
		if _, err := civilregistry.NewClient(u, secret, 0); err == nil {
			t.Errorf("url %q accepted", u)
		}
	}
	if _, err := civilregistry.NewClient("https://rnipp.example/check", "", 0); err == nil {
		t.Error("no secret accepted")
	}
}

// counting is a Registry whose answers a test scripts.
type counting struct {
	calls atomic.Int32
	err   atomic.Pointer[error]
	delay time.Duration
}

func (c *counting) Check(ctx context.Context, p identity.Pivot) (civilregistry.Result, error) {
	c.calls.Add(1)
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return civilregistry.Result{}, ctx.Err()
		}
	}
	if e := c.err.Load(); e != nil {
		return civilregistry.Result{}, *e
	}
	return civilregistry.Result{Status: civilregistry.Found, Pivot: p}, nil
}

// The guard's circuit opens after N failures in a row: the next checks
// fail at once without a call; after the cool-down one probe goes, and an
// answer closes the circuit.
func TestGuardCircuit(t *testing.T) {
	next := &counting{}
	down := error(&net.OpError{Op: "dial", Err: errors.New("connection refused")})
	next.err.Store(&down)
	g := civilregistry.NewGuard(next, time.Second, 3, 200*time.Millisecond)
	ctx := context.Background()
	for i := range 3 {
		if _, err := g.Check(ctx, angela); !errors.Is(err, civilregistry.ErrUnavailable) || errors.Is(err, civilregistry.ErrCircuitOpen) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if !g.Open() {
		t.Fatal("circuit closed after 3 failures")
	}
	for range 10 {
		if _, err := g.Check(ctx, angela); !errors.Is(err, civilregistry.ErrCircuitOpen) || !errors.Is(err, civilregistry.ErrUnavailable) {
			t.Fatalf("open circuit: %v", err)
		}
	}
	if n := next.calls.Load(); n != 3 {
		t.Fatalf("%d calls reached the registry, want 3", n)
	}
	time.Sleep(250 * time.Millisecond)
	next.err.Store(nil)
	if res, err := g.Check(ctx, angela); err != nil || res.Status != civilregistry.Found {
		t.Fatalf("probe: %+v, %v", res, err)
	}
	if g.Open() || next.calls.Load() != 4 {
		t.Fatalf("circuit open after a good probe, or %d calls", next.calls.Load())
	}
}

// The guard's timeout bounds any registry; a check the caller abandons
// counts for nothing.
func TestGuardTimeout(t *testing.T) {
	next := &counting{delay: time.Minute}
	g := civilregistry.NewGuard(next, 100*time.Millisecond, 2, time.Minute)
	start := time.Now()
	_, err := g.Check(context.Background(), angela)
	if d := time.Since(start); !errors.Is(err, civilregistry.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || d > time.Second {
		t.Fatalf("%v after %s, want a timeout after 100ms", err, d)
	}
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Millisecond, cancel)
		if _, err := g.Check(ctx, angela); !errors.Is(err, civilregistry.ErrUnavailable) {
			t.Fatalf("abandoned: %v", err)
		}
	}
	if g.Open() {
		t.Fatal("checks the citizen abandoned opened the circuit")
	}
	if _, err := g.Check(context.Background(), angela); err == nil || !g.Open() {
		t.Fatal("a second timeout did not open the circuit (threshold 2)")
	}
}
