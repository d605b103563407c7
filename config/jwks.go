package config

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// InlineJWKS is a JSON Web Key Set written in the config file itself (an
// SP's jwks). It is kept as its JSON text, which is what the broker
// parses; in YAML it may be written either way:
//
//	jwks: '{"keys":[{"kty":"EC","crv":"P-256","x":"…","y":"…"}]}'
//
//	jwks:
//	  keys:
//	    - {kty: EC, use: sig, crv: P-256, x: "…", y: "…"}
//
// The second form is what `sesame sp new` prints: it needs no quoting and
// diffs line by line.
type InlineJWKS string

// UnmarshalYAML takes a string (the JSON text, as before) or a mapping,
// which it turns into JSON.
func (j *InlineJWKS) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var s string
		if err := n.Decode(&s); err != nil {
			return fmt.Errorf("line %d: jwks: %w", n.Line, err)
		}
		*j = InlineJWKS(s)
		return nil
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return fmt.Errorf("line %d: jwks: %w", n.Line, err)
		}
		raw, err := json.Marshal(m)
		if err != nil {
			// A key set has string keys only; yaml gives map[any]any
			// to a mapping whose keys are not strings.
			return fmt.Errorf("line %d: jwks: not a JSON Web Key Set (%v)", n.Line, err)
		}
		*j = InlineJWKS(raw)
		return nil
	}
	return fmt.Errorf(`line %d: jwks: expected a key set, as a mapping with "keys:" or as its JSON text in quotes`, n.Line)
}

// MarshalYAML writes the JSON text, which UnmarshalYAML reads back.
func (j InlineJWKS) MarshalYAML() (any, error) { return string(j), nil }
