package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Defaults of a rotation. The lead must exceed the JWKS max-age plus the
// reload period plus clock skew (60s + 30s + a little by default), so that
// every SP's cache and every replica hold a next key before it signs; the
// keep must exceed the life of anything a retired key signed, the
// id_token_hint of a logout included (an SP may send it as long as the
// session lives).
const (
	DefaultLead = 10 * time.Minute
	DefaultKeep = 24 * time.Hour
)

// RotateOptions adjust a rotation.
type RotateOptions struct {
	// Algs are the algorithms to rotate; empty: every algorithm of the
	// manifest.
	Algs []jose.SignatureAlgorithm
	// Lead is how long a new next key is published before it signs.
	Lead time.Duration
	// Keep is how long a retired key stays published after it stopped
	// signing.
	Keep time.Duration
	// HSMLabel makes the new next key the HSM key pair with that label
	// instead of a generated file key (one algorithm only); KeyID is its
	// kid (default: the label).
	HSMLabel, KeyID string
	// Now is the time of the rotation (zero: the clock).
	Now time.Time
}

// Init starts a key directory: one current key per algorithm, each in its
// own file, and the manifest. It refuses a directory that has a manifest.
func Init(dir string, algs []jose.SignatureAlgorithm, now time.Time) ([]string, error) {
	if len(algs) == 0 {
		return nil, errors.New("keys: init: no algorithm given")
	}
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keys: init: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		return nil, fmt.Errorf("keys: init: %s already has a %s; use rotate", dir, ManifestFile)
	}
	m := &Manifest{Version: ManifestVersion}
	var report []string
	for _, alg := range algs {
		if slices.ContainsFunc(m.Keys, func(k ManifestKey) bool { return k.Alg == string(alg) }) {
			return nil, fmt.Errorf("keys: init: %s given twice", alg)
		}
		mk, err := newFileKey(dir, alg, now)
		if err != nil {
			return nil, err
		}
		mk.State, mk.ActivateAt = Current, now
		m.Keys = append(m.Keys, mk)
		report = append(report, fmt.Sprintf("%s: %s is current", alg, mk.KeyID))
	}
	if err := WriteManifest(dir, m); err != nil {
		return nil, err
	}
	return report, nil
}

// Rotate moves a key directory's states on, for each algorithm:
//
//   - a retired key past its remove_at leaves the manifest and its file
//     is deleted;
//   - when the next key's activate_at has come, the current key becomes
//     retired (remove_at = that activate_at + Keep) and the next key
//     current;
//   - when no next key is left, a new one is made, to sign Lead from now.
//
// A next key whose time has not come is left alone (a rotation run by a
// timer too early does nothing), so Rotate can run at any time. Files are
// written before the manifest that names them, each through a temporary
// file and a rename, so that a broker reloading meanwhile reads either the
// old manifest or the new one, never half of one.
func Rotate(dir string, o RotateOptions) ([]string, error) {
	if o.Lead <= 0 {
		o.Lead = DefaultLead
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	algs := o.Algs
	if len(algs) == 0 {
		for _, k := range m.Keys {
			if a := jose.SignatureAlgorithm(k.Alg); !slices.Contains(algs, a) && k.State != Retired {
				algs = append(algs, a)
			}
		}
	}
	if o.HSMLabel != "" && len(algs) != 1 {
		return nil, fmt.Errorf("keys: rotate: an HSM key (-hsm-label) needs exactly one -alg, not %d", len(algs))
	}
	var report, obsolete []string
	keep := m.Keys[:0:0]
	for _, k := range m.Keys {
		if k.State == Retired && !now.Before(k.RemoveAt) {
			report = append(report, fmt.Sprintf("%s: %s removed (retired until %s)", k.Alg, k.KeyID, k.RemoveAt.Format(time.RFC3339)))
			if k.File != "" {
				obsolete = append(obsolete, k.File)
			}
			continue
		}
		keep = append(keep, k)
	}
	m.Keys = keep
	for _, alg := range algs {
		r, err := rotateAlg(dir, m, alg, now, o)
		if err != nil {
			return nil, err
		}
		report = append(report, r...)
	}
	if probs := m.problems(); len(probs) > 0 {
		return nil, &ManifestError{Path: filepath.Join(dir, ManifestFile), Problems: probs}
	}
	if err := WriteManifest(dir, m); err != nil {
		return nil, err
	}
	// Deleted last: the manifest that named them is gone by now.
	for _, f := range obsolete {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return report, fmt.Errorf("keys: rotate: remove %s: %w", f, err)
		}
	}
	return report, nil
}

// rotateAlg rotates one algorithm of m in place.
func rotateAlg(dir string, m *Manifest, alg jose.SignatureAlgorithm, now time.Time, o RotateOptions) ([]string, error) {
	find := func(st State) int {
		return slices.IndexFunc(m.Keys, func(k ManifestKey) bool { return k.Alg == string(alg) && k.State == st })
	}
	var report []string
	if n := find(Next); n >= 0 {
		next := &m.Keys[n]
		if now.Before(next.ActivateAt) {
			if o.HSMLabel != "" {
				return nil, fmt.Errorf("keys: rotate: %s: next key %s signs from %s; rotate again after that to add HSM key %q", alg, next.KeyID, next.ActivateAt.Format(time.RFC3339), o.HSMLabel)
			}
			return []string{fmt.Sprintf("%s: next key %s signs from %s (in %s): nothing to do yet", alg, next.KeyID,
				next.ActivateAt.Format(time.RFC3339), next.ActivateAt.Sub(now).Round(time.Second))}, nil
		}
		if c := find(Current); c >= 0 {
			cur := &m.Keys[c]
			cur.State, cur.RetiredAt, cur.RemoveAt = Retired, next.ActivateAt, next.ActivateAt.Add(o.Keep)
			report = append(report, fmt.Sprintf("%s: %s retired, published until %s", alg, cur.KeyID, cur.RemoveAt.Format(time.RFC3339)))
		}
		next.State = Current
		report = append(report, fmt.Sprintf("%s: %s is current (signing since %s)", alg, next.KeyID, next.ActivateAt.Format(time.RFC3339)))
	}
	var mk ManifestKey
	if o.HSMLabel != "" {
		kid := o.KeyID
		if kid == "" {
			kid = o.HSMLabel
		}
		mk = ManifestKey{KeyID: kid, Alg: string(alg), HSMLabel: o.HSMLabel, CreatedAt: now.Truncate(time.Second)}
	} else {
		var err error
		if mk, err = newFileKey(dir, alg, now); err != nil {
			return nil, err
		}
	}
	// Rounded up, so that the manifest reads well and the lead is never
	// shorter than asked.
	mk.State, mk.ActivateAt = Next, ceilSecond(now.Add(o.Lead))
	m.Keys = append(m.Keys, mk)
	where := ""
	if mk.HSMLabel != "" {
		where = " (HSM key " + mk.HSMLabel + ")"
	}
	report = append(report, fmt.Sprintf("%s: %s is next%s, published now, signs from %s", alg, mk.KeyID, where, mk.ActivateAt.Format(time.RFC3339)))
	return report, nil
}

// newFileKey generates a key of alg and writes it to DIR/<kid>.jwks.json.
func newFileKey(dir string, alg jose.SignatureAlgorithm, now time.Time) (ManifestKey, error) {
	k, err := NewKey(alg)
	if err != nil {
		return ManifestKey{}, err
	}
	raw, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k}}, "", "  ")
	if err != nil {
		return ManifestKey{}, fmt.Errorf("keys: encode %s: %w", k.KeyID, err)
	}
	name := k.KeyID + ".jwks.json"
	if err := writeAtomic(dir, name, append(raw, '\n')); err != nil {
		return ManifestKey{}, err
	}
	return ManifestKey{KeyID: k.KeyID, Alg: string(alg), File: name, CreatedAt: now.Truncate(time.Second)}, nil
}

// ceilSecond rounds t up to a whole second.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// WriteManifest writes dir's manifest atomically (a temporary file, then
// a rename).
func WriteManifest(dir string, m *Manifest) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("keys: encode manifest: %w", err)
	}
	return writeAtomic(dir, ManifestFile, append(raw, '\n'))
}

// writeAtomic writes a private file (0600) so that readers see the old
// content or the new, never a part: write a temporary file in the same
// directory, sync it, rename it over, then sync the directory.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("keys: write %s: %w", name, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
