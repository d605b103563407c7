package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"

	"github.com/sesame-id/sesame/config"
)

// Reloader applies a changed configuration file to a running broker: the
// registries (SPs, data providers, the data-scope catalogue and IdPs) of
// every platform, each swapped whole, so that no request is dropped and
// none sees half of a change. A file that fails validation changes
// nothing. Settings that only a restart applies (listeners, issuers, the
// store, keys, secrets, TTLs, the set of platforms, other sections) are
// kept as they are and logged as needing a restart.
type Reloader struct {
	b   *Broker
	log *slog.Logger
	// onApply, when set, receives each broker config applied.
	onApply func(*config.Broker)

	// mu serialises reloads: two SIGHUPs in a row must not interleave
	// their swaps.
	mu sync.Mutex
	// cur is what runs: the file as loaded at start, with the registries
	// of the last reload that succeeded. Restart-needing changes are
	// measured against it, so they are reported again at every reload
	// until the process restarts.
	cur *config.Config
}

// NewReloader returns the reloader of b, which was built from cfg.
// onApply, when not nil, is called with each broker section applied (to
// keep the history's SP and IdP names in step, for one).
func NewReloader(b *Broker, cfg *config.Config, log *slog.Logger, onApply func(*config.Broker)) *Reloader {
	if log == nil {
		log = slog.Default()
	}
	return &Reloader{b: b, cur: cfg, log: log, onApply: onApply}
}

// ReloadReport says what a reload did.
type ReloadReport struct {
	// Changes are the registry entries added, removed or changed
	// ("std: SP sp2 changed", "IdP laposte changed").
	Changes []string
	// Restart lists, by YAML path, the changed settings that were not
	// applied and need a restart.
	Restart []string
}

// ReloadFile reads, validates and applies the file at path (see Reload).
// It logs what it did, and why it refused a file.
func (rl *Reloader) ReloadFile(path string) (*ReloadReport, error) {
	next, err := config.Load(path)
	if err != nil {
		rl.log.Error("config reload refused: the running registry is kept", "file", path, "err", err)
		return nil, fmt.Errorf("reload %s: %w", path, err)
	}
	return rl.Reload(next)
}

// Reload applies next, a validated configuration, to the running
// broker: next's registries go live on every platform; every other
// change is reported as needing a restart and not applied. On an error
// nothing changes.
func (rl *Reloader) Reload(next *config.Config) (*ReloadReport, error) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rep, err := rl.reload(next)
	if err != nil {
		rl.log.Error("config reload refused: the running registry is kept", "file", next.File, "err", err)
		return nil, err
	}
	if len(rep.Restart) > 0 {
		rl.log.Warn("config reload: these settings changed but need a restart; the running values are kept", "file", next.File, "fields", rep.Restart)
	}
	rl.log.Info("config reloaded", "file", next.File, "changes", rep.Changes)
	return rep, nil
}

func (rl *Reloader) reload(next *config.Config) (*ReloadReport, error) {
	if next.Broker == nil {
		return nil, errors.New("the file has no broker section")
	}
	cur := rl.cur.Broker
	rep := &ReloadReport{Restart: config.RestartNeeded(rl.cur, next)}
	// What will run: the running settings with the new registries,
	// validated as a whole, since an SP checked against the file's
	// platform settings must hold against the running ones too (a
	// platform whose level changed in the file keeps its old level).
	applied := cur.WithRegistries(next.Broker)
	if err := (&config.Config{File: next.File, Broker: applied}).Validate(); err != nil {
		return nil, fmt.Errorf("the new registries do not fit the running platform settings: %w", err)
	}
	// Every platform's registry is built before any is swapped: one
	// that fails leaves all as they were.
	regs := make([]*registry, len(rl.b.Platforms))
	for i, p := range rl.b.Platforms {
		j := slices.IndexFunc(applied.Platforms, func(pl config.Platform) bool { return pl.ID == p.cfg.ID })
		if j < 0 {
			return nil, fmt.Errorf("platform %s is not in the running config", p.cfg.ID)
		}
		g, err := p.buildRegistry(applied.Platforms[j], applied.IdentityProviders, applied.DataScopes, p.current.Load())
		if err != nil {
			return nil, err
		}
		regs[i] = g
		rep.Changes = append(rep.Changes, platformChanges(p.cfg.ID, p.current.Load(), g)...)
	}
	for i, p := range rl.b.Platforms {
		p.setRegistry(regs[i])
	}
	next2 := *rl.cur
	next2.Broker = applied
	rl.cur = &next2
	if rl.onApply != nil {
		rl.onApply(applied)
	}
	return rep, nil
}

// platformChanges names the entries of a platform's registry that a
// reload adds, removes or changes.
func platformChanges(platform string, old, g *registry) []string {
	var out []string
	diff := func(kind string, a, b map[string]any) {
		for _, id := range sortedKeys(b) {
			o, ok := a[id]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("%s: %s %s added", platform, kind, id))
			case !config.Same(o, b[id]):
				out = append(out, fmt.Sprintf("%s: %s %s changed", platform, kind, id))
			}
		}
		for _, id := range sortedKeys(a) {
			if _, ok := b[id]; !ok {
				out = append(out, fmt.Sprintf("%s: %s %s removed", platform, kind, id))
			}
		}
	}
	diff("SP", anyMap(old.clients), anyMap(g.clients))
	diff("data provider", anyMap(old.dps), anyMap(g.dps))
	diff("data scope", anyMap(old.dataScopes), anyMap(g.dataScopes))
	diff("IdP", anyMap(old.idpConfigs), anyMap(g.idpConfigs))
	return out
}

// anyMap copies m with its values dereferenced, for comparison.
func anyMap[V any](m map[string]V) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Pointer {
			out[k] = rv.Elem().Interface()
		} else {
			out[k] = v
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
