package migrate

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadOrders(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0010_later.sql": {Data: []byte("B")},
		"m/0002_first.sql": {Data: []byte("A")},
		"m/README":         {Data: []byte("not a migration")},
	}
	ms, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 2 || ms[0].SQL != "A" || ms[1].Version != 10 || ms[1].Name != "0010_later.sql" {
		t.Fatalf("Load = %+v", ms)
	}
}

func TestLoadRejects(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"want NNNN":     {"m/init.sql": {}},
		"share version": {"m/0001_a.sql": {}, "m/1_b.sql": {}},
		"no migration":  {},
		"want NNNN_":    {"m/0000_zero.sql": {}},
	} {
		if _, err := Load(fsys, "m"); err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(name, "_")) {
			t.Errorf("%s: Load = %v", name, err)
		}
	}
}
