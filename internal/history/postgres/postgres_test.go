package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/history"
	"github.com/sesame-id/sesame/internal/history/historytest"
	"github.com/sesame-id/sesame/internal/testpg"
)

// TestMain stops the shared server (one initdb for the whole package).
func TestMain(m *testing.M) { testpg.Main(m) }

// openDB is the suite's opener: a fresh database per subtest, and further
// handles (pools) on that same database.
func openDB(t *testing.T) history.Store {
	t.Helper()
	return opener(t)
}

var opener = historytest.Opener(
	func(t *testing.T) string { return testpg.Shared(t).NewDB(t) },
	func(t *testing.T, url string) history.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})

func TestConformance(t *testing.T) {
	historytest.Run(t, openDB)
}

func BenchmarkStore(b *testing.B) {
	url := testpg.Shared(b).NewDB(b)
	s, err := Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	historytest.Bench(b, s)
}
