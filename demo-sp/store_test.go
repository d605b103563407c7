package demosp

import (
	"testing"
	"time"
)

func TestStoreTakeOnce(t *testing.T) {
	s := newStore[string]()
	s.put("k", "v", time.Minute)
	if v, ok := s.take("k"); !ok || v != "v" {
		t.Fatalf("take = %q, %v", v, ok)
	}
	if _, ok := s.take("k"); ok {
		t.Fatal("a value was taken twice")
	}
	if _, ok := s.get("k"); ok {
		t.Fatal("a taken value is still readable")
	}
}

func TestStoreExpiry(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := newStore[string]()
	s.now = func() time.Time { return now }
	s.put("k", "v", time.Minute)
	if _, ok := s.get("k"); !ok {
		t.Fatal("fresh value missing")
	}
	now = now.Add(time.Minute)
	if _, ok := s.get("k"); ok {
		t.Fatal("expired value still readable")
	}
	if _, ok := s.take("k"); ok {
		t.Fatal("expired value still takeable")
	}
}

func TestStoreSweepsExpired(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s := newStore[string]()
	s.now = func() time.Time { return now }
	s.put("old", "v", time.Second)
	now = now.Add(2 * sweepEvery)
	s.put("new", "v", time.Minute)
	if _, present := s.items["old"]; present {
		t.Fatal("an expired entry nobody read was never swept")
	}
}
