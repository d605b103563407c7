package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// `sesame check-config` on the three teaching samples prints every
// problem on its own line, file:line:column first, with a suggestion,
// never a Go type name, and fails; on a good file it prints the summary.
func TestCheckConfig(t *testing.T) {
	const dir = "../../config/testdata/broken/"
	position := regexp.MustCompile(`^` + regexp.QuoteMeta(dir) + `[a-z-]+\.yaml:\d+:\d+: `)
	for _, tc := range []struct {
		file  string
		count int
		wants []string
	}{
		{"typo.yaml", 7, []string{
			"typo.yaml:17:7: broker.platforms[0] (std): identity_provider: unknown field, did you mean identity_providers?",
			"typo.yaml:26:11: broker.platforms[0] (std).service_providers[1] (mairie): redirect_uri: unknown field, did you mean redirect_uris?",
			"typo.yaml:27:38: broker.platforms[0] (std).service_providers[1] (mairie): post_logout_redirect_uris: expected a list of strings, got a single value",
		}},
		{"missing-secret.yaml", 4, []string{
			"missing-secret.yaml:3:1: broker: sub_secret: is missing",
			"missing-secret.yaml:9:7: broker.identity_providers[0] (impots): client_secret: is missing",
			"missing-secret.yaml:21:11: broker.platforms[0] (std).service_providers[1] (mairie): client_secret: must be at least 32 characters",
		}},
		{"unknown-idp.yaml", 4, []string{
			`unknown-idp.yaml:26:7: broker.platforms[0] (std): identity_providers: unknown IdP "impot": did you mean "impots"? (known: impots, ameli)`,
			`unknown-idp.yaml:33:11: broker.platforms[0] (std).service_providers[0] (demo-sp): idp_hints: unknown IdP "amelie": did you mean "ameli"?`,
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var out bytes.Buffer
			err := checkConfig([]string{dir + tc.file}, &out)
			if want := fmt.Sprintf("%s%s: %d problem(s)", dir, tc.file, tc.count); err == nil || err.Error() != want {
				t.Fatalf("err = %v, want %q", err, want)
			}
			text := out.String()
			for _, w := range tc.wants {
				if !strings.Contains(text, "\n"+dir+w) && !strings.HasPrefix(text, dir+w) {
					t.Errorf("output lacks %q:\n%s", w, text)
				}
			}
			lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
			for _, l := range lines {
				if !position.MatchString(l) {
					t.Errorf("line without file:line:column: %q", l)
				}
				if rest := strings.TrimPrefix(l, dir); strings.Contains(rest, "config.") || strings.Contains(rest, "type ") {
					t.Errorf("names a Go type: %q", l)
				}
			}
			if len(lines) != tc.count {
				t.Errorf("%d lines, want %d:\n%s", len(lines), tc.count, text)
			}
		})
	}
	var out bytes.Buffer
	if err := checkConfig([]string{"../../config/dev.yaml"}, &out); err != nil || !strings.HasPrefix(out.String(), "../../config/dev.yaml: OK: [broker (2 platform(s)") {
		t.Fatalf("dev.yaml: %v, %q", err, out.String())
	}
}
