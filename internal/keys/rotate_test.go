package keys

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// at returns the set evaluated as if the clock read t.
func at(s *Set, t time.Time) *Set {
	c := *s
	c.now = func() time.Time { return t }
	return &c
}

func kids(ks []Key) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.KeyID)
	}
	return out
}

func signer(t *testing.T, s *Set, alg jose.SignatureAlgorithm, when time.Time) string {
	t.Helper()
	k, ok := s.SigningKeyAt(alg, when)
	if !ok {
		t.Fatalf("no %s key at %s", alg, when)
	}
	return k.KeyID
}

func manifest(t *testing.T, dir string) *Manifest {
	t.Helper()
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func byState(m *Manifest, alg string, st State) []string {
	var out []string
	for _, k := range m.Keys {
		if k.Alg == alg && k.State == st {
			out = append(out, k.KeyID)
		}
	}
	return out
}

// A key's life through init and three rotations, read at each step as the
// broker reads it: published as next before it signs, signing from its
// activation time on whatever the manifest says, published while retired,
// gone after remove_at, and its file deleted.
func TestRotateLifecycle(t *testing.T) {
	dir := t.TempDir()
	// LoadDir skips keys past remove_at by the real clock: start now.
	t0 := time.Now().UTC().Truncate(time.Second)
	if _, err := Init(dir, []jose.SignatureAlgorithm{jose.ES256, jose.RS256}, t0); err != nil {
		t.Fatal(err)
	}
	m := manifest(t, dir)
	a := byState(m, "ES256", Current)
	if len(a) != 1 || len(byState(m, "RS256", Current)) != 1 {
		t.Fatalf("init: %+v", m.Keys)
	}
	if fi, err := os.Stat(filepath.Join(dir, m.Keys[0].File)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}

	opts := RotateOptions{Lead: 10 * time.Minute, Keep: time.Hour}
	opts.Now = t0.Add(time.Minute)
	if _, err := Rotate(dir, opts); err != nil {
		t.Fatal(err)
	}
	m = manifest(t, dir)
	b := byState(m, "ES256", Next)
	if len(b) != 1 || m.Keys[slices.IndexFunc(m.Keys, func(k ManifestKey) bool { return k.KeyID == b[0] })].ActivateAt != t0.Add(11*time.Minute) {
		t.Fatalf("rotate 1: %+v", m.Keys)
	}
	s, err := LoadDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Before its time the next key is published and does not sign; from
	// its time on it signs, though the manifest still says next.
	if got := signer(t, s, jose.ES256, t0.Add(11*time.Minute-time.Second)); got != a[0] {
		t.Fatalf("before activation %s signs, want %s", got, a[0])
	}
	if !slices.Contains(kids(s.PublishedAt(t0.Add(2*time.Minute))), b[0]) {
		t.Fatal("next key not published")
	}
	if got := signer(t, s, jose.ES256, t0.Add(11*time.Minute)); got != b[0] {
		t.Fatalf("at activation %s signs, want %s", got, b[0])
	}

	// Too early: a second rotation leaves the next key alone.
	opts.Now = t0.Add(5 * time.Minute)
	report, err := Rotate(dir, opts)
	if err != nil || !strings.Contains(strings.Join(report, "\n"), "nothing to do yet") {
		t.Fatalf("early rotate: %v %v", report, err)
	}
	if got := manifest(t, dir); len(got.Keys) != 4 {
		t.Fatalf("early rotate changed the manifest: %+v", got.Keys)
	}

	// After activation: A retired until activation + keep, B current, C next.
	opts.Now = t0.Add(20 * time.Minute)
	if _, err := Rotate(dir, opts); err != nil {
		t.Fatal(err)
	}
	m = manifest(t, dir)
	if got := byState(m, "ES256", Retired); !slices.Equal(got, a) {
		t.Fatalf("retired %v, want %v", got, a)
	}
	if got := byState(m, "ES256", Current); !slices.Equal(got, b) {
		t.Fatalf("current %v, want %v", got, b)
	}
	c := byState(m, "ES256", Next)
	ka := m.Keys[slices.IndexFunc(m.Keys, func(k ManifestKey) bool { return k.KeyID == a[0] })]
	if !ka.RemoveAt.Equal(t0.Add(11*time.Minute+time.Hour)) || !ka.RetiredAt.Equal(t0.Add(11*time.Minute)) {
		t.Fatalf("retired key times: %+v", ka)
	}
	s, err = LoadDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pub := kids(s.PublishedAt(t0.Add(time.Hour))); !slices.Contains(pub, a[0]) || !slices.Contains(pub, c[0]) {
		t.Fatalf("published %v: want the retired %s and the next %s", pub, a[0], c[0])
	}
	if pub := kids(s.PublishedAt(t0.Add(11*time.Minute + time.Hour))); slices.Contains(pub, a[0]) {
		t.Fatalf("retired key still published after remove_at: %v", pub)
	}

	// Past A's remove_at: A leaves the manifest and its file goes.
	opts.Now = t0.Add(2 * time.Hour)
	if _, err := Rotate(dir, opts); err != nil {
		t.Fatal(err)
	}
	m = manifest(t, dir)
	if slices.ContainsFunc(m.Keys, func(k ManifestKey) bool { return k.KeyID == a[0] }) {
		t.Fatalf("removed key still in the manifest: %+v", m.Keys)
	}
	if _, err := os.Stat(filepath.Join(dir, ka.File)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("removed key's file: %v", err)
	}
	if got := byState(m, "ES256", Current); !slices.Equal(got, c) {
		t.Fatalf("current %v, want %v", got, c)
	}
}

// The lead asked for is never cut short by rounding the times written:
// the bug was a truncated "now" making a 2s lead 1.x s.
func TestRotateLeadNeverShorter(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if _, err := Init(dir, []jose.SignatureAlgorithm{jose.ES256}, t0); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute + 900*time.Millisecond)
	if _, err := Rotate(dir, RotateOptions{Lead: 2 * time.Second, Now: now}); err != nil {
		t.Fatal(err)
	}
	for _, k := range manifest(t, dir).Keys {
		if k.State == Next && k.ActivateAt.Sub(now) < 2*time.Second {
			t.Fatalf("next key signs %s after the rotation, asked for a 2s lead", k.ActivateAt.Sub(now))
		}
	}
}

// A set signs with the key its clock selects, and the JWS verifies with
// the published key of the kid in its header.
func TestSetSignsWithKeyOfTheMoment(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Hour).UTC()
	if _, err := Init(dir, []jose.SignatureAlgorithm{jose.ES256, jose.RS256}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := Rotate(dir, RotateOptions{Lead: time.Minute, Now: t0}); err != nil {
		t.Fatal(err)
	}
	s, err := LoadDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.RS256} {
		want := signer(t, s, alg, time.Now())
		raw, err := s.SignJWT(alg, "", jwt.Claims{Subject: "x"})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{alg})
		if err != nil {
			t.Fatal(err)
		}
		if kid := tok.Headers[0].KeyID; kid != want {
			t.Fatalf("%s signed by %s, want the activated next key %s", alg, kid, want)
		}
		var c jwt.Claims
		if err := tok.Claims(s.PublicJWKS(), &c); err != nil || c.Subject != "x" {
			t.Fatalf("%s: verify against the JWKS: %v", alg, err)
		}
	}
	if got := s.Algorithms(); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("algorithms %v", got)
	}
	for _, k := range s.PublicJWKS().Keys {
		if !k.IsPublic() {
			t.Fatalf("private key published: %s", k.KeyID)
		}
	}
}

func writeManifest(t *testing.T, dir string, m any) {
	t.Helper()
	raw, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Every structural problem is reported at once, each naming its key and
// field, and a key file that does not match the manifest is refused.
func TestManifestProblems(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, []jose.SignatureAlgorithm{jose.ES256}, time.Now()); err != nil {
		t.Fatal(err)
	}
	good := manifest(t, dir).Keys[0]
	other := good
	other.KeyID = "other"
	writeManifest(t, dir, map[string]any{"version": 1, "keys": []any{
		good, other,
		map[string]any{"kid": "n", "alg": "ES256", "state": "next", "file": "n.json"},
		map[string]any{"kid": "r", "alg": "ES384", "state": "retired", "file": "../r.json"},
		map[string]any{"kid": "s", "alg": "RS256", "state": "nxt", "file": "s.json", "hsm_label": "s"},
		map[string]any{"kid": "t", "alg": "RS256", "state": "current"},
	}})
	_, err := ReadManifest(dir)
	var me *ManifestError
	if !errors.As(err, &me) {
		t.Fatalf("err %v", err)
	}
	all := strings.Join(me.Problems, "\n")
	for _, want := range []string{
		"alg ES256: 2 current keys",
		"keys[2] (n): activate_at: is required",
		`keys[3] (r): alg: "ES384"`,
		`keys[3] (r): file: "../r.json": expected a plain file name`,
		"keys[3] (r): remove_at: is required",
		`keys[4] (s): state: "nxt"`,
		"keys[4] (s): set file or hsm_label, not both",
		"keys[5] (t): file or hsm_label is required",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing problem %q in:\n%s", want, all)
		}
	}

	// A structurally fine manifest whose file holds another key.
	writeManifest(t, dir, map[string]any{"version": 1, "keys": []any{other}})
	probs := CheckDir(dir)
	if len(probs) != 1 || !strings.Contains(probs[0], `the manifest says kid "other"`) {
		t.Fatalf("CheckDir: %v", probs)
	}
	if _, err := LoadDir(dir, nil); err == nil || !strings.Contains(err.Error(), `kid "other"`) {
		t.Fatalf("LoadDir: %v", err)
	}
	// An unknown field is an error, not a silently ignored time.
	writeManifest(t, dir, map[string]any{"version": 1, "keys": []any{map[string]any{
		"kid": good.KeyID, "alg": "ES256", "state": "current", "file": good.File, "activate": "2026-01-01T00:00:00Z"}}})
	if _, err := ReadManifest(dir); err == nil || !strings.Contains(err.Error(), `unknown field "activate"`) {
		t.Fatalf("unknown field: %v", err)
	}
	// An HSM key with no HSM.
	writeManifest(t, dir, map[string]any{"version": 1, "keys": []any{good,
		map[string]any{"kid": "h", "alg": "RS256", "state": "current", "hsm_label": "h"}}})
	if _, err := LoadDir(dir, nil); err == nil || !strings.Contains(err.Error(), "no hsm section") {
		t.Fatalf("HSM key without HSM: %v", err)
	}
}

// A reload that fails, or that the check refuses, keeps the set in use;
// one that succeeds replaces it whole.
func TestRingReload(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, []jose.SignatureAlgorithm{jose.ES256}, time.Now()); err != nil {
		t.Fatal(err)
	}
	needRS := false
	check := func(s *Set) error {
		if needRS && !s.Has(jose.RS256) {
			return errors.New("no RS256")
		}
		return nil
	}
	r, err := NewRing(func() (*Set, error) { return LoadDir(dir, nil) }, check)
	if err != nil {
		t.Fatal(err)
	}
	first := r.PublicJWKS().Keys[0].KeyID
	raw, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Reload(); err == nil {
		t.Fatal("reload of a broken manifest succeeded")
	}
	if got := r.PublicJWKS().Keys[0].KeyID; got != first {
		t.Fatalf("after a failed reload the JWKS has %s, want %s", got, first)
	}
	_ = os.WriteFile(filepath.Join(dir, ManifestFile), raw, 0o600)
	if _, err := Rotate(dir, RotateOptions{Lead: time.Second, Now: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	needRS = true
	if _, _, err := r.Reload(); err == nil || len(r.PublicJWKS().Keys) != 1 {
		t.Fatalf("refused set went live: %v, %d keys", err, len(r.PublicJWKS().Keys))
	}
	needRS = false
	if _, cur, err := r.Reload(); err != nil || len(cur.Keys()) != 2 || len(r.PublicJWKS().Keys) != 2 {
		t.Fatalf("reload: %v", err)
	}
}
