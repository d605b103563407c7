package dataprovider

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzAccessToken: whatever the Authorization header and query, the
// reader either refuses with 400 or 401 and a description that can go
// in WWW-Authenticate, or returns a well-formed token of a known scheme,
// never one that came in the query string.
func FuzzAccessToken(f *testing.F) {
	for _, seed := range [][2]string{
		{"Bearer abc.def-ghi_jkl~mno+pqr/stu==", ""},
		{"DPoP abc", ""},
		{"bearer   abc  ", ""},
		{"Bearer", ""},
		{"Bearer a b", ""},
		{"Basic dXNlcjpwYXNz", ""},
		{"", "access_token=abc"},
		{"Bearer abc", "x=1&access_token="},
		{"Bearer =abc", ""},
		{"Bearer abc\x00", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, auth, query string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/x", RawQuery: query}, Header: http.Header{}}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		tok, scheme, e := accessToken(r)
		if e != nil {
			if e.status != http.StatusBadRequest && e.status != http.StatusUnauthorized {
				t.Fatalf("status %d", e.status)
			}
			for _, c := range e.desc {
				if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
					t.Fatalf("description %q cannot go in WWW-Authenticate", e.desc)
				}
			}
			return
		}
		if r.URL.Query().Has("access_token") {
			t.Fatal("a token in the query string was accepted")
		}
		if scheme != schemeBearer && scheme != schemeDPoP {
			t.Fatalf("scheme %q", scheme)
		}
		if tok == "" || len(tok) > maxToken || !tokenPattern.MatchString(tok) || strings.Contains(tok, " ") {
			t.Fatalf("token %q accepted", tok)
		}
	})
}

// FuzzNormalize: a normalised name is stable, upper case, and has single
// spaces between words and none around them.
func FuzzNormalize(f *testing.F) {
	for _, seed := range []string{"Lœuvre", "d'Harcourt", "Martin-Dupont", "  García  López ", "Müller", "Æsa ßtraße", "e\u0301lise", "İstanbul", "-", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := normalize(s)
		if normalize(n) != n {
			t.Fatalf("normalize(%q) = %q, normalised again %q", s, n, normalize(n))
		}
		if strings.ToUpper(n) != n || strings.TrimSpace(n) != n || strings.Contains(n, "  ") {
			t.Fatalf("normalize(%q) = %q", s, n)
		}
	})
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"Lœuvre":               "LOEUVRE",
		"d'Harcourt":           "D HARCOURT",
		"D HARCOURT":           "D HARCOURT",
		"Martin-Dupont":        "MARTIN DUPONT",
		"  García  López ":     "GARCIA LOPEZ",
		"Müller":               "MULLER",
		"Hélène Françoise":     "HELENE FRANCOISE",
		"e\u0301lise":          "ELISE",
		"Jean-Pierre  Marie":   "JEAN PIERRE MARIE",
		"de Montmorency-Laval": "DE MONTMORENCY LAVAL",
		"O'Neill":              "O NEILL",
		"Æsa Straße":           "AESA STRASSE",
		"...":                  "",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}
