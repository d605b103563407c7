// Package migrate reads the versioned schema migrations the history stores
// embed. Each store applies them itself, in one transaction under its own
// lock, and records them in schema_migrations(version, applied_at); this
// package only finds and orders them, so both stores number them alike.
package migrate

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migration is one file NNNN_name.sql.
type Migration struct {
	// Version is NNNN: migrations apply in increasing Version, once each.
	Version int
	// Name is the file name, for errors.
	Name string
	// SQL is the file's statements, run as one script.
	SQL string
}

// Load returns the migrations in dir of fsys, ordered by version. Every
// .sql file must be named NNNN_name.sql with a distinct positive NNNN: a
// file that is not would silently never apply.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migrate: %s: want NNNN_name.sql", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrate: %s and %s share version %d", prev, base, v)
		}
		seen[v] = base
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		out = append(out, Migration{Version: v, Name: base, SQL: string(b)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("migrate: no migration in %s", dir)
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	return out, nil
}
