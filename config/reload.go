package config

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A running broker takes its registries again on SIGHUP: the IdP
// registrations (broker.identity_providers), the data-scope catalogue
// (broker.data_scopes) and each platform's service_providers,
// data_providers and identity_providers. Everything else (listeners,
// issuers, the store, keys, secrets, TTLs, the set of platforms, and the
// other sections) shapes what the process opened at start, so a change
// there needs a restart.

// registryFields are the YAML names of the reloadable fields, per struct.
var (
	brokerRegistryFields   = []string{"identity_providers", "data_scopes"}
	platformRegistryFields = []string{"service_providers", "data_providers", "identity_providers"}
)

// RestartNeeded lists, by YAML path ("broker.redis",
// "broker.platforms[std].listen", "providers"), the settings of next that
// differ from cur and that a reload does not apply. Values are never
// named, only paths: they may be secrets.
func RestartNeeded(cur, next *Config) []string {
	var out []string
	diffFields(reflect.ValueOf(*cur), reflect.ValueOf(*next), "", nil, func(path string, a, b reflect.Value) {
		if path == "broker" {
			out = append(out, brokerRestartNeeded(a.Interface().(*Broker), b.Interface().(*Broker))...)
			return
		}
		out = append(out, path)
	})
	return out
}

// brokerRestartNeeded is RestartNeeded for the broker section.
func brokerRestartNeeded(cur, next *Broker) []string {
	if cur == nil || next == nil {
		return []string{"broker"}
	}
	var out []string
	diffFields(reflect.ValueOf(*cur), reflect.ValueOf(*next), "broker.", brokerRegistryFields, func(path string, _, _ reflect.Value) {
		if path != "broker.platforms" {
			out = append(out, path)
		}
	})
	var added, removed []string
	for _, n := range next.Platforms {
		if !slices.ContainsFunc(cur.Platforms, func(c Platform) bool { return c.ID == n.ID }) {
			added = append(added, n.ID)
		}
	}
	for _, c := range cur.Platforms {
		i := slices.IndexFunc(next.Platforms, func(n Platform) bool { return n.ID == c.ID })
		if i < 0 {
			removed = append(removed, c.ID)
			continue
		}
		prefix := fmt.Sprintf("broker.platforms[%s].", c.ID)
		diffFields(reflect.ValueOf(c), reflect.ValueOf(next.Platforms[i]), prefix, platformRegistryFields, func(path string, _, _ reflect.Value) {
			out = append(out, path)
		})
	}
	if len(added) > 0 {
		out = append(out, "broker.platforms (added: "+strings.Join(added, ", ")+")")
	}
	if len(removed) > 0 {
		out = append(out, "broker.platforms (removed: "+strings.Join(removed, ", ")+")")
	}
	return out
}

// diffFields calls differ with prefix + the YAML name of every field of
// the structs a and b whose values differ, except those named in skip
// and those not read from YAML.
func diffFields(a, b reflect.Value, prefix string, skip []string, differ func(path string, a, b reflect.Value)) {
	t := a.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" || slices.Contains(skip, name) {
			continue
		}
		if !Same(a.Field(i).Interface(), b.Field(i).Interface()) {
			differ(prefix+name, a.Field(i), b.Field(i))
		}
	}
}

// Same reports whether two config values say the same in a file: a list
// absent and a list empty are one setting, as are an unset pointer and
// null. A reload compares with it what runs (maybe built in code) with
// what a file says.
func Same(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	ya, errA := yaml.Marshal(a)
	yb, errB := yaml.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ya, yb)
}

// WithRegistries returns cur with next's registries: next's IdP
// registrations and data-scope catalogue, and, for each platform of cur
// that next has too, next's SPs, data providers and IdP list. Every
// other setting is cur's. cur is not modified; the result shares
// unchanged values with both, so validate it before use and modify
// neither afterwards.
func (cur *Broker) WithRegistries(next *Broker) *Broker {
	out := *cur
	out.IdentityProviders = next.IdentityProviders
	out.DataScopes = next.DataScopes
	out.Platforms = slices.Clone(cur.Platforms)
	for i := range out.Platforms {
		pl := &out.Platforms[i]
		j := slices.IndexFunc(next.Platforms, func(n Platform) bool { return n.ID == pl.ID })
		if j < 0 {
			continue
		}
		n := next.Platforms[j]
		pl.ServiceProviders, pl.DataProviders, pl.IdentityProviders = n.ServiceProviders, n.DataProviders, n.IdentityProviders
	}
	return &out
}
