package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ManifestFile is the name of a key directory's manifest.
const ManifestFile = "manifest.json"

// ManifestVersion is the manifest format this package writes and reads.
const ManifestVersion = 1

// Manifest lists a key directory's keys with their states and times. The
// states come from here, never from file order or file times, so that
// every replica reading the directory agrees on them.
type Manifest struct {
	Version int           `json:"version"`
	Keys    []ManifestKey `json:"keys"`
}

// ManifestKey is one key of a manifest.
type ManifestKey struct {
	KeyID string `json:"kid"`
	Alg   string `json:"alg"`
	State State  `json:"state"`
	// File is the key's private JWK set (one key), named relative to the
	// directory; HSMLabel instead names a key pair in the platform's HSM.
	File     string `json:"file,omitempty"`
	HSMLabel string `json:"hsm_label,omitempty"`
	// CreatedAt is when the key was made, for the operator.
	CreatedAt time.Time `json:"created_at,omitzero"`
	// ActivateAt is when a next key starts signing (required for next;
	// for current, when it started).
	ActivateAt time.Time `json:"activate_at,omitzero"`
	// RetiredAt is when a retired key stopped signing, for the operator.
	RetiredAt time.Time `json:"retired_at,omitzero"`
	// RemoveAt is when a retired key leaves the published set (required
	// for retired).
	RemoveAt time.Time `json:"remove_at,omitzero"`
}

// ManifestError lists every problem of a key directory, so that an
// operator (and check-config) sees them all at once.
type ManifestError struct {
	Path     string
	Problems []string
}

func (e *ManifestError) Error() string {
	return fmt.Sprintf("keys: %s: %s", e.Path, strings.Join(e.Problems, "; "))
}

// ReadManifest reads and checks the manifest of dir (structure only: the
// key files are read by LoadDir and CheckDir). Unknown fields are errors,
// so that a typo never silently drops a time.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	m := &Manifest{}
	if err := dec.Decode(m); err != nil {
		return nil, &ManifestError{Path: path, Problems: []string{"not a key manifest: " + err.Error()}}
	}
	if probs := m.problems(); len(probs) > 0 {
		return nil, &ManifestError{Path: path, Problems: probs}
	}
	return m, nil
}

// problems checks the manifest's structure: unique kids, known states and
// algorithms, the times each state needs, one current and at most one
// next key per algorithm, and file names that stay inside the directory.
func (m *Manifest) problems() []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if m.Version != ManifestVersion {
		add("version: %d: expected %d", m.Version, ManifestVersion)
	}
	if len(m.Keys) == 0 {
		add("keys: the manifest lists no key")
	}
	kids, labels := map[string]bool{}, map[string]bool{}
	current := map[string][]string{}
	next := map[string][]string{}
	for i, k := range m.Keys {
		entry := fmt.Sprintf("keys[%d] (%s)", i, k.KeyID)
		switch {
		case k.KeyID == "":
			add("%s: kid: is required", entry)
		case kids[k.KeyID]:
			add("%s: kid: duplicate kid %q", entry, k.KeyID)
		}
		kids[k.KeyID] = true
		if k.HSMLabel != "" && labels[k.HSMLabel] {
			add("%s: hsm_label: %q is used by another key", entry, k.HSMLabel)
		}
		labels[k.HSMLabel] = true
		switch jose.SignatureAlgorithm(k.Alg) {
		case jose.ES256, jose.RS256, jose.PS256:
		default:
			add("%s: alg: %q: expected ES256, RS256 or PS256", entry, k.Alg)
		}
		switch {
		case k.File == "" && k.HSMLabel == "":
			add("%s: file or hsm_label is required", entry)
		case k.File != "" && k.HSMLabel != "":
			add("%s: set file or hsm_label, not both", entry)
		case k.File != "" && (filepath.Base(k.File) != k.File || strings.HasPrefix(k.File, ".")):
			add("%s: file: %q: expected a plain file name inside the key directory", entry, k.File)
		}
		switch k.State {
		case Current:
			current[k.Alg] = append(current[k.Alg], k.KeyID)
		case Next:
			next[k.Alg] = append(next[k.Alg], k.KeyID)
			if k.ActivateAt.IsZero() {
				add("%s: activate_at: is required for a next key (when it starts signing)", entry)
			}
		case Retired:
			if k.RemoveAt.IsZero() {
				add("%s: remove_at: is required for a retired key (when it leaves the JWKS)", entry)
			}
		default:
			add("%s: state: %q: expected next, current or retired", entry, k.State)
		}
	}
	for alg, kids := range current {
		if len(kids) > 1 {
			add("alg %s: %d current keys (%s): one current key per algorithm", alg, len(kids), strings.Join(kids, ", "))
		}
	}
	for alg, kids := range next {
		if len(kids) > 1 {
			add("alg %s: %d next keys (%s): at most one next key per algorithm", alg, len(kids), strings.Join(kids, ", "))
		}
	}
	if len(current) == 0 && len(m.Keys) > 0 {
		add("keys: no current key: at least one key must sign")
	}
	return out
}

// HasHSMKeys reports whether a key of the manifest is held by an HSM.
func (m *Manifest) HasHSMKeys() bool {
	for _, k := range m.Keys {
		if k.HSMLabel != "" {
			return true
		}
	}
	return false
}

// LoadDir loads a key directory: its manifest, then each key, from its
// file or from hsm (nil when the platform has none). Retired keys past
// their removal time are skipped, since nothing uses them any more.
func LoadDir(dir string, hsm HSM) (*Set, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, ManifestFile)
	now := time.Now()
	s := &Set{}
	var probs []string
	for i, mk := range m.Keys {
		if mk.State == Retired && !now.Before(mk.RemoveAt) {
			continue
		}
		k, err := loadManifestKey(dir, mk, hsm)
		if err != nil {
			probs = append(probs, fmt.Sprintf("keys[%d] (%s): %v", i, mk.KeyID, err))
			continue
		}
		s.keys = append(s.keys, k)
	}
	if len(probs) > 0 {
		return nil, &ManifestError{Path: path, Problems: probs}
	}
	return s, nil
}

// CheckDir checks a key directory as LoadDir would load it, without an
// HSM: keys held by one are checked for their structure only. It returns
// every problem found, for check-config.
func CheckDir(dir string) []string {
	m, err := ReadManifest(dir)
	if err != nil {
		var me *ManifestError
		if errors.As(err, &me) {
			return me.Problems
		}
		return []string{err.Error()}
	}
	var probs []string
	for i, mk := range m.Keys {
		if mk.HSMLabel != "" || (mk.State == Retired && !time.Now().Before(mk.RemoveAt)) {
			continue
		}
		if _, err := loadManifestKey(dir, mk, nil); err != nil {
			probs = append(probs, fmt.Sprintf("keys[%d] (%s): %v", i, mk.KeyID, err))
		}
	}
	return probs
}

func loadManifestKey(dir string, mk ManifestKey, hsm HSM) (Key, error) {
	alg := jose.SignatureAlgorithm(mk.Alg)
	var k Key
	if mk.HSMLabel != "" {
		if hsm == nil {
			return Key{}, errors.New("hsm_label is set but the platform has no hsm section")
		}
		var err error
		if k, err = hsmKey(hsm, mk.HSMLabel, mk.KeyID, alg, mk.State); err != nil {
			return Key{}, err
		}
	} else {
		set, err := readJWKS(filepath.Join(dir, mk.File))
		if err != nil {
			return Key{}, err
		}
		if len(set.Keys) != 1 {
			return Key{}, fmt.Errorf("%s: holds %d keys, expected one", mk.File, len(set.Keys))
		}
		jwk := set.Keys[0]
		if err := checkPrivate(jwk); err != nil {
			return Key{}, fmt.Errorf("%s: %w", mk.File, err)
		}
		if jwk.KeyID != mk.KeyID || jwk.Algorithm != mk.Alg {
			return Key{}, fmt.Errorf("%s: holds kid %q alg %s, the manifest says kid %q alg %s", mk.File, jwk.KeyID, jwk.Algorithm, mk.KeyID, mk.Alg)
		}
		k = fileKey(jwk, mk.State)
	}
	k.ActivateAt, k.RemoveAt = mk.ActivateAt, mk.RemoveAt
	return k, nil
}
