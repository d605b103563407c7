package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/seal"
	"github.com/sesame-id/sesame/internal/store"
	"github.com/sesame-id/sesame/internal/store/memstore"
)

// spy records the keys and values written to the store.
type spy struct {
	*memstore.Store
	keys   []string
	values [][]byte
}

func (s *spy) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.keys = append(s.keys, key)
	s.values = append(s.values, append([]byte(nil), value...))
	return s.Store.Put(ctx, key, value, ttl)
}

func (s *spy) Write(ctx context.Context, puts []store.Entry, deletes ...string) error {
	for _, e := range puts {
		s.keys = append(s.keys, e.Key)
		s.values = append(s.values, append([]byte(nil), e.Value...))
	}
	return s.Store.Write(ctx, puts, deletes...)
}

func newStore(t testing.TB, ttl time.Duration, sliding bool) (*Store, *spy) {
	box, err := seal.New([][]byte{[]byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	kv := &spy{Store: memstore.New()}
	t.Cleanup(func() { kv.Close() })
	return New(kv, box, "ns:", ttl, sliding), kv
}

func TestNoSecretInKeysOrValues(t *testing.T) {
	s, kv := newStore(t, time.Minute, true)
	ctx := context.Background()
	sess := s.New()
	sess.Step = StepAuthorize
	if err := s.Save(ctx, sess); err != nil {
		t.Fatal(err)
	}
	code := NewID()
	rec, err := s.Record("code", code, map[string]string{"family_name": "Dubois"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for i, k := range kv.keys {
		if strings.Contains(k, sess.ID) || strings.Contains(k, code) {
			t.Errorf("key %q holds a secret in clear", k)
		}
		if v := string(kv.values[i]); strings.Contains(v, "Dubois") || strings.Contains(v, "authorize") {
			t.Errorf("value under %q is not sealed", k)
		}
	}
	got, err := s.Load(ctx, sess.ID)
	if err != nil || got.Step != StepAuthorize {
		t.Fatalf("load: %v %+v", err, got)
	}
	var taken map[string]string
	if err := s.TakeRecord(ctx, "code", code, &taken); err != nil || taken["family_name"] != "Dubois" {
		t.Fatalf("take: %v %v", err, taken)
	}
	if err := s.TakeRecord(ctx, "code", code, &taken); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second take: %v", err)
	}
}

func TestCorruptValueIsDropped(t *testing.T) {
	s, kv := newStore(t, time.Minute, true)
	ctx := context.Background()
	sess := s.New()
	if err := s.Save(ctx, sess); err != nil {
		t.Fatal(err)
	}
	key := kv.keys[0]
	if err := kv.Store.Put(ctx, key, []byte("garbage from an old release"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, sess.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := kv.Get(ctx, key); err == nil {
		t.Fatal("corrupt value was kept")
	}
	// A sealed value moved under another key does not open either.
	other := s.New()
	if err := s.Save(ctx, other); err != nil {
		t.Fatal(err)
	}
	v, _ := kv.Get(ctx, kv.keys[1])
	_ = kv.Store.Put(ctx, key, v, time.Minute)
	if _, err := s.Load(ctx, sess.ID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped value opened: %v", err)
	}
}

func TestFixedLifetime(t *testing.T) {
	s, _ := newStore(t, time.Minute, false)
	ctx := context.Background()
	sess := s.New()
	sess.Created = time.Now().Add(-2 * time.Minute)
	if err := s.Save(ctx, sess); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a non-sliding session past its life was saved: %v", err)
	}
	sess.Created = time.Now().Add(-30 * time.Second)
	if err := s.Save(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, sess.ID); err != nil {
		t.Fatal(err)
	}
}

func TestTakeIsSingleUse(t *testing.T) {
	s, _ := newStore(t, time.Minute, true)
	ctx := context.Background()
	a := s.New()
	a.Trip = &Trip{IdP: "x", State: Digest("state")}
	if err := s.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.Take(ctx, a.ID)
	if err != nil || got.Trip == nil || got.Trip.IdP != "x" {
		t.Fatalf("take: %v %+v", err, got)
	}
	if _, err := s.Take(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session taken twice: %v", err)
	}
	if _, err := s.Load(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("taken session still loads: %v", err)
	}
}

func TestRotateKillsTheOldID(t *testing.T) {
	s, _ := newStore(t, time.Minute, true)
	ctx := context.Background()
	a := s.New()
	if err := s.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	old := a.ID
	if err := s.Rotate(ctx, a, nil); err != nil || a.ID == old {
		t.Fatalf("rotate: %v", err)
	}
	if _, err := s.Load(ctx, old); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old id still works: %v", err)
	}
	if _, err := s.Load(ctx, a.ID); err != nil {
		t.Fatalf("new id: %v", err)
	}
}
