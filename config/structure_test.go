package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// problemLines runs Parse and returns its problems as check-config
// prints them.
func problemLines(t *testing.T, name string, raw []byte) []string {
	t.Helper()
	_, err := Parse(name, raw)
	var p *Problems
	if !errors.As(err, &p) {
		t.Fatalf("%s: want *Problems, got %v", name, err)
	}
	return p.Lines()
}

// noGoTypes fails when a line names a Go type, as the decoder's own
// messages do ("not found in type config.SP").
func noGoTypes(t *testing.T, lines []string) {
	t.Helper()
	for _, l := range lines {
		if strings.Contains(l, "config.") || strings.Contains(l, "type ") || strings.Contains(l, "[]string") || strings.Contains(l, "struct {") {
			t.Errorf("names a Go type: %s", l)
		}
	}
}

// wantLine is one problem check-config must print: its file:line:column
// prefix and what it must say.
type wantLine struct{ at, says string }

func checkLines(t *testing.T, lines []string, wants []wantLine) {
	t.Helper()
	for _, w := range wants {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, w.at+": ") && strings.Contains(l, w.says) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no problem at %s saying %q in:\n%s", w.at, w.says, strings.Join(lines, "\n"))
		}
	}
	noGoTypes(t, lines)
}

// The three teaching samples under testdata/broken: every problem, with
// its line, its entry and a suggestion, in one run.
func TestBrokenFiles(t *testing.T) {
	for _, tc := range []struct {
		file  string
		count int
		wants []wantLine
	}{
		{"typo.yaml", 7, []wantLine{
			{"12:16", `broker.identity_providers[0] (impots): timeout: "5" is not a duration like 30s or 10m`},
			{"17:7", "broker.platforms[0] (std): identity_provider: unknown field, did you mean identity_providers?"},
			{"14:7", "broker.platforms[0] (std): identity_providers: is missing: list at least one IdP id (known: impots)"},
			{"26:11", "broker.platforms[0] (std).service_providers[1] (mairie): redirect_uri: unknown field, did you mean redirect_uris?"},
			{"23:11", "broker.platforms[0] (std).service_providers[1] (mairie): redirect_uris: is missing"},
			{"27:38", "service_providers[1] (mairie): post_logout_redirect_uris: expected a list of strings, got a single value"},
			{"28:29", `service_providers[1] (mairie): identity_consent: expected true or false, got "peut-être"`},
		}},
		{"missing-secret.yaml", 4, []wantLine{
			{"3:1", "broker: sub_secret: is missing"},
			{"9:7", "broker.identity_providers[0] (impots): client_secret: is missing"},
			{"17:11", "broker.platforms[0] (std).service_providers[0] (demo-sp): client_secret: is missing"},
			{"21:11", "broker.platforms[0] (std).service_providers[1] (mairie): client_secret: must be at least 32 characters"},
		}},
		{"unknown-idp.yaml", 4, []wantLine{
			{"26:7", `broker.platforms[0] (std): identity_providers: unknown IdP "impot": did you mean "impots"? (known: impots, ameli)`},
			{"32:11", `service_providers[0] (demo-sp): scopes: "dgfip_rfl" is neither an identity scope nor in broker.data_scopes; did you mean "dgfip_rfr"?`},
			{"33:11", `service_providers[0] (demo-sp): idp_hints: unknown IdP "amelie": did you mean "ameli"?`},
			{"38:11", `data_providers[0] (dgfp): scopes: "dgfip_rfr" is served by "dgfip" in broker.data_scopes, not by this provider: did you mean id "dgfip"?`},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := "testdata/broken/" + tc.file
			_, err := Load(path)
			var p *Problems
			if !errors.As(err, &p) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("want *Problems, got %v", err)
			}
			lines := p.Lines()
			if len(lines) != tc.count {
				t.Errorf("%d problems, want %d:\n%s", len(lines), tc.count, strings.Join(lines, "\n"))
			}
			for i := range tc.wants {
				tc.wants[i].at = path + ":" + tc.wants[i].at
			}
			checkLines(t, lines, tc.wants)
			// A missing secret is never "too short", and a short one never
			// shown.
			for _, l := range lines {
				if strings.Contains(l, "is missing") && strings.Contains(l, "must be at least") || strings.Contains(l, `"short"`) {
					t.Errorf("bad secret message: %s", l)
				}
			}
		})
	}
}

// The structure check: every unknown field and every value of the wrong
// shape, each at its line, in the validation's words.
func TestStructureProblems(t *testing.T) {
	for name, tc := range map[string]struct {
		edit  func(string) string
		wants []wantLine
	}{
		"unknown section": {func(y string) string { return y + "brokr: {}\n" }, []wantLine{
			{"x.yaml:23:1", "brokr: unknown field, did you mean broker?"}}},
		"nested field": {func(y string) string { return strings.Replace(y, `    url: ""`, `    urll: ""`, 1) }, []wantLine{
			{"x.yaml:4:5", "broker: redis.urll: unknown field, did you mean url?"}}},
		"nothing close": {func(y string) string { return strings.Replace(y, `    url: ""`, `    zzzzzz: ""`, 1) }, []wantLine{
			{"x.yaml:4:5", "broker: redis.zzzzzz: unknown field (known: url, addrs, master_name, username, password, db, timeout, tls_ca_file, tls)"}}},
		"case": {func(y string) string {
			return strings.Replace(y, "      client_id: sesame", "      Client_ID: sesame", 1)
		}, []wantLine{
			{"x.yaml:10:7", "broker.identity_providers[0] (idp): Client_ID: unknown field, did you mean client_id?"}}},
		"two typos": {func(y string) string {
			return strings.NewReplacer("      issuer: https://sesame.example", "      isuer: https://sesame.example", "          sector: a", "          setcor: a").Replace(y)
		}, []wantLine{
			{"x.yaml:16:7", "broker.platforms[0] (std): isuer: unknown field, did you mean issuer?"},
			{"x.yaml:21:11", "broker.platforms[0] (std).service_providers[0] (sp): setcor: unknown field, did you mean sector?"},
			{"x.yaml:19:11", "service_providers[0] (sp): sector: is missing"},
			{"x.yaml:14:7", "broker.platforms[0] (std): issuer: is missing"},
		}},
		"list as a string": {func(y string) string {
			return strings.Replace(y, `redirect_uris: ["https://sp.example/cb"]`, "redirect_uris: https://sp.example/cb", 1)
		}, []wantLine{{"x.yaml:22:26", "service_providers[0] (sp): redirect_uris: expected a list of strings, got a single value"}}},
		"not a number": {func(y string) string { return strings.Replace(y, `    url: ""`, "    db: three", 1) }, []wantLine{
			{"x.yaml:4:9", `broker: redis.db: expected a whole number, got "three"`}}},
		"list item of a list": {func(y string) string {
			return strings.Replace(y, `redirect_uris: ["https://sp.example/cb"]`, `redirect_uris: ["https://sp.example/cb", [x]]`, 1)
		}, []wantLine{{"x.yaml:22:52", "service_providers[0] (sp): redirect_uris[1]: expected a single value, got a list"}}},
		"section as a value": {func(y string) string { return y + "log: json\n" }, []wantLine{
			{"x.yaml:23:6", "log: expected a mapping of fields (format), got a single value"}}},
		"entries as a mapping": {func(y string) string {
			return strings.Replace(y, "      service_providers:\n        - client_id: sp", "      service_providers:\n          client_id: sp", 1)
		}, []wantLine{{"x.yaml:19:11", "broker.platforms[0] (std): service_providers: expected a list of entries, got a mapping"}}},
		"key twice": {func(y string) string {
			return strings.Replace(y, "      client_id: sesame\n", "      client_id: sesame\n      client_id: other\n", 1)
		}, []wantLine{
			{"x.yaml:11:7", "broker.identity_providers[0] (idp): client_id: is set twice (first at line 10)"}}},
		"unset variable": {func(y string) string { return strings.Replace(y, `    url: ""`, `    url: "${SESAME_TEST_UNSET}"`, 1) }, []wantLine{
			{"x.yaml:4:11", "broker: redis.url: environment variable SESAME_TEST_UNSET is not set (${SESAME_TEST_UNSET:-default} gives a default)"}}},
		"merge of a scalar": {func(y string) string { return strings.Replace(y, `    url: ""`, "    <<: 3", 1) }, []wantLine{
			{"x.yaml:4:9", "broker: redis.<<: a merge takes a mapping or a list of mappings"}}},
		"anchor in itself": {func(y string) string { return strings.Replace(y, "  redis:\n", "  redis: &r\n    <<: *r\n", 1) }, []wantLine{
			{"x.yaml:4:9", `broker: redis.<<: the anchor "r" contains itself`}}},
		"syntax": {func(y string) string { return y + "  - oops: [\n" }, []wantLine{
			{"x.yaml:2", "did not find expected key"}}},
	} {
		t.Run(name, func(t *testing.T) {
			os.Unsetenv("SESAME_TEST_UNSET")
			checkLines(t, problemLines(t, "x.yaml", []byte(tc.edit(minimal))), tc.wants)
		})
	}
}

// What the structure check refused is not reported again by validation
// ("redirect_uris: is missing" after "expected a list").
func TestStructureProblemNotRepeated(t *testing.T) {
	lines := problemLines(t, "x.yaml", []byte(strings.Replace(minimal, `redirect_uris: ["https://sp.example/cb"]`, "redirect_uris: {a: b}", 1)))
	if len(lines) != 1 || !strings.Contains(lines[0], "redirect_uris: expected a list of strings, got a mapping") {
		t.Fatalf("want the one structure problem, got:\n%s", strings.Join(lines, "\n"))
	}
}

// A list item the decoder drops (not an entry) shifts the indexes of the
// next ones; validation problems still point at their own lines.
func TestDroppedItemKeepsLines(t *testing.T) {
	y := strings.Replace(minimal, "      service_providers:\n", "      service_providers:\n        - oops\n", 1)
	y = strings.Replace(y, "          sector: a\n", "", 1)
	checkLines(t, problemLines(t, "x.yaml", []byte(y)), []wantLine{
		{"x.yaml:19:11", "broker.platforms[0] (std).service_providers[0]: expected a mapping of fields"},
		{"x.yaml:20:11", "broker.platforms[0] (std).service_providers[0] (sp): sector: is missing"},
	})
}

// Validation problems carry the line of their field, or of their entry
// when the field is absent; a value taken from a long ${VAR} or one with
// line breaks does not shift the lines after it.
func TestValidationLines(t *testing.T) {
	t.Setenv("SESAME_TEST_MULTILINE", "line one\nline two\nline three and more")
	y := strings.NewReplacer(
		`  sub_secret: "0123456789abcdef0123456789abcdef"`, "  theme: \"${SESAME_TEST_MULTILINE}\"\n  sub_secret: \"0123456789abcdef0123456789abcdef\"",
		"      acr_values: [eidas1]", "      acr_values: [eidas9]",
	).Replace(minimal)
	checkLines(t, problemLines(t, "x.yaml", []byte(y)), []wantLine{
		{"x.yaml:5:3", "broker: theme: "},
		{"x.yaml:13:7", `broker.identity_providers[0] (idp): acr_values: "eidas9": expected one of eidas1, eidas2, eidas3`},
	})
}

// Anchors, aliases and merge keys are YAML the decoder takes: no
// problem, and the merged values are there.
func TestStructureAcceptsAnchorsAndMerges(t *testing.T) {
	y := strings.Replace(minimal, "        - client_id: sp\n", `        - &sp
          client_id: sp
          client_secret: "sp-secret-0123456789abcdef0123456789"
          sector: a
          redirect_uris: ["https://sp.example/cb"]
        - <<: *sp
          client_id: sp2
        - client_id: sp3
`, 1)
	c, err := Parse("x.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	sps := c.Broker.Platforms[0].ServiceProviders
	if len(sps) != 3 || sps[1].ClientID != "sp2" || sps[1].Sector != "a" || sps[2].ClientID != "sp3" {
		t.Fatalf("service providers = %+v", sps)
	}
}

// Problems of a config built in code have no line, and print as before.
func TestProblemsWithoutLines(t *testing.T) {
	c := &Config{File: "code", Log: Log{Format: "xml"}, DemoSP: &DemoSP{}}
	err := c.Validate()
	var p *Problems
	if !errors.As(err, &p) {
		t.Fatal(err)
	}
	if !strings.Contains(err.Error(), "\n  - log: format: \"xml\": expected text or json") {
		t.Errorf("Error() = %s", err)
	}
	if l := p.Lines(); !strings.Contains(strings.Join(l, "\n"), "code: demo_sp: client_id: is missing") {
		t.Errorf("Lines() = %q", l)
	}
}

func TestNearest(t *testing.T) {
	known := []string{"redirect_uris", "post_logout_redirect_uris", "client_id", "client_secret", "scopes", "id", "impots", "ameli"}
	for word, want := range map[string]string{
		"redirect_uri":  "redirect_uris",
		"redirecturis":  "redirect_uris",
		"redirect-uris": "redirect_uris",
		"redirect":      "redirect_uris",
		"client_secert": "client_secret",
		"CLIENT_ID":     "client_id",
		"scope":         "scopes",
		"ids":           "id",
		"impot":         "impots",
		"amelie":        "ameli",
		"xyz":           "",
		"jwks":          "",
		"":              "",
		"name":          "",
	} {
		if got := nearest(word, known); got != want {
			t.Errorf("nearest(%q) = %q, want %q", word, got, want)
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ entry, field, want string }{
		{"broker.platforms[0] (std).service_providers[1] (demo-sp)", "redirect_uris", "broker.platforms[0].service_providers[1].redirect_uris"},
		{"broker.platforms[0] (a.b (c)).data_providers[0] ()", "client_secret", "broker.platforms[0].data_providers[0].client_secret"},
		{"broker", "redis.url", "broker.redis.url"},
		{"broker", "trusted_proxies[2]", "broker.trusted_proxies[2]"},
		{"dashboard.identity_providers[0]", "id/name", "dashboard.identity_providers[0]"},
		{"dashboard", "(section)", "dashboard"},
		{"(file)", "broker/providers/demo_sp/dashboard", ""},
		{"providers.eidas_node", `connector_response_urls["*"]`, `providers.eidas_node.connector_response_urls["*"]`},
	} {
		if got := canonical(tc.entry, tc.field); got != tc.want {
			t.Errorf("canonical(%q, %q) = %q, want %q", tc.entry, tc.field, got, tc.want)
		}
	}
	for path, want := range map[string]string{
		"a.b[0].c": "a.b[0]", "a.b[0]": "a.b", `a["x.y"]`: "a", "a": "", "": "",
	} {
		if got := parentPath(path); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", path, got, want)
		}
	}
}

// structureOnly runs the structure check and the strict decoder on raw,
// without ${VAR} expansion.
func structureOnly(raw []byte) (found []Problem, parsed bool, decodeErr error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&doc); err != nil {
		return nil, false, nil
	}
	ps := newPositions(&lineMap{raw: raw, exp: raw})
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		checkStructure(doc.Content[0], reflect.TypeFor[Config](), ps)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	err := dec.Decode(&Config{})
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return ps.found, true, err
}

var goType = regexp.MustCompile(`config\.|type |\[\]string|struct \{`)

// FuzzStructure: any YAML is walked without a panic; what the walk finds
// nothing wrong with decodes, what decodes gives the walk nothing to say,
// and no message names a Go type.
func FuzzStructure(f *testing.F) {
	for _, file := range []string{"dev.yaml", "production.example.yaml", "testdata/broken/typo.yaml", "testdata/broken/missing-secret.yaml", "testdata/broken/unknown-idp.yaml"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("broker: &b\n  redis: {<<: [*b]}\n"))
	f.Add([]byte("a: &x [*x, *x]\nbroker: {platforms: [~, 3, {id: x, <<: {listen: 1}}]}"))
	f.Add([]byte("? [a]\n: 1\nlog: {format: !!binary aGk=}\n"))
	f.Add([]byte("broker:\n  platforms:\n    - service_providers: [{active: yes, redirect_uris: {a: 1}}]\n      session_ttl: 5\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		found, parsed, err := structureOnly(raw)
		if !parsed {
			return
		}
		// An anchor used many times is walked once, but decoded at each
		// use: the decoder may find it excessive where the walk does not
		// (Parse then reports the decoder's words).
		if len(found) == 0 && err != nil && !strings.Contains(err.Error(), "excessive aliasing") {
			t.Fatalf("the walk found nothing, the decoder refused: %v", err)
		}
		if len(found) > 0 && err == nil {
			t.Fatalf("the decoder took it, the walk refused: %v", found)
		}
		for _, q := range found {
			if goType.MatchString(q.String()) {
				t.Fatalf("names a Go type: %s", q)
			}
		}
	})
}

// An alias bomb made of merges stops the walk at once, as it stops the
// decoder.
func TestStructureAliasBomb(t *testing.T) {
	doc := "broker:\n  platforms:\n    - &p0 {id: x}\n"
	for i := 1; i < 12; i++ {
		refs := strings.Repeat(fmt.Sprintf("*p%d, ", i-1), 9)
		doc += fmt.Sprintf("    - &p%d {<<: [%s]}\n", i, strings.TrimSuffix(refs, ", "))
	}
	start := time.Now()
	checkLines(t, problemLines(t, "bomb.yaml", []byte(doc)), []wantLine{{"bomb.yaml:3:7", "excessive aliasing"}})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// An unset ${VAR} is reported in its field, once: not again as the
// field's "is missing".
func TestUnsetVariableOnce(t *testing.T) {
	os.Unsetenv("SESAME_TEST_UNSET")
	y := strings.Replace(minimal, `"0123456789abcdef0123456789abcdef"`, `"${SESAME_TEST_UNSET}"`, 1)
	lines := problemLines(t, "x.yaml", []byte(y))
	want := "x.yaml:5:16: broker: sub_secret: environment variable SESAME_TEST_UNSET is not set"
	if len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
		t.Fatalf("want only %q, got:\n%s", want, strings.Join(lines, "\n"))
	}
}
