package dataprovider_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/dpop"
	"github.com/sesame-id/sesame/providers/dataprovider"
)

const (
	rfrPath = "/dp/dgfip/api/impot/revenu-fiscal"
	qfPath  = "/dp/cnaf/api/prestations/quotient-familial"
	compo   = "/dp/cnaf/api/prestations/composition-familiale"
)

func bearer(tok string) string { return "Bearer " + tok }

// years returns the "annees" of a DGFiP answer.
func years(t *testing.T, a answer) []map[string]any {
	t.Helper()
	var body struct {
		Annees []map[string]any `json:"annees"`
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	return body.Annees
}

func wantStatus(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d; body %s", a.status, status, a.body)
	}
	if code != "" {
		if got := a.json(t)["error"]; got != code {
			t.Fatalf("error %v, want %s; body %s", got, code, a.body)
		}
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", a.header.Get("Cache-Control"))
	}
}

// challenge returns the WWW-Authenticate challenge of scheme.
func challenge(a answer, scheme string) string {
	for _, v := range a.header.Values("WWW-Authenticate") {
		if strings.HasPrefix(v, scheme+" ") {
			return v
		}
	}
	return ""
}

func TestRevenuFiscalScopes(t *testing.T) {
	s := newStack(t, 1)
	b := s.brokers[0]
	angela := who(t, "angela-dubois")

	// dgfip_rfr only: the reference income of the last two years, and
	// no tax shares.
	a := s.get(rfrPath, bearer(b.issue(grantSpec{who: angela, scope: "openid identite_pivot dgfip_rfr"})))
	wantStatus(t, a, http.StatusOK, "")
	want := []map[string]any{
		{"annee": 2025.0, "revenu_fiscal_de_reference": 41230.0},
		{"annee": 2024.0, "revenu_fiscal_de_reference": 39870.0},
	}
	if got := years(t, a); !reflect.DeepEqual(got, want) {
		t.Fatalf("dgfip_rfr only: %v, want %v", got, want)
	}
	line := s.lastLog(1, angela)
	if line["outcome"] != "ok" || line["dp"] != "dgfip" || line["scopes"] != "dgfip_rfr" || line["status"] != 200.0 {
		t.Errorf("log line %v", line)
	}

	// dgfip_nbpart only: the shares and no income.
	a = s.get(rfrPath, bearer(b.issue(grantSpec{who: angela, scope: "openid identite_pivot dgfip_nbpart"})))
	wantStatus(t, a, http.StatusOK, "")
	if got := years(t, a); !reflect.DeepEqual(got, []map[string]any{{"annee": 2025.0, "nombre_de_parts": 1.0}, {"annee": 2024.0, "nombre_de_parts": 1.0}}) {
		t.Fatalf("dgfip_nbpart only: %v", got)
	}

	// Both, for someone with three years on file: the two latest.
	jp := who(t, "jean-pierre-martin-dupont")
	a = s.get(rfrPath, bearer(b.issue(grantSpec{who: jp, scope: "openid identite_pivot dgfip_rfr dgfip_nbpart"})))
	wantStatus(t, a, http.StatusOK, "")
	want = []map[string]any{
		{"annee": 2025.0, "revenu_fiscal_de_reference": 68450.0, "nombre_de_parts": 3.0},
		{"annee": 2024.0, "revenu_fiscal_de_reference": 66120.0, "nombre_de_parts": 3.0},
	}
	if got := years(t, a); !reflect.DeepEqual(got, want) {
		t.Fatalf("both scopes: %v, want %v", got, want)
	}
	if line := s.lastLog(3, jp); line["scopes"] != "dgfip_rfr dgfip_nbpart" {
		t.Errorf("log scopes %v", line["scopes"])
	}

	// None of the provider's scopes (the broker released it none): 403,
	// with the scopes that would open the resource.
	a = s.get(rfrPath, bearer(b.issue(grantSpec{who: angela, scope: "openid identite_pivot cnaf_quotient_familial"})))
	wantStatus(t, a, http.StatusForbidden, "insufficient_scope")
	if c := challenge(a, "Bearer"); !strings.Contains(c, `error="insufficient_scope"`) || !strings.Contains(c, `scope="dgfip_rfr dgfip_nbpart"`) {
		t.Errorf("WWW-Authenticate %q", c)
	}
	if line := s.lastLog(4, angela); line["outcome"] != "insufficient_scope" || line["status"] != 403.0 {
		t.Errorf("log line %v", line)
	}
}

func TestCNAF(t *testing.T) {
	s := newStack(t, 1)
	b := s.brokers[0]
	both := "openid identite_pivot cnaf_quotient_familial cnaf_composition_familiale"

	// Noëlle Anaïs Lœuvre is on file as LOEUVRE NOELLE ANAIS.
	noelle := who(t, "noelle-loeuvre")
	a := s.get(qfPath, bearer(b.issue(grantSpec{who: noelle, scope: both})))
	wantStatus(t, a, http.StatusOK, "")
	if got := a.json(t); !reflect.DeepEqual(got, map[string]any{"quotient_familial": 842.0, "mois": 1.0, "annee": 2026.0}) {
		t.Fatalf("quotient familial %v", got)
	}

	jp := who(t, "jean-pierre-martin-dupont")
	a = s.get(compo, bearer(b.issue(grantSpec{who: jp, scope: both})))
	wantStatus(t, a, http.StatusOK, "")
	var c struct {
		Allocataires []map[string]string `json:"allocataires"`
		Enfants      []map[string]string `json:"enfants"`
	}
	if err := json.Unmarshal([]byte(a.body), &c); err != nil {
		t.Fatal(err)
	}
	wantC := []map[string]string{
		{"nom_naissance": "MARTIN-DUPONT", "prenoms": "JEAN-PIERRE MARIE", "date_naissance": "1975-05-12", "sexe": "M"},
		{"nom_naissance": "ROCHE", "prenoms": "SOPHIE ANNE", "date_naissance": "1977-03-02", "sexe": "F"},
	}
	if !reflect.DeepEqual(c.Allocataires, wantC) || len(c.Enfants) != 2 || c.Enfants[0]["prenoms"] != "LUCAS" {
		t.Fatalf("composition familiale %s", a.body)
	}

	// Each resource has its own scope.
	a = s.get(compo, bearer(b.issue(grantSpec{who: jp, scope: "openid identite_pivot cnaf_quotient_familial"})))
	wantStatus(t, a, http.StatusForbidden, "insufficient_scope")
	if c := challenge(a, "Bearer"); !strings.Contains(c, `scope="cnaf_composition_familiale"`) {
		t.Errorf("WWW-Authenticate %q", c)
	}
	a = s.get(qfPath, bearer(b.issue(grantSpec{who: jp, scope: "openid cnaf_composition_familiale"})))
	wantStatus(t, a, http.StatusForbidden, "insufficient_scope")

	// No children: an empty list, not null.
	a = s.get(compo, bearer(b.issue(grantSpec{who: who(t, "angela-dubois"), scope: both})))
	wantStatus(t, a, http.StatusOK, "")
	if !strings.Contains(a.body, `"enfants":[]`) {
		t.Errorf("composition without children %s", a.body)
	}
}

// TestWhoIsKnownWhere calls both providers for every test identity of
// identities.csv: exactly the people of the data file are found, each
// from the pivot identity as the mock IdPs send it (accents, hyphens,
// apostrophes, ligatures), and nobody else.
func TestWhoIsKnownWhere(t *testing.T) {
	s := newStack(t, 1)
	b := s.brokers[0]
	known := map[string][]string{
		rfrPath: {"angela-dubois", "jean-pierre-martin-dupont", "noelle-loeuvre", "klaus-mueller", "francois-xavier-d-harcourt"},
		qfPath:  {"angela-dubois", "jean-pierre-martin-dupont", "noelle-loeuvre", "helene-lefevre"},
	}
	scope := "openid identite_pivot dgfip_rfr dgfip_nbpart cnaf_quotient_familial cnaf_composition_familiale"
	for id, p := range identities() {
		for path, ids := range known {
			a := s.get(path, bearer(b.issue(grantSpec{who: p, scope: scope})))
			if want := slices.Contains(ids, id); want != (a.status == http.StatusOK) {
				t.Errorf("%s at %s: status %d, known %v; body %s", id, path, a.status, want, a.body)
			} else if !want && (a.status != http.StatusNotFound || a.json(t)["error"] != "not_found") {
				t.Errorf("%s at %s: status %d %s, want 404 not_found", id, path, a.status, a.body)
			}
		}
	}
	// The data file keeps its promise: someone known to both, someone
	// unknown to each.
	if !slices.Contains(known[qfPath], "helene-lefevre") || slices.Contains(known[rfrPath], "helene-lefevre") ||
		!slices.Contains(known[rfrPath], "klaus-mueller") || slices.Contains(known[qfPath], "klaus-mueller") {
		t.Fatal("the table above no longer has one person unknown to each provider")
	}
}

// TestReconciliation: one differing attribute is another person, and an
// answer without the whole pivot identity cannot be matched.
func TestReconciliation(t *testing.T) {
	s := newStack(t, 1)
	b := s.brokers[0]
	scope := "openid identite_pivot dgfip_rfr"
	for name, change := range map[string]func(p *grantSpec){
		"birth date":    func(g *grantSpec) { g.who.Birthdate = "1962-08-25" },
		"gender":        func(g *grantSpec) { g.who.Gender = "male" },
		"birthplace":    func(g *grantSpec) { g.who.Birthplace = "75108" },
		"birthcountry":  func(g *grantSpec) { g.who.Birthcountry = "99109" },
		"given names":   func(g *grantSpec) { g.who.GivenName = "Angela" },
		"family name":   func(g *grantSpec) { g.who.FamilyName = "Dubois-Martin" },
		"empty gender":  func(g *grantSpec) { g.who.Gender = "" },
		"empty surname": func(g *grantSpec) { g.who.FamilyName = "" },
	} {
		g := grantSpec{who: who(t, "angela-dubois"), scope: scope}
		change(&g)
		if a := s.get(rfrPath, bearer(b.issue(g))); a.status != http.StatusNotFound {
			t.Errorf("%s differs: status %d, want 404; %s", name, a.status, a.body)
		}
	}
	// Spelt otherwise, the same person.
	g := grantSpec{who: who(t, "angela-dubois"), scope: scope}
	g.who.FamilyName, g.who.GivenName = "  dubois ", "angéla claire-louise"
	if a := s.get(rfrPath, bearer(b.issue(g))); a.status != http.StatusOK {
		t.Errorf("case, accents and punctuation: status %d; %s", a.status, a.body)
	}
	for _, claim := range []string{"given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry"} {
		a := s.get(rfrPath, bearer(b.issue(grantSpec{who: who(t, "angela-dubois"), scope: scope, drop: claim})))
		wantStatus(t, a, http.StatusForbidden, "insufficient_scope")
	}
}

// TestAmbiguousRecords: two records for one person, and the provider
// answers for neither.
func TestAmbiguousRecords(t *testing.T) {
	raw, err := os.ReadFile("data.json")
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]map[string][]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	// Angela twice, the second time spelt otherwise.
	dup := strings.Replace(string(f["dgfip"]["contribuables"][0]), `"DUBOIS"`, `"Dubois"`, 1)
	f["dgfip"]["contribuables"] = append(f["dgfip"]["contribuables"], json.RawMessage(dup))
	out, _ := json.Marshal(f)
	path := filepath.Join(t.TempDir(), "data.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newStack(t, 1, func(c *config.MockDataProvider) { c.Data = path })
	a := s.get(rfrPath, bearer(s.brokers[0].issue(grantSpec{who: who(t, "angela-dubois"), scope: "openid identite_pivot dgfip_rfr"})))
	wantStatus(t, a, http.StatusNotFound, "not_found")
	// Someone else in the same file is still found.
	a = s.get(rfrPath, bearer(s.brokers[0].issue(grantSpec{who: who(t, "klaus-mueller"), scope: "openid identite_pivot dgfip_rfr"})))
	wantStatus(t, a, http.StatusOK, "")
}

func TestInactiveToken(t *testing.T) {
	for _, jsonVariant := range []bool{false, true} {
		s := newStack(t, 1)
		b := s.brokers[0]
		b.misbehave(badAnswer{jsonInactive: jsonVariant})
		angela := who(t, "angela-dubois")
		for i, tok := range []string{
			"unknown-token",
			b.issue(grantSpec{who: angela, scope: "dgfip_rfr", exp: time.Now().Add(-time.Second)}),
		} {
			a := s.get(rfrPath, bearer(tok))
			wantStatus(t, a, http.StatusUnauthorized, "invalid_token")
			if c := challenge(a, "Bearer"); !strings.Contains(c, `realm="dgfip"`) || !strings.Contains(c, `error="invalid_token"`) {
				t.Errorf("json %v: Bearer challenge %q", jsonVariant, c)
			}
			if c := challenge(a, "DPoP"); c == "" || strings.Contains(c, "error=") {
				t.Errorf("json %v: DPoP challenge %q: want one, without the error", jsonVariant, c)
			}
			line := s.lastLog(i+1, angela)
			if line["outcome"] != "invalid_token" || !strings.Contains(line["introspection"].(string), "inactive") {
				t.Errorf("json %v: log line %v", jsonVariant, line)
			}
		}
	}
}

func TestRequestRefusedBeforeIntrospection(t *testing.T) {
	s := newStack(t, 1)
	b := s.brokers[0]
	tok := b.issue(grantSpec{who: who(t, "angela-dubois"), scope: "dgfip_rfr"})
	for name, tc := range map[string]struct {
		path, auth string
		extra      []string
		status     int
		code       string
	}{
		"token in the query":             {rfrPath + "?access_token=" + tok, "", nil, http.StatusBadRequest, "invalid_request"},
		"token in the query and header":  {rfrPath + "?access_token=" + tok, bearer(tok), nil, http.StatusBadRequest, "invalid_request"},
		"no Authorization":               {rfrPath, "", nil, http.StatusUnauthorized, "invalid_token"},
		"Basic scheme":                   {rfrPath, "Basic ZHA6c2VjcmV0", nil, http.StatusUnauthorized, "invalid_token"},
		"two Authorization headers":      {rfrPath, bearer(tok), []string{"Authorization", bearer(tok)}, http.StatusBadRequest, "invalid_request"},
		"malformed token":                {rfrPath, `Bearer a"b`, nil, http.StatusBadRequest, "invalid_request"},
		"empty token":                    {rfrPath, "Bearer ", nil, http.StatusBadRequest, "invalid_request"},
		"token too long":                 {rfrPath, bearer(strings.Repeat("a", 5000)), nil, http.StatusBadRequest, "invalid_request"},
		"DPoP scheme without proof":      {rfrPath, "DPoP " + tok, nil, http.StatusUnauthorized, "invalid_dpop_proof"},
		"DPoP scheme with garbage proof": {rfrPath, "DPoP " + tok, []string{"DPoP", "x.y.z"}, http.StatusUnauthorized, "invalid_dpop_proof"},
	} {
		a := s.get(tc.path, tc.auth, tc.extra...)
		if a.status != tc.status || a.json(t)["error"] != tc.code {
			t.Errorf("%s: %d %s, want %d %s", name, a.status, a.body, tc.status, tc.code)
		}
		if name == "no Authorization" || name == "Basic scheme" {
			// RFC 6750 §3.1: no error code to a request without credentials.
			if c := challenge(a, "Bearer"); c != `Bearer realm="dgfip"` {
				t.Errorf("%s: Bearer challenge %q", name, c)
			}
		}
		if tc.status == http.StatusBadRequest && !strings.Contains(challenge(a, "Bearer"), `error="invalid_request"`) {
			t.Errorf("%s: WWW-Authenticate %q", name, a.header.Values("WWW-Authenticate"))
		}
	}
	if _, _, n := b.counts(); n != 0 {
		t.Errorf("%d introspections for requests refused on their face", n)
	}
	if lines := s.logLines(); len(lines) != 10 {
		t.Errorf("%d log lines for 10 calls", len(lines))
	}
}

// TestBadAnswers: an introspection answer that does not verify is
// treated as inactive (401), and the reason is logged.
func TestBadAnswers(t *testing.T) {
	for name, tc := range map[string]struct {
		bad    badAnswer
		reason string
	}{
		"bad signature":             {badAnswer{forgedSignature: true}, "signature"},
		"unknown kid":               {badAnswer{unknownKid: true}, `kid "not-published"`},
		"wrong aud":                 {badAnswer{aud: "dp-other"}, "aud"},
		"wrong iss":                 {badAnswer{iss: "https://evil.example"}, "iss"},
		"typ missing":               {badAnswer{noTyp: true}, "typ"},
		"stale iat":                 {badAnswer{iatAge: 5 * time.Minute}, "old, more than 1m0s"},
		"iat in the future":         {badAnswer{iatAge: -5 * time.Minute}, "future"},
		"not encrypted":             {badAnswer{notEncrypted: true}, "not a JWE"},
		"encrypted to another key":  {badAnswer{foreignKey: true}, "does not decrypt"},
		"unsigned JSON says active": {badAnswer{jsonActive: true}, "unsigned JSON"},
		"token of another issuer":   {badAnswer{tokenIss: "https://other.example"}, "token_introspection iss"},
		"active past its exp":       {badAnswer{activeExpired: true}, "active token expired"},
		"DPoP without cnf.jkt":      {badAnswer{dpopWithoutCnf: true}, "token_type DPoP with cnf.jkt"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStack(t, 1)
			b := s.brokers[0]
			b.misbehave(tc.bad)
			angela := who(t, "angela-dubois")
			g := grantSpec{who: angela, scope: "openid identite_pivot dgfip_rfr"}
			if tc.bad.activeExpired {
				g.exp = s.now().Add(-time.Second)
			}
			a := s.get(rfrPath, bearer(b.issue(g)))
			wantStatus(t, a, http.StatusUnauthorized, "invalid_token")
			if !strings.Contains(challenge(a, "Bearer"), `error="invalid_token"`) {
				t.Errorf("WWW-Authenticate %q", a.header.Values("WWW-Authenticate"))
			}
			line := s.lastLog(1, angela)
			if line["level"] != "WARN" || !strings.Contains(line["introspection"].(string), "answer refused") ||
				!strings.Contains(line["introspection"].(string), tc.reason) {
				t.Errorf("log line %v: want a warning naming %q", line, tc.reason)
			}
		})
	}
}

// TestRSAOAEP: a broker may encrypt to the RSA key as well.
func TestRSAOAEP(t *testing.T) {
	s := newStack(t, 1)
	s.brokers[0].misbehave(badAnswer{rsa: true})
	a := s.get(rfrPath, bearer(s.brokers[0].issue(grantSpec{who: who(t, "klaus-mueller"), scope: "dgfip_nbpart identite_pivot"})))
	wantStatus(t, a, http.StatusOK, "")
}

func TestBrokerUnavailable(t *testing.T) {
	angela := who(t, "angela-dubois")
	t.Run("down", func(t *testing.T) {
		s := newStack(t, 1)
		tok := s.brokers[0].issue(grantSpec{who: angela, scope: "dgfip_rfr"})
		s.brokers[0].srv.Close()
		a := s.get(rfrPath, bearer(tok))
		wantStatus(t, a, http.StatusBadGateway, "temporarily_unavailable")
		if len(a.header.Values("WWW-Authenticate")) != 0 {
			t.Errorf("a 502 with WWW-Authenticate %q", a.header.Values("WWW-Authenticate"))
		}
		if line := s.lastLog(1, angela); line["level"] != "WARN" || line["status"] != 502.0 {
			t.Errorf("log line %v", line)
		}
	})
	t.Run("discovery names another issuer", func(t *testing.T) {
		s := newStack(t, 1)
		s.brokers[0].discoveryIssuer = "https://other.example"
		wantStatus(t, s.get(rfrPath, bearer(s.brokers[0].issue(grantSpec{who: angela, scope: "dgfip_rfr"}))), http.StatusBadGateway, "temporarily_unavailable")
	})
	t.Run("broker refuses the provider's credentials", func(t *testing.T) {
		s := newStack(t, 1, func(c *config.MockDataProvider) { c.ClientSecret = "wrong-secret-0123456789abcdef0123456789" })
		wantStatus(t, s.get(rfrPath, bearer(s.brokers[0].issue(grantSpec{who: angela, scope: "dgfip_rfr"}))), http.StatusBadGateway, "temporarily_unavailable")
		if line := s.lastLog(1, angela); !strings.Contains(line["introspection"].(string), "401") {
			t.Errorf("log line %v", line)
		}
	})
}

func TestTwoIssuers(t *testing.T) {
	angela := who(t, "angela-dubois")
	scope := "openid identite_pivot dgfip_rfr"
	s := newStack(t, 2)
	first, second := s.brokers[0], s.brokers[1]

	// Active at the second only.
	a := s.get(rfrPath, bearer(second.issue(grantSpec{who: angela, scope: scope})))
	wantStatus(t, a, http.StatusOK, "")
	line := s.lastLog(1, angela)
	if line["issuer"] != second.issuer || line["introspection"] != first.issuer+": inactive; "+second.issuer+": active" {
		t.Errorf("log line %v", line)
	}
	// Active at the first: the second is not asked.
	_, _, before := second.counts()
	wantStatus(t, s.get(rfrPath, bearer(first.issue(grantSpec{who: angela, scope: scope}))), http.StatusOK, "")
	if _, _, after := second.counts(); after != before {
		t.Error("the second broker was asked about a token the first said active")
	}
	// Unknown to both: 401.
	wantStatus(t, s.get(rfrPath, bearer("nobody-issued-this")), http.StatusUnauthorized, "invalid_token")

	// The first down: the second still answers; the second down and the
	// first inactive: the provider cannot tell, 502.
	tok := second.issue(grantSpec{who: angela, scope: scope})
	first.srv.Close()
	wantStatus(t, s.get(rfrPath, bearer(tok)), http.StatusOK, "")
	s2 := newStack(t, 2)
	tok = s2.brokers[1].issue(grantSpec{who: angela, scope: scope})
	s2.brokers[1].srv.Close()
	wantStatus(t, s2.get(rfrPath, bearer(tok)), http.StatusBadGateway, "temporarily_unavailable")
}

func TestDPoPBoundToken(t *testing.T) {
	s := newStack(t, 1)
	b := s.brokers[0]
	angela := who(t, "angela-dubois")
	newKey := func() jose.JSONWebKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256)}
	}
	key, other := newKey(), newKey()
	jkt, err := dpop.Thumbprint(key)
	if err != nil {
		t.Fatal(err)
	}
	tok := b.issue(grantSpec{who: angela, scope: "openid identite_pivot dgfip_rfr", jkt: jkt})
	proof := func(k jose.JSONWebKey, url, token string) string {
		p, err := dpop.NewProof(k, http.MethodGet, url, token, "")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	endpoint := s.url + rfrPath

	// Bearer scheme for a bound token: 401, and the DPoP challenge says so.
	a := s.get(rfrPath, bearer(tok))
	wantStatus(t, a, http.StatusUnauthorized, "invalid_token")
	if c := challenge(a, "DPoP"); !strings.Contains(c, `error="invalid_token"`) || !strings.Contains(c, "algs=") {
		t.Errorf("DPoP challenge %q", c)
	}
	// With its key's proof: 200.
	good := proof(key, endpoint, tok)
	a = s.get(rfrPath, "DPoP "+tok, "DPoP", good)
	wantStatus(t, a, http.StatusOK, "")
	if line := s.lastLog(2, angela); line["scheme"] != "DPoP" || line["outcome"] != "ok" {
		t.Errorf("log line %v", line)
	}
	// The same proof again: used once.
	wantStatus(t, s.get(rfrPath, "DPoP "+tok, "DPoP", good), http.StatusUnauthorized, "invalid_dpop_proof")
	// Proofs by another key, for another URL, for another token.
	for name, p := range map[string]string{
		"another key":   proof(other, endpoint, tok),
		"another URL":   proof(key, s.url+"/dp/dgfip/jwks", tok),
		"another token": proof(key, endpoint, "another-token"),
		"no ath":        proof(key, endpoint, ""),
	} {
		a := s.get(rfrPath, "DPoP "+tok, "DPoP", p)
		wantStatus(t, a, http.StatusUnauthorized, "invalid_dpop_proof")
		if c := challenge(a, "DPoP"); !strings.Contains(c, `error="invalid_dpop_proof"`) {
			t.Errorf("%s: DPoP challenge %q", name, c)
		}
	}
	// The DPoP scheme for a token that is not bound: 401.
	plain := b.issue(grantSpec{who: angela, scope: "openid identite_pivot dgfip_rfr"})
	a = s.get(rfrPath, "DPoP "+plain, "DPoP", proof(key, endpoint, plain))
	wantStatus(t, a, http.StatusUnauthorized, "invalid_token")
	if c := challenge(a, "Bearer"); !strings.Contains(c, `error="invalid_token"`) {
		t.Errorf("Bearer challenge %q", c)
	}
}

// TestBrokerCaches: discovery and JWKS are fetched once; a new kid (the
// broker rotated) is fetched again, but at most every 10 s.
func TestBrokerCaches(t *testing.T) {
	s := newStack(t, 1)
	b := s.brokers[0]
	angela := who(t, "angela-dubois")
	call := func(want int) {
		t.Helper()
		a := s.get(rfrPath, bearer(b.issue(grantSpec{who: angela, scope: "identite_pivot dgfip_rfr"})))
		if a.status != want {
			t.Fatalf("status %d, want %d: %s\n%s", a.status, want, a.body, s.logs.String())
		}
	}
	wantCounts := func(discovery, jwks int) {
		t.Helper()
		if d, j, _ := b.counts(); d != discovery || j != jwks {
			t.Fatalf("discovery fetched %d times, JWKS %d; want %d and %d", d, j, discovery, jwks)
		}
	}
	call(200)
	call(200)
	call(200)
	wantCounts(1, 1)
	// The broker rotates its key: the unknown kid is fetched at once,
	// the last fetch being more than 10 s old.
	s.advance(11 * time.Second)
	b.rotate()
	call(200)
	wantCounts(1, 2)
	// Answers under a kid it does not publish: no fetch within 10 s of
	// the last, then one, then none for 10 s.
	b.misbehave(badAnswer{unknownKid: true})
	call(401)
	wantCounts(1, 2)
	s.advance(11 * time.Second)
	call(401)
	call(401)
	call(401)
	wantCounts(1, 3)
	s.advance(11 * time.Second)
	call(401)
	wantCounts(1, 4)
	// After a rotation within 10 s of the last fetch, the new key is not
	// known yet; it is after the interval.
	b.misbehave(badAnswer{})
	b.rotate()
	call(401)
	s.advance(11 * time.Second)
	call(200)
	wantCounts(1, 5)
	// Discovery is fetched again after 10 minutes.
	s.advance(10 * time.Minute)
	call(200)
	wantCounts(2, 5)
}

func TestJWKSAndPage(t *testing.T) {
	s := newStack(t, 1)
	a := s.get("/dp/cnaf/jwks", "")
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("jwks: %d %s", a.status, a.body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(a.body), &set); err != nil {
		t.Fatal(err)
	}
	var algs []string
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Use != "enc" || k.KeyID == "" {
			t.Errorf("published key %s: public %v, use %q", k.KeyID, k.IsPublic(), k.Use)
		}
		algs = append(algs, k.Algorithm)
	}
	if slices.Sort(algs); !reflect.DeepEqual(algs, []string{"ECDH-ES", "RSA-OAEP-256"}) {
		t.Errorf("published algs %v", algs)
	}
	if strings.Contains(a.body, `"d"`) {
		t.Error("the JWKS holds a private key")
	}

	a = s.get("/dp/dgfip/", "")
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d", a.status)
	}
	for _, want := range []string{s.url + rfrPath, "dgfip_rfr", "dgfip_nbpart", "dp-dgfip", s.url + "/dp/dgfip/jwks", "klaus-mueller", "francois-xavier-d-harcourt"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("the dgfip page lacks %q", want)
		}
	}
	if strings.Contains(a.body, "helene-lefevre") {
		t.Error("the dgfip page lists someone it does not know")
	}
	a = s.get("/dp/cnaf/", "")
	for _, want := range []string{s.url + qfPath, s.url + compo, "cnaf_quotient_familial", "cnaf_composition_familiale", "helene-lefevre", "ROCHE SOPHIE ANNE"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("the cnaf page lacks %q", want)
		}
	}
}

func TestNewRefusesBadFiles(t *testing.T) {
	keys, err := keysFile()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := config.MockDataProvider{ID: "dgfip", Issuers: []string{"http://localhost:8000"}, ClientID: "dp-dgfip", ClientSecret: registered["dp-dgfip"].secret, Keys: keys}
	sigKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sigJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: sigKey, KeyID: "s", Algorithm: "ES256", Use: "sig"}}})
	pubJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &sigKey.PublicKey, KeyID: "p", Algorithm: "ECDH-ES"}}})
	for name, tc := range map[string]struct {
		edit func(*config.MockDataProvider)
		want string
	}{
		"unknown id":        {func(c *config.MockDataProvider) { c.ID = "urssaf" }, `id "urssaf"`},
		"missing keys file": {func(c *config.MockDataProvider) { c.Keys = filepath.Join(dir, "none.json") }, "keys:"},
		"signing key":       {func(c *config.MockDataProvider) { c.Keys = write("sig.json", string(sigJWKS)) }, `use "sig"`},
		"public key":        {func(c *config.MockDataProvider) { c.Keys = write("pub.json", string(pubJWKS)) }, "a valid private key is required"},
		"missing data file": {func(c *config.MockDataProvider) { c.Data = filepath.Join(dir, "none.json") }, "data:"},
		"no dgfip section":  {func(c *config.MockDataProvider) { c.Data = write("d1.json", `{"cnaf":{"foyers":[]}}`) }, `no "dgfip" section`},
		"unknown field":     {func(c *config.MockDataProvider) { c.Data = write("d2.json", `{"dgfip":{"contribuables":[],"x":1}}`) }, `unknown field "x"`},
		"bad birth date": {func(c *config.MockDataProvider) {
			c.Data = write("d3.json", strings.Replace(readData(t), `"1962-08-24"`, `"1962-02-30"`, 1))
		}, `dgfip.contribuables[0] (angela-dubois): date_naissance: "1962-02-30"`},
		"bad sexe": {func(c *config.MockDataProvider) {
			c.Data = write("d4.json", strings.Replace(readData(t), `"sexe": "F"`, `"sexe": "female"`, 1))
		}, `sexe: "female": expected M or F`},
		"bad nombre de parts": {func(c *config.MockDataProvider) {
			c.Data = write("d5.json", strings.Replace(readData(t), `"nombre_de_parts": 1}`, `"nombre_de_parts": 1.3}`, 1))
		}, "nombre_de_parts 1.3"},
	} {
		c := good
		tc.edit(&c)
		_, err := dataprovider.New([]config.MockDataProvider{c}, dataprovider.Options{BaseURL: "http://localhost:8100"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error with %q, got %v", name, tc.want, err)
		}
	}
	if _, err := dataprovider.New([]config.MockDataProvider{good}, dataprovider.Options{BaseURL: "http://localhost:8100"}); err != nil {
		t.Fatalf("the good config: %v", err)
	}
}

func readData(t *testing.T) string {
	raw, err := os.ReadFile("data.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestConcurrentCalls: calls in parallel share one broker cache (run
// with -race).
func TestConcurrentCalls(t *testing.T) {
	s := newStack(t, 2)
	angela := who(t, "angela-dubois")
	var wg sync.WaitGroup
	statuses := make([]int, 16)
	for i := range statuses {
		b := s.brokers[i%2]
		tok := b.issue(grantSpec{who: angela, scope: "identite_pivot dgfip_rfr cnaf_quotient_familial"})
		path := []string{rfrPath, qfPath}[(i/2)%2]
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
			req.Header.Set("Authorization", bearer(tok))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusOK {
			t.Errorf("call %d: status %d", i, st)
		}
	}
	// Each provider keeps its own cache: one fetch each per broker.
	for _, b := range s.brokers {
		if d, j, _ := b.counts(); d != 2 || j != 2 {
			t.Errorf("%s: discovery fetched %d times, JWKS %d; want once per provider", b.issuer, d, j)
		}
	}
}
