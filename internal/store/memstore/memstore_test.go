package memstore

import (
	"context"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s := New()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestSweep checks that entries nobody reads again do not stay in memory.
func TestSweep(t *testing.T) {
	s := New()
	defer s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, "old", []byte("x"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "young", []byte("x"), time.Hour); err != nil {
		t.Fatal(err)
	}
	s.sweep(time.Now().Add(time.Second))
	s.mu.Lock()
	_, hasOld := s.items["old"]
	_, hasYoung := s.items["young"]
	s.mu.Unlock()
	if hasOld || !hasYoung {
		t.Fatalf("after sweep: old present=%v, young present=%v; want false, true", hasOld, hasYoung)
	}
}

// TestJanitorRunsAndStops checks the janitor sweeps on its own and exits on
// Close instead of leaking a goroutine per store.
func TestJanitorRunsAndStops(t *testing.T) {
	s := &Store{items: make(map[string]entry), stop: make(chan struct{}), done: make(chan struct{})}
	go s.janitor(5 * time.Millisecond)
	if err := s.Put(context.Background(), "k", []byte("x"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.items)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("janitor did not remove the expired entry")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = s.Close()
	select {
	case <-s.done:
	default:
		t.Fatal("janitor still running after Close returned")
	}
}

func BenchmarkStore(b *testing.B) {
	s := New()
	defer s.Close()
	storetest.Bench(b, s)
}
