package demosp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/dpop"
)

// The data scopes of config/dev.yaml, which the demo SP asks for on both
// platforms there.
var dataScopes = []string{"dgfip_rfr", "dgfip_nbpart", "cnaf_quotient_familial", "cnaf_composition_familiale"}

// The fake providers' answers, in the shapes of the mock data providers.
// The DGFiP answers three years out of order: the demo SP shows the last two.
const (
	dgfipJSON       = `{"annees":[{"annee":2024,"revenu_fiscal_de_reference":31200,"nombre_de_parts":2.5},{"annee":2025,"revenu_fiscal_de_reference":32500,"nombre_de_parts":2.5},{"annee":2023,"revenu_fiscal_de_reference":29999,"nombre_de_parts":2}]}`
	quotientJSON    = `{"quotient_familial":1234,"mois":3,"annee":2025}`
	compositionJSON = `{"allocataires":[{"nom_naissance":"DUBOIS","prenoms":"Angela Claire Louise","date_naissance":"1962-08-24","sexe":"F"}],"enfants":[{"nom_naissance":"DUBOIS","prenoms":"Lucas","date_naissance":"2010-05-02","sexe":"M"}]}`
	// introspectionJSON is what a mock provider echoes in X-Sesame-Introspection.
	introspectionJSON = `{"active":true,"scope":"dgfip_rfr dgfip_nbpart","sub":"dp-sub-for-the-provider","token_type":"Bearer"}`
)

const (
	pathRFR         = "/api/impot/revenu-fiscal"
	pathQuotient    = "/api/prestations/quotient-familial"
	pathComposition = "/api/prestations/composition-familiale"
)

// fakeDP is a data provider: it answers its bodies with the token in the
// Authorization header and records every request. With dpop, it checks
// each request as RFC 9449 §7 asks: "Authorization: DPoP" and a proof
// for GET, this URL and this token, verified with internal/dpop.
type fakeDP struct {
	t   *testing.T
	srv *httptest.Server

	mu sync.Mutex
	// Set by the test.
	bodies        map[string]string // 200 answers, by path
	introspection string            // echoed base64url in X-Sesame-Introspection
	dpop          bool
	requireNonce  bool                             // challenge a proof without the fake's nonce once
	answer        func(w http.ResponseWriter) bool // answers instead, when it returns true
	// Recorded.
	reqs      []*http.Request
	proofErrs []error
	jtis      map[string]bool
}

const dpNonce = "fake-dp-nonce-0123456789"

func newFakeDP(t *testing.T, bodies map[string]string) *fakeDP {
	t.Helper()
	dp := &fakeDP{t: t, bodies: bodies, introspection: introspectionJSON, jtis: map[string]bool{}}
	dp.srv = httptest.NewServer(http.HandlerFunc(dp.serve))
	t.Cleanup(dp.srv.Close)
	return dp
}

func (dp *fakeDP) set(f func(dp *fakeDP)) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	f(dp)
}

func (dp *fakeDP) requests() []*http.Request {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	return append([]*http.Request(nil), dp.reqs...)
}

func (dp *fakeDP) serve(w http.ResponseWriter, r *http.Request) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	dp.reqs = append(dp.reqs, r.Clone(context.Background()))
	if dp.introspection != "" {
		w.Header().Set("X-Sesame-Introspection", base64.RawURLEncoding.EncodeToString([]byte(dp.introspection)))
	}
	if dp.answer != nil && dp.answer(w) {
		return
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	want := "Bearer"
	if dp.dpop {
		want = "DPoP"
	}
	if scheme != want || token == "" {
		w.Header().Set("WWW-Authenticate", want+` error="invalid_token"`)
		jsonError(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	if dp.dpop {
		raw, _, err := dpop.FromHeader(r.Header)
		c := dpop.Check{Method: http.MethodGet, URL: dp.srv.URL + r.URL.Path, AccessToken: token}
		if dp.requireNonce {
			c.Nonce = func(n string) bool { return n == dpNonce }
		}
		var p *dpop.Proof
		if err == nil {
			p, err = dpop.Verify(raw, c)
		}
		if err == nil && dp.jtis[p.JTI] {
			err = dpop.ErrInvalidProof
		}
		if err != nil {
			code := "invalid_dpop_proof"
			if errors.Is(err, dpop.ErrUseNonce) {
				code = "use_dpop_nonce"
				w.Header().Set(dpop.NonceHeader, dpNonce)
			} else {
				dp.proofErrs = append(dp.proofErrs, err)
			}
			w.Header().Set("WWW-Authenticate", `DPoP error="`+code+`"`)
			jsonError(w, http.StatusUnauthorized, code)
			return
		}
		dp.jtis[p.JTI] = true
	}
	body, ok := dp.bodies[r.URL.Path]
	if !ok {
		jsonError(w, http.StatusNotFound, "not_found")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(body))
}

func jsonError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":"` + code + `","error_description":"UPSTREAM-TEXT <b>from the fake provider</b>"}`))
}

// answerWith makes a fake provider answer every request with status and
// body, as one in trouble would.
func answerWith(status int, contentType, body string, header ...string) func(w http.ResponseWriter) bool {
	return func(w http.ResponseWriter) bool {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
		return true
	}
}

// dataSP is the demo SP with the two fake providers, asking for every data
// scope on both platforms, as config/dev.yaml has it.
type dataSP struct {
	app          *App
	sp           *httptest.Server
	dgfip, cnaf  *fakeDP
	dgfipURL     string
	cnafURL      string
	loggedWrites *logCapture
}

func newDGFiP(t *testing.T) *fakeDP {
	return newFakeDP(t, map[string]string{"/dp/dgfip" + pathRFR: dgfipJSON})
}

func newCNAF(t *testing.T) *fakeDP {
	return newFakeDP(t, map[string]string{"/dp/cnaf" + pathQuotient: quotientJSON, "/dp/cnaf" + pathComposition: compositionJSON})
}

// startDataSP serves the demo SP registered on the standard platform at
// op (or, with plus, on "+" at op, the standard issuer unreachable) with
// dgfip and cnaf; cnafURL, when set, replaces the fake CNAF's URL.
func startDataSP(t *testing.T, op *fakeOP, plus bool, cnafURL string) *dataSP {
	t.Helper()
	d := &dataSP{dgfip: newDGFiP(t), cnaf: newCNAF(t)}
	d.dgfipURL, d.cnafURL = d.dgfip.srv.URL+"/dp/dgfip", d.cnaf.srv.URL+"/dp/cnaf"
	if cnafURL != "" {
		d.cnafURL = cnafURL
	}
	withData := func(c *config.DemoSP) {
		c.Scopes = append(c.Scopes, dataScopes...)
		if c.Plus != nil {
			c.Plus.Scopes = append(c.Plus.Scopes, dataScopes...)
		}
		c.DataProviders = []config.DemoDataProvider{
			{ID: "dgfip", Name: "DGFiP", URL: d.dgfipURL + "/"},
			{ID: "cnaf", Name: "CNAF", URL: d.cnafURL},
		}
	}
	if plus {
		d.dgfip.dpop, d.cnaf.dpop = true, true
		d.app, d.sp = startSP(t, "http://127.0.0.1:1", withPlus(op.issuer()), withData)
		op.plusMode(d.sp.URL+"/jwks", jose.ECDH_ES)
	} else {
		d.app, d.sp = startSP(t, op.issuer(), withData)
	}
	d.loggedWrites = captureLogs(t)
	return d
}

// loginAndMe logs in on platform and returns /me, unescaped.
func (d *dataSP) loginAndMe(t *testing.T, platform, acr string) string {
	t.Helper()
	b := newBrowser(t)
	cb := b.get(loginOn(t, b, d.sp.URL, platform, acr))
	if cb.status != http.StatusSeeOther || cb.location != "/me" {
		t.Fatalf("callback: %d %q\n%s", cb.status, cb.location, cb.body)
	}
	me := b.get(d.sp.URL + "/me")
	if me.status != http.StatusOK {
		t.Fatalf("/me: %d\n%s", me.status, me.body)
	}
	if again := b.get(d.sp.URL + "/me"); again.body != me.body {
		t.Error("a second /me differs from the first: the data should come from the session")
	}
	return html.UnescapeString(me.body)
}

// fieldValue is the value of the read-only input with the given id, and
// whether there is one.
func fieldValue(body, id string) (string, bool) {
	m := regexp.MustCompile(`<input class="fr-input" type="text" id="` + regexp.QuoteMeta(id) + `" name="[^"]*" value="([^"]*)" readonly>`).FindStringSubmatch(body)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// wantFields checks the form's fields and that each names its source.
func wantFields(t *testing.T, body string, source string, want map[string]string) {
	t.Helper()
	for id, v := range want {
		got, ok := fieldValue(body, id)
		if !ok || got != v {
			t.Errorf("field %s = %q (present %v), want %q", id, got, ok, v)
		}
		label := regexp.MustCompile(`for="` + regexp.QuoteMeta(id) + `">[^<]*<span class="fr-hint-text">Source\x{a0}: ([^<]*)</span>`).FindStringSubmatch(body)
		if label == nil || label[1] != source {
			t.Errorf("field %s is not labelled \"Source : %s\": %v", id, source, label)
		}
	}
}

// issuedToken is the one access token the fake OP issued.
func issuedToken(t *testing.T, op *fakeOP) (token, jkt string) {
	t.Helper()
	op.mu.Lock()
	defer op.mu.Unlock()
	if len(op.tokenJKT) != 1 {
		t.Fatalf("the fake OP issued %d access tokens, want 1", len(op.tokenJKT))
	}
	for at, jkt := range op.tokenJKT {
		return at, jkt
	}
	return "", ""
}

// logCapture keeps the demo SP's log records during a test.
type logCapture struct {
	mu      sync.Mutex
	records []slog.Record
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r.Clone())
	return nil
}
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

// captureLogs routes slog to a capture until the test ends (the tests of
// this package do not run in parallel).
func captureLogs(t *testing.T) *logCapture {
	c := &logCapture{}
	old := slog.Default()
	slog.SetDefault(slog.New(c))
	t.Cleanup(func() { slog.SetDefault(old) })
	return c
}

// dataCalls are the "data provider call" lines: provider, url and status.
func (c *logCapture) dataCalls() []map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]string
	for _, r := range c.records {
		if r.Message != "demo-sp: data provider call" {
			continue
		}
		line := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { line[a.Key] = a.Value.String(); return true })
		out = append(out, line)
	}
	return out
}

// TestDataStandard: after a standard login with the data scopes, /me shows
// the figures of both providers in read-only fields with their source, and
// their raw answers for integrators; each provider got the token as Bearer
// in the header only, once per endpoint, and each call left one log line.
func TestDataStandard(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	d := startDataSP(t, op, false, "")
	me := d.loginAndMe(t, "std", "eidas1")

	if !strings.Contains(me, `<h2 id="prefill-title">Démarche pré-remplie par les administrations</h2>`) {
		t.Error("/me lacks the pre-filled section")
	}
	wantFields(t, me, "DGFiP", map[string]string{
		"dgfip-rfr-2025": "32\u202f500\u00a0€", "dgfip-nbpart-2025": "2,5",
		"dgfip-rfr-2024": "31\u202f200\u00a0€", "dgfip-nbpart-2024": "2,5",
	})
	if _, ok := fieldValue(me, "dgfip-rfr-2023"); ok {
		t.Error("/me shows a third year: only the last two belong in the form")
	}
	wantFields(t, me, "CNAF", map[string]string{
		"cnaf-qf":            "1\u202f234",
		"cnaf-allocataire-1": "Angela Claire Louise DUBOIS, née le 24/08/1962",
		"cnaf-enfant-1":      "Lucas DUBOIS, né le 02/05/2010",
	})
	if !strings.Contains(me, `<label class="fr-label" for="cnaf-qf">Quotient familial (mars 2025)`) {
		t.Error("the family quotient's label does not say its month")
	}
	if strings.Contains(me, "dp-problem") {
		t.Errorf("/me shows a problem where every call worked:\n%s", me)
	}
	// For integrators: the raw JSON and the decoded introspection answer,
	// in a <details> per provider.
	for _, want := range []string{
		`<details id="dp-dgfip-raw">`, `<details id="dp-cnaf-raw">`,
		`"revenu_fiscal_de_reference": 32500`, `"quotient_familial": 1234`, `"prenoms": "Lucas"`,
		`<pre class="dp-introspection"><code>{` + "\n" + `  "active": true,`, `"sub": "dp-sub-for-the-provider"`,
		"GET " + d.dgfipURL + pathRFR + "</code>, jeton en <code>Authorization: Bearer</code>\u00a0: HTTP <code>200</code>",
	} {
		if !strings.Contains(me, want) {
			t.Errorf("/me lacks %q", want)
		}
	}

	at, _ := issuedToken(t, op)
	if strings.Contains(me, at) {
		t.Error("/me shows the access token")
	}
	for dp, paths := range map[*fakeDP][]string{d.dgfip: {"/dp/dgfip" + pathRFR}, d.cnaf: {"/dp/cnaf" + pathQuotient, "/dp/cnaf" + pathComposition}} {
		reqs := dp.requests()
		if len(reqs) != len(paths) {
			t.Fatalf("%s got %d requests, want %d", dp.srv.URL, len(reqs), len(paths))
		}
		got := map[string]bool{}
		for _, r := range reqs {
			got[r.URL.Path] = true
			if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer "+at {
				t.Errorf("%s %s with Authorization %q, want GET with Bearer and the issued token", r.Method, r.URL.Path, r.Header.Get("Authorization"))
			}
			if r.Header.Get(dpop.HeaderName) != "" {
				t.Error("a DPoP proof went with a standard platform's call")
			}
			if r.URL.RawQuery != "" || strings.Contains(r.RequestURI, at) {
				t.Errorf("the token or a query is in the URL: %s", r.RequestURI)
			}
		}
		for _, p := range paths {
			if !got[p] {
				t.Errorf("%s was not called", p)
			}
		}
	}

	lines := d.loggedWrites.dataCalls()
	if len(lines) != 3 {
		t.Fatalf("%d data call log lines, want 3: %v", len(lines), lines)
	}
	for _, l := range lines {
		if (l["provider"] != "dgfip" && l["provider"] != "cnaf") || l["status"] != "200" {
			t.Errorf("log line %v: want provider and status 200", l)
		}
		for _, v := range l {
			if strings.Contains(v, at) {
				t.Errorf("the token is in a log line: %v", l)
			}
		}
	}
}

// TestDataProviderTrouble: whatever a provider answers, or if it is down,
// /me renders, the other provider's figures are there, and the citizen
// reads a French sentence, never the provider's own text.
func TestDataProviderTrouble(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // connections to it are refused
	big := `{"quotient_familial":1,"pad":"` + strings.Repeat("x", maxData) + `"}`
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter) bool
		url    string // replaces the fake CNAF's URL
		want   string // the sentence, shown once per CNAF call
		status string // the log line's status
		code   string // the error code shown to integrators
	}{
		{name: "404 person unknown", answer: answerWith(http.StatusNotFound, "application/json", `{"error":"not_found","error_description":"UPSTREAM-TEXT"}`),
			want: "Cette administration ne vous connaît pas", status: "404", code: "not_found"},
		{name: "401 invalid_token", answer: answerWith(http.StatusUnauthorized, "application/json", `{"error":"invalid_token","error_description":"UPSTREAM-TEXT"}`, "WWW-Authenticate", `Bearer error="invalid_token"`),
			want: msg("fr", dataUnauthorized), status: "401", code: "invalid_token"},
		{name: "403 insufficient_scope", answer: answerWith(http.StatusForbidden, "application/json", `{"error":"insufficient_scope","error_description":"UPSTREAM-TEXT"}`),
			want: msg("fr", dataForbidden), status: "403", code: "insufficient_scope"},
		{name: "502 broker unreachable", answer: answerWith(http.StatusBadGateway, "application/json", `{"error":"temporarily_unavailable","error_description":"UPSTREAM-TEXT"}`),
			want: msg("fr", dataBadGateway), status: "502", code: "temporarily_unavailable"},
		{name: "500 with a page", answer: answerWith(http.StatusInternalServerError, "text/html", "<h1>UPSTREAM-TEXT</h1>"),
			want: "Cette administration a rencontré une erreur (code HTTP 500)", status: "500"},
		{name: "down", url: down.URL + "/dp/cnaf", want: msg("fr", dataUnreachable), status: "0"},
		{name: "redirect", answer: nil /* set below */, want: msg("fr", dataRedirect), status: "302"},
		{name: "over 1 MiB", answer: answerWith(http.StatusOK, "application/json", big), want: msg("fr", dataTooLarge), status: "200"},
		{name: "not JSON", answer: answerWith(http.StatusOK, "text/html", "<p>UPSTREAM-TEXT</p>"), want: msg("fr", dataUnreadable), status: "200"},
		{name: "bad JSON", answer: answerWith(http.StatusOK, "application/json", `{"quotient_familial":"UPSTREAM-TEXT"`), want: msg("fr", dataUnreadable), status: "200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := newFakeOP(t, jose.ES256)
			d := startDataSP(t, op, false, tc.url)
			// A redirect must not be followed: the token would go along.
			thief := newFakeDP(t, map[string]string{})
			answer := tc.answer
			if tc.name == "redirect" {
				answer = answerWith(http.StatusFound, "text/plain", "", "Location", thief.srv.URL+"/steal")
			}
			d.cnaf.set(func(dp *fakeDP) { dp.answer = answer })
			me := d.loginAndMe(t, "std", "eidas1")

			if n := strings.Count(me, tc.want); n != 2 {
				t.Errorf("%q is shown %d times, want once per CNAF call (2):\n%s", tc.want, n, me)
			}
			if !strings.Contains(me, "<strong>Quotient familial</strong> (Source\u00a0: CNAF)\u00a0: ") {
				t.Error("the sentence does not say which data and which source")
			}
			if strings.Contains(me, "UPSTREAM-TEXT") {
				t.Error("the provider's own text reached the page")
			}
			if _, ok := fieldValue(me, "cnaf-qf"); ok {
				t.Error("a figure is shown from a failed call")
			}
			if tc.code != "" && !strings.Contains(me, "erreur <code>"+tc.code+"</code>") {
				t.Errorf("the integrators' details lack the error code %s", tc.code)
			}
			// The other provider is untouched.
			wantFields(t, me, "DGFiP", map[string]string{"dgfip-rfr-2025": "32\u202f500\u00a0€"})
			if len(thief.requests()) != 0 {
				t.Error("the demo SP followed the redirect, with the token")
			}
			var statuses []string
			for _, l := range d.loggedWrites.dataCalls() {
				if l["provider"] == "cnaf" {
					statuses = append(statuses, l["status"])
				}
			}
			if len(statuses) != 2 || statuses[0] != tc.status || statuses[1] != tc.status {
				t.Errorf("cnaf log lines' statuses %v, want two %s", statuses, tc.status)
			}
		})
	}
}

// TestDataIntrospectionHeader: a decoded X-Sesame-Introspection is shown
// when sent, an unreadable one is said to be so, and none shows nothing.
func TestDataIntrospectionHeader(t *testing.T) {
	for name, tc := range map[string]struct {
		header string // "" sends none
		want   string
		absent string
	}{
		"absent":     {absent: "dp-introspection"},
		"unreadable": {header: "%%%not base64%%%", want: "X-Sesame-Introspection reçu est illisible", absent: "dp-introspection"},
		"padded":     {header: base64.URLEncoding.EncodeToString([]byte(`{"active":true,"scope":"x"}`)), want: `"scope": "x"`},
	} {
		t.Run(name, func(t *testing.T) {
			op := newFakeOP(t, jose.ES256)
			d := startDataSP(t, op, false, "")
			d.dgfip.set(func(dp *fakeDP) {
				dp.introspection = ""
				if tc.header != "" {
					h := tc.header
					dp.answer = func(w http.ResponseWriter) bool {
						w.Header().Set("X-Sesame-Introspection", h)
						return false
					}
				}
			})
			me := d.loginAndMe(t, "std", "eidas1")
			raw := me[strings.Index(me, `<details id="dp-dgfip-raw">`):]
			raw = raw[:strings.Index(raw, "</details>")]
			if tc.want != "" && !strings.Contains(raw, tc.want) {
				t.Errorf("the DGFiP details lack %q:\n%s", tc.want, raw)
			}
			if tc.absent != "" && strings.Contains(raw, tc.absent) {
				t.Errorf("the DGFiP details hold %q:\n%s", tc.absent, raw)
			}
			wantFields(t, me, "DGFiP", map[string]string{"dgfip-rfr-2025": "32\u202f500\u00a0€"})
		})
	}
}

// TestDataOnlyGrantedScopes: the endpoints called are those the token
// response's scope allows, not those asked for.
func TestDataOnlyGrantedScopes(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	op.set(func(op *fakeOP) { op.grantedScope = "openid identite_pivot email dgfip_rfr" })
	d := startDataSP(t, op, false, "")
	me := d.loginAndMe(t, "std", "eidas1")
	if n := len(d.dgfip.requests()); n != 1 {
		t.Errorf("the DGFiP got %d requests, want 1", n)
	}
	if n := len(d.cnaf.requests()); n != 0 {
		t.Errorf("the CNAF got %d requests with no CNAF scope granted", n)
	}
	cnaf := me[strings.Index(me, `<fieldset class="fr-fieldset" id="dp-cnaf"`):]
	if !strings.Contains(cnaf[:strings.Index(cnaf, "</fieldset>")], "Aucune donnée de cette administration n'a été accordée à la démarche.") {
		t.Error("the CNAF's part does not say no data was granted")
	}
}

// TestDataPlusDPoP: on "+", each call carries the DPoP-bound token as
// "Authorization: DPoP" and a fresh proof for GET and that URL with the
// token's hash, by the key the token is bound to; a provider that asks
// for a nonce gets one more try.
func TestDataPlusDPoP(t *testing.T) {
	for _, nonce := range []bool{false, true} {
		t.Run(map[bool]string{false: "no nonce", true: "nonce"}[nonce], func(t *testing.T) {
			op := newFakeOP(t, jose.ES256)
			d := startDataSP(t, op, true, "")
			d.dgfip.set(func(dp *fakeDP) { dp.requireNonce = nonce })
			d.cnaf.set(func(dp *fakeDP) { dp.requireNonce = nonce })
			me := d.loginAndMe(t, "plus", "eidas3")

			wantFields(t, me, "DGFiP", map[string]string{"dgfip-rfr-2025": "32\u202f500\u00a0€", "dgfip-nbpart-2024": "2,5"})
			wantFields(t, me, "CNAF", map[string]string{"cnaf-qf": "1\u202f234", "cnaf-enfant-1": "Lucas DUBOIS, né le 02/05/2010"})
			if !strings.Contains(me, "jeton en <code>Authorization: DPoP</code> avec une preuve <code>DPoP</code>") {
				t.Error("the details do not say the token went as DPoP")
			}
			at, boundTo := issuedToken(t, op)
			if boundTo == "" || boundTo != dpopJKT(t, d.app) {
				t.Fatalf("the fake OP bound the token to %q, not the demo SP's DPoP key", boundTo)
			}
			jtis := map[string]bool{}
			for _, dp := range []*fakeDP{d.dgfip, d.cnaf} {
				dp.mu.Lock()
				errs := dp.proofErrs
				dp.mu.Unlock()
				if len(errs) > 0 {
					t.Errorf("%s refused proofs: %v", dp.srv.URL, errs)
				}
				reqs := dp.requests()
				per := 1
				if nonce {
					per = 2 // challenged, then with the nonce
				}
				if dp == d.cnaf {
					per *= 2
				}
				// The CNAF's two endpoints are called at once: when one
				// call has learnt the nonce before the other starts, the
				// other sends it at once (RFC 9449 §8), one challenge fewer.
				least := per
				if nonce && dp == d.cnaf {
					least = per - 1
				}
				if len(reqs) < least || len(reqs) > per {
					t.Errorf("%s got %d requests, want %d to %d", dp.srv.URL, len(reqs), least, per)
				}
				for _, r := range reqs {
					if r.Header.Get("Authorization") != "DPoP "+at {
						t.Errorf("Authorization %q, want DPoP and the issued token", r.Header.Get("Authorization"))
					}
					if r.URL.RawQuery != "" || strings.Contains(r.RequestURI, at) {
						t.Errorf("the token or a query is in the URL: %s", r.RequestURI)
					}
					// Checked here too, independently of the fake.
					p := verifyProof(t, r.Header.Get(dpop.HeaderName), http.MethodGet, dp.srv.URL+r.URL.Path, at)
					if p.JKT != boundTo {
						t.Errorf("proof by %s, the token is bound to %s", p.JKT, boundTo)
					}
					if jtis[p.JTI] {
						t.Error("a proof was used twice")
					}
					jtis[p.JTI] = true
				}
			}
		})
	}
}

// TestDataTimeout: a provider that hangs costs the login at most the
// bound, and /me then says it does not answer.
func TestDataTimeout(t *testing.T) {
	op := newFakeOP(t, jose.ES256)
	d := startDataSP(t, op, false, "")
	release := make(chan struct{})
	defer close(release)
	d.cnaf.set(func(dp *fakeDP) {
		dp.answer = func(http.ResponseWriter) bool {
			<-release
			return true
		}
	})
	start := time.Now()
	me := d.loginAndMe(t, "std", "eidas1")
	if took := time.Since(start); took > dataTimeout+15*time.Second { // a generous margin: the point is that it returns at all
		t.Errorf("the login took %s with a hanging provider", took)
	}
	if n := strings.Count(me, msg("fr", dataUnreachable)); n != 2 {
		t.Errorf("the hanging provider's sentence is shown %d times, want 2", n)
	}
	wantFields(t, me, "DGFiP", map[string]string{"dgfip-rfr-2025": "32\u202f500\u00a0€"})
}

// TestNewRejectsBadDataProviders: New refuses what config validation
// would, for a config built in code.
func TestNewRejectsBadDataProviders(t *testing.T) {
	for _, dp := range []config.DemoDataProvider{
		{ID: "urssaf", Name: "URSSAF", URL: "https://urssaf.example"},
		{ID: "dgfip", Name: "DGFiP", URL: "/dp/dgfip"},
		{ID: "dgfip", Name: "DGFiP", URL: "https://dgfip.example/dp?x=1"},
	} {
		cfg := testConfig("http://127.0.0.1:1")
		cfg.DataProviders = []config.DemoDataProvider{dp}
		if _, err := New(cfg); err == nil {
			t.Errorf("New accepted %+v", dp)
		}
	}
}

func TestFrenchNumber(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "999": "999", "1000": "1\u202f000", "32500": "32\u202f500", "1234567": "1\u202f234\u202f567",
		"2.5": "2,5", "-1500.25": "-1\u202f500,25", "1e3": "1\u202f000",
	} {
		if got := frenchNumber(json.Number(in)); got != want {
			t.Errorf("frenchNumber(%s) = %q, want %q", in, got, want)
		}
	}
}
