package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// SPFile is a file of service providers for the platform of one level,
// as `sesame sp new` prints it:
//
//	level: plus
//	service_providers:
//	  - client_id: mon-service-1a2b3c
//	    ...
//
// `sesame dev -sp FILE` (and `sesame broker -sp FILE`) add its entries to
// the first platform of that level at start, so that one's own SP can be
// tried without editing the main config. Each entry is what a platform's
// service_providers list holds, and is validated as such.
type SPFile struct {
	// Level is the level of the platform the SPs go on: "standard" or
	// "plus".
	Level            string `yaml:"level"`
	ServiceProviders []SP   `yaml:"service_providers"`
}

// LoadSPFile reads an SP file strictly: unknown fields are errors, as in
// the main config. It does not expand ${VAR}: the file holds an SP's own
// registration, written by `sesame sp new`.
func LoadSPFile(path string) (*SPFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("SP file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	f := &SPFile{}
	if err := dec.Decode(f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("SP file %s: empty; expected level: and service_providers: (sesame sp new prints one)", path)
		}
		return nil, fmt.Errorf("SP file %s: %w", path, err)
	}
	switch f.Level {
	case "standard", "plus":
	case "":
		return nil, fmt.Errorf("SP file %s: level: missing; expected standard or plus", path)
	default:
		return nil, fmt.Errorf("SP file %s: level: %q: expected standard or plus", path, f.Level)
	}
	if len(f.ServiceProviders) == 0 {
		return nil, fmt.Errorf("SP file %s: service_providers: missing; list at least one SP", path)
	}
	return f, nil
}

// AddedSP is an SP that AddSPFiles registered.
type AddedSP struct {
	ClientID, Platform, File string
}

// AddSPFiles loads each SP file, appends its SPs to the first broker
// platform of its level, then validates the whole config again, so that
// an SP is checked against its platform's rules (FAPI 2.0 on "+") and
// its client_id against the others'. On error c may hold some of the
// SPs: discard it.
func (c *Config) AddSPFiles(paths ...string) ([]AddedSP, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	if c.Broker == nil {
		return nil, fmt.Errorf("%s has no broker section to register the SPs of %v on", c.File, paths)
	}
	var added []AddedSP
	for _, path := range paths {
		f, err := LoadSPFile(path)
		if err != nil {
			return nil, err
		}
		i := c.Broker.platformOfLevel(f.Level)
		if i < 0 {
			return nil, fmt.Errorf("SP file %s: %s has no platform with level %s", path, c.File, f.Level)
		}
		pl := &c.Broker.Platforms[i]
		pl.ServiceProviders = append(pl.ServiceProviders, f.ServiceProviders...)
		for _, sp := range f.ServiceProviders {
			added = append(added, AddedSP{ClientID: sp.ClientID, Platform: pl.ID, File: path})
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("with the SP file(s) %v: %w", paths, err)
	}
	return added, nil
}

// platformOfLevel is the index of the first platform of level, or -1.
func (b *Broker) platformOfLevel(level string) int {
	for i, pl := range b.Platforms {
		l := pl.Level
		if l == "" {
			l = "standard"
		}
		if l == level {
			return i
		}
	}
	return -1
}
