package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/history/historytest"
)

// openFile is the suite's opener: a fresh file per subtest, and further
// handles on that same file (as the broker and the citizen space have).
var openFile = historytest.Opener(
	func(t *testing.T) string { return filepath.Join(t.TempDir(), "data", "history.db") },
	func(t *testing.T, path string) history.Store {
		s, err := Open(path)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})

func TestConformance(t *testing.T) {
	historytest.Run(t, openFile)
}

func BenchmarkStore(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "history.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	historytest.Bench(b, s)
}
