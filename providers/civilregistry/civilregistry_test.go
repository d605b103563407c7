package civilregistry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/providers"
	"github.com/sesame-id/sesame/providers/civilregistry"
)

const secret = "rnipp-secret-0123456789abcdef0123456789"

// start serves the mock providers with the registry over the built-in
// identities, as `sesame providers` does.
func start(t *testing.T, slow time.Duration) (*httptest.Server, *providers.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	p, err := providers.New(&config.Providers{Listen: "127.0.0.1:0", BaseURL: srv.URL,
		CivilRegistry: &config.MockCivilRegistry{Secret: secret, SlowDelay: config.Duration(slow)}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p
	return srv, p
}

func pivotOf(id providers.Identity) civilregistry.Pivot {
	return civilregistry.Pivot{GivenName: id.GivenName, FamilyName: id.FamilyName, Birthdate: id.Birthdate,
		Gender: id.Gender, Birthplace: id.Birthplace, Birthcountry: id.Birthcountry}
}

type reply struct {
	Status   string               `json:"status"`
	Identity *civilregistry.Pivot `json:"identity"`
	Error    string               `json:"error"`
	Desc     string               `json:"error_description"`
}

func check(t *testing.T, ctx context.Context, url, token string, body []byte) (*http.Response, reply) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/rnipp/check", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("HTTP %d, not JSON: %q", resp.StatusCode, raw)
	}
	return resp, r
}

func body(p civilregistry.Pivot) []byte { b, _ := json.Marshal(p); return b }

// Every test identity of the mock IdPs is found as they describe it,
// except the special ones, each of which gets its own outcome.
func TestEveryIdentityHasItsOutcome(t *testing.T) {
	srv, p := start(t, 300*time.Millisecond)
	seen := map[string]bool{}
	for _, id := range p.Identities() {
		asked := pivotOf(id)
		start := time.Now()
		resp, r := check(t, context.Background(), srv.URL, secret, body(asked))
		took := time.Since(start)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d %s", id.ID, resp.StatusCode, r.Desc)
		}
		want, special := civilregistry.Special[id.ID]
		seen[id.ID] = special
		switch {
		case !special:
			if r.Status != "found" || r.Identity == nil || *r.Identity != asked {
				t.Errorf("%s: %s %+v, want found as asked", id.ID, r.Status, r.Identity)
			}
		case want.GivenName != "":
			corrected := asked
			corrected.GivenName, corrected.FamilyName = want.GivenName, want.FamilyName
			if r.Status != "found" || r.Identity == nil || *r.Identity != corrected {
				t.Errorf("%s: %s %+v, want found as %+v", id.ID, r.Status, r.Identity, corrected)
			}
			// The registry's own spelling finds the person too.
			if _, r := check(t, context.Background(), srv.URL, secret, body(corrected)); r.Status != "found" || *r.Identity != corrected {
				t.Errorf("%s under the registry's spelling: %s", id.ID, r.Status)
			}
		case want.Slow:
			if r.Status != "found" || took < 300*time.Millisecond {
				t.Errorf("%s: %s after %s, want found after 300ms", id.ID, r.Status, took)
			}
		default:
			if r.Status != want.Status || r.Identity != nil {
				t.Errorf("%s: %s %+v, want %s without identity", id.ID, r.Status, r.Identity, want.Status)
			}
		}
	}
	for id := range civilregistry.Special {
		if !seen[id] {
			t.Errorf("special identity %s is not in providers/identities.csv", id)
		}
	}
}

// Names match as a registry's do: case, accents, hyphens, apostrophes and
// spaces aside; the answer carries the registry's spelling. Dates and
// codes match exactly, birthplace only for a birth in France.
func TestMatching(t *testing.T) {
	srv, _ := start(t, 0)
	helene := civilregistry.Pivot{GivenName: "Hélène Françoise", FamilyName: "Lefèvre", Birthdate: "1990-12-31", Gender: "female", Birthplace: "13055", Birthcountry: "99100"}
	klaus := civilregistry.Pivot{GivenName: "Klaus", FamilyName: "Müller", Birthdate: "1970-06-21", Gender: "male", Birthcountry: "99109"}
	for name, tc := range map[string]struct {
		asked civilregistry.Pivot
		want  *civilregistry.Pivot
	}{
		"upper case, no accents": {civilregistry.Pivot{GivenName: "HELENE FRANCOISE", FamilyName: "LEFEVRE", Birthdate: "1990-12-31", Gender: "female", Birthplace: "13055", Birthcountry: "99100"}, &helene},
		"hyphens and spaces":     {civilregistry.Pivot{GivenName: "Hélène-Françoise ", FamilyName: " Lefèvre", Birthdate: "1990-12-31", Gender: "female", Birthplace: "13055", Birthcountry: "99100"}, &helene},
		"apostrophe and ligature": {civilregistry.Pivot{GivenName: "Noelle Anais", FamilyName: "LOEUVRE", Birthdate: "1988-02-15", Gender: "female", Birthplace: "59350", Birthcountry: "99100"},
			&civilregistry.Pivot{GivenName: "Noëlle Anaïs", FamilyName: "Lœuvre", Birthdate: "1988-02-15", Gender: "female", Birthplace: "59350", Birthcountry: "99100"}},
		"abroad, birthplace ignored": {civilregistry.Pivot{GivenName: "Klaus", FamilyName: "Müller", Birthdate: "1970-06-21", Gender: "male", Birthplace: "10115", Birthcountry: "99109"}, &klaus},
		"ü written ue":               {civilregistry.Pivot{GivenName: "Klaus", FamilyName: "Mueller", Birthdate: "1970-06-21", Gender: "male", Birthcountry: "99109"}, nil},
		"abroad, exact":              {klaus, &klaus},
		"other birthdate":            {civilregistry.Pivot{GivenName: "Hélène Françoise", FamilyName: "Lefèvre", Birthdate: "1990-12-30", Gender: "female", Birthplace: "13055", Birthcountry: "99100"}, nil},
		"other birthplace":           {civilregistry.Pivot{GivenName: "Hélène Françoise", FamilyName: "Lefèvre", Birthdate: "1990-12-31", Gender: "female", Birthplace: "13056", Birthcountry: "99100"}, nil},
		"first given name only":      {civilregistry.Pivot{GivenName: "Hélène", FamilyName: "Lefèvre", Birthdate: "1990-12-31", Gender: "female", Birthplace: "13055", Birthcountry: "99100"}, nil},
	} {
		_, r := check(t, context.Background(), srv.URL, secret, body(tc.asked))
		switch {
		case tc.want == nil && r.Status != "not_found":
			t.Errorf("%s: %s, want not_found", name, r.Status)
		case tc.want != nil && (r.Status != "found" || r.Identity == nil || *r.Identity != *tc.want):
			t.Errorf("%s: %s %+v, want found as %+v", name, r.Status, r.Identity, *tc.want)
		}
	}
}

// The slow identity's answer stops when the caller gives up, so a broker's
// timeout frees the mock at once.
func TestSlowStopsWhenTheCallerLeaves(t *testing.T) {
	srv, p := start(t, time.Minute)
	var lent civilregistry.Pivot
	for _, id := range p.Identities() {
		if id.ID == "rnipp-lent" {
			lent = pivotOf(id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/rnipp/check", bytes.NewReader(body(lent)))
	req.Header.Set("Authorization", "Bearer "+secret)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the slow identity answered within 100ms")
	}
	start := time.Now()
	srv.Close() // waits for the handlers under way
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the handler kept waiting %s after the caller left", d)
	}
}

// Bad requests get a clear JSON error, never a 5xx.
func TestBadRequests(t *testing.T) {
	srv, _ := start(t, 0)
	ok := body(civilregistry.Pivot{GivenName: "Angela Claire Louise", FamilyName: "Dubois", Birthdate: "1962-08-24", Gender: "female", Birthplace: "75107", Birthcountry: "99100"})
	for name, tc := range map[string]struct {
		token  string
		body   []byte
		status int
		want   string
	}{
		"no token":      {"", ok, 401, "invalid_token"},
		"wrong token":   {strings.Repeat("x", len(secret)), ok, 401, "invalid_token"},
		"not JSON":      {secret, []byte("given_name=Angela"), 400, "JSON object"},
		"unknown field": {secret, []byte(`{"given_name":"A","family_name":"B","birthdate":"1962-08-24","gender":"female","birthcountry":"99100","nir":"1"}`), 400, "nothing else"},
		"two objects":   {secret, append(append([]byte{}, ok...), ok...), 400, "after its JSON object"},
		"missing claim": {secret, []byte(`{"given_name":"A","family_name":"B","gender":"female","birthcountry":"99100"}`), 400, "birthdate is required"},
		"control char":  {secret, []byte(`{"given_name":"A\u0000","family_name":"B","birthdate":"1962-08-24","gender":"female","birthcountry":"99100"}`), 400, "given_name has invalid"},
		"oversized":     {secret, bytes.Repeat([]byte(" "), 17<<10), 413, "over"},
	} {
		resp, r := check(t, context.Background(), srv.URL, tc.token, tc.body)
		if resp.StatusCode != tc.status || !strings.Contains(r.Error+" "+r.Desc, tc.want) {
			t.Errorf("%s: HTTP %d %s %q, want %d with %q", name, resp.StatusCode, r.Error, r.Desc, tc.status, tc.want)
		}
		if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
	}
	resp, err := http.Get(srv.URL + "/rnipp/check")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET check: %d, want 405", resp.StatusCode)
	}
}

func TestNew(t *testing.T) {
	if _, err := civilregistry.New(nil, civilregistry.Options{Secret: "short"}); err == nil {
		t.Error("a short secret accepted")
	}
	twins := []civilregistry.Person{
		{ID: "a", Pivot: civilregistry.Pivot{GivenName: "Élise", FamilyName: "Roy", Birthdate: "2000-01-01", Gender: "female", Birthcountry: "99109"}},
		{ID: "b", Pivot: civilregistry.Pivot{GivenName: "ELISE", FamilyName: "roy", Birthdate: "2000-01-01", Gender: "female", Birthcountry: "99109"}},
	}
	if _, err := civilregistry.New(twins, civilregistry.Options{Secret: secret}); err == nil || !strings.Contains(err.Error(), "a and b match") {
		t.Errorf("two people who match each other: %v", err)
	}
	_, err := providers.New(&config.Providers{BaseURL: "http://127.0.0.1:1", IdPs: []config.MockIdP{{ID: "rnipp", ACRValues: []string{"eidas1"}}},
		CivilRegistry: &config.MockCivilRegistry{Secret: secret}})
	if err == nil || !strings.Contains(err.Error(), `"rnipp"`) {
		t.Errorf("an IdP named rnipp beside the registry: %v", err)
	}
}
