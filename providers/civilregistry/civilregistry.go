// Package civilregistry is the mock civil registry (RNIPP): a real HTTP
// service that the broker asks, after each IdP login, whether the pivot
// identity names a living person it knows. It knows every test identity
// of the mock IdPs, and gives a few of them, by their id in
// providers/identities.csv, an outcome of their own (see Special).
//
// Matching is on the pivot identity, as a real registry's is, tolerant of
// what IdPs get wrong in names but not in dates or codes: given and family
// names compare without case, accents, hyphens, apostrophes or repeated
// spaces ("JEAN PIERRE" finds "Jean-Pierre"); birth date, gender, birth
// country and, for a birth in France, birthplace compare exactly. The
// answer carries the registry's spelling, which the broker then passes
// on: an identity found through a loose match comes back corrected.
package civilregistry

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// FranceCOG is the COG code of France among birth countries.
const FranceCOG = "99100"

// Pivot is the identity the registry is asked about and answers with, in
// the broker's JSON.
type Pivot struct {
	GivenName    string `json:"given_name"`
	FamilyName   string `json:"family_name"`
	Birthdate    string `json:"birthdate"`
	Gender       string `json:"gender"`
	Birthplace   string `json:"birthplace"`
	Birthcountry string `json:"birthcountry"`
}

// Person is one test identity, by its id in the identities file.
type Person struct {
	ID    string
	Pivot Pivot
}

// Outcome is what the registry does for a special test identity.
type Outcome struct {
	// Status is "found", "not_found" (the person is left out of the
	// registry) or "deceased".
	Status string
	// GivenName and FamilyName, when set, are the registry's spelling:
	// the person is found, under these names.
	GivenName, FamilyName string
	// Slow answers "found" only after Options.SlowDelay, beyond the
	// broker's timeout: a registry outage for this one person.
	Slow bool
}

// Special are the test identities of providers/identities.csv whose
// registry outcome is not a plain "found". Every other identity is found
// as the IdPs describe it.
var Special = map[string]Outcome{
	"rnipp-nom-corrige": {Status: statusFound, GivenName: "Sophie Marie", FamilyName: "Bénard"},
	"rnipp-inconnu":     {Status: statusNotFound},
	"rnipp-decede":      {Status: statusDeceased},
	"rnipp-lent":        {Status: statusFound, Slow: true},
}

// Statuses of an answer.
const (
	statusFound    = "found"
	statusNotFound = "not_found"
	statusDeceased = "deceased"
)

// Options configure the mock.
type Options struct {
	// Path is where it is mounted, e.g. "/rnipp"; it serves Path/check.
	Path string
	// Secret is the bearer token callers must present.
	Secret string
	// SlowDelay is how long the slow identity waits (0: 5s).
	SlowDelay time.Duration
}

// maxRequest bounds a check's body: a pivot is a few hundred bytes.
const maxRequest = 16 << 10

// maxField bounds each claim, as the broker's validation does.
const maxField = 256

// record is the registry's entry for one person.
type record struct {
	id     string
	status string
	pivot  Pivot
	slow   bool
}

// Server is the mock registry's handler.
type Server struct {
	secret  []byte
	slow    time.Duration
	records map[string]*record
	// people is how many persons the registry holds (records has a
	// second key for a corrected one).
	people int
	mux    *http.ServeMux
}

// New builds the registry of people; two people who match each other are
// an error, since one of them could never be found as themselves.
func New(people []Person, o Options) (*Server, error) {
	if len(o.Secret) < 32 {
		return nil, errors.New("civil registry: the secret must be at least 32 characters")
	}
	if o.SlowDelay <= 0 {
		o.SlowDelay = 5 * time.Second
	}
	s := &Server{secret: []byte(o.Secret), slow: o.SlowDelay, records: map[string]*record{}, mux: http.NewServeMux()}
	for _, p := range people {
		out, special := Special[p.ID]
		if !special {
			out = Outcome{Status: statusFound}
		}
		if out.Status == statusNotFound {
			continue
		}
		rec := &record{id: p.ID, status: out.Status, pivot: p.Pivot, slow: out.Slow}
		if out.GivenName != "" {
			rec.pivot.GivenName, rec.pivot.FamilyName = out.GivenName, out.FamilyName
		}
		// A corrected person is found under the IdP's spelling and under
		// the registry's own.
		keys := []string{key(p.Pivot)}
		if k := key(rec.pivot); k != keys[0] {
			keys = append(keys, k)
		}
		for _, k := range keys {
			if other, dup := s.records[k]; dup {
				return nil, fmt.Errorf("civil registry: identities %s and %s match each other", other.id, p.ID)
			}
			s.records[k] = rec
		}
		s.people++
	}
	path := strings.TrimSuffix(o.Path, "/")
	s.mux.HandleFunc("POST "+path+"/check", s.check)
	s.mux.HandleFunc("GET "+path+"/{$}", s.index)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// answer is the registry's reply.
type answer struct {
	Status   string `json:"status"`
	Identity *Pivot `json:"identity,omitempty"`
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(token), s.secret) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "a valid bearer token is required"})
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequest))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "invalid_request", "error_description": fmt.Sprintf("the body is over %d bytes", maxRequest)})
		return
	}
	p, err := ParseRequest(raw)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	rec, found := s.records[key(p)]
	if !found {
		writeJSON(w, http.StatusOK, answer{Status: statusNotFound})
		return
	}
	if rec.slow {
		// Until the caller gives up, which a broker does at its timeout.
		t := time.NewTimer(s.slow)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	if rec.status == statusDeceased {
		writeJSON(w, http.StatusOK, answer{Status: statusDeceased})
		return
	}
	writeJSON(w, http.StatusOK, answer{Status: statusFound, Identity: &rec.pivot})
}

// index tells a tester what the special identities do.
func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	special := map[string]string{}
	for id, o := range Special {
		switch {
		case o.Slow:
			special[id] = fmt.Sprintf("found after %s (beyond the broker's timeout)", s.slow)
		case o.GivenName != "":
			special[id] = "found as " + o.GivenName + " " + o.FamilyName
		default:
			special[id] = o.Status
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"endpoint": "POST check with Authorization: Bearer (secret) and a JSON pivot identity",
		"people":   s.people,
		"special":  special,
	})
}

// ParseRequest reads a check's body: one JSON object with the pivot
// claims and nothing else. Its errors name the claim, never its value.
func ParseRequest(raw []byte) (Pivot, error) {
	var p Pivot
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Pivot{}, errors.New("the body must be a JSON object of the pivot claims (given_name, family_name, birthdate, gender, birthplace, birthcountry) and nothing else")
	}
	if dec.More() {
		return Pivot{}, errors.New("the body has data after its JSON object")
	}
	for _, f := range []struct{ name, v string }{
		{"given_name", p.GivenName}, {"family_name", p.FamilyName}, {"birthdate", p.Birthdate},
		{"gender", p.Gender}, {"birthplace", p.Birthplace}, {"birthcountry", p.Birthcountry},
	} {
		switch {
		case f.v == "" && f.name != "birthplace":
			return Pivot{}, fmt.Errorf("%s is required", f.name)
		case len(f.v) > maxField || !utf8.ValidString(f.v) || strings.ContainsFunc(f.v, unicode.IsControl):
			return Pivot{}, fmt.Errorf("%s has invalid characters or length", f.name)
		}
	}
	return p, nil
}

// key is what the registry matches on (see the package comment).
func key(p Pivot) string {
	place := ""
	if p.Birthcountry == FranceCOG {
		place = p.Birthplace
	}
	return strings.Join([]string{foldName(p.GivenName), foldName(p.FamilyName), p.Birthdate, p.Gender, place, p.Birthcountry}, "\x00")
}

// folds maps the accented letters of French (and neighbouring) names to
// plain ones; the table is small because the names are.
var folds = map[rune]string{
	'à': "a", 'á': "a", 'â': "a", 'ã': "a", 'ä': "a", 'å': "a", 'æ': "ae",
	'ç': "c", 'è': "e", 'é': "e", 'ê': "e", 'ë': "e",
	'ì': "i", 'í': "i", 'î': "i", 'ï': "i", 'ñ': "n",
	'ò': "o", 'ó': "o", 'ô': "o", 'õ': "o", 'ö': "o", 'ø': "o", 'œ': "oe",
	'ù': "u", 'ú': "u", 'û': "u", 'ü': "u", 'ý': "y", 'ÿ': "y", 'ß': "ss",
}

// foldName lowers a name, strips its accents and makes every run of
// spaces, hyphens and apostrophes one space.
func foldName(s string) string {
	var b strings.Builder
	gap := false
	for _, r := range strings.ToLower(s) {
		if r == '-' || r == '\'' || r == '’' || unicode.IsSpace(r) {
			gap = b.Len() > 0
			continue
		}
		if gap {
			b.WriteByte(' ')
			gap = false
		}
		if f, ok := folds[r]; ok {
			b.WriteString(f)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// writeJSON answers v, always one of this package's plain values.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
