package seal

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	return k
}

// distinctKeys returns n random keys with distinct ids.
func distinctKeys(t testing.TB, n int) [][]byte {
	t.Helper()
	seen := map[byte]bool{}
	var keys [][]byte
	for len(keys) < n {
		k := newKey(t)
		if !seen[keyID(k)] {
			seen[keyID(k)] = true
			keys = append(keys, k)
		}
	}
	return keys
}

func mustNew(t testing.TB, keys ...[]byte) *Box {
	t.Helper()
	b, err := New(keys)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	b := mustNew(t, newKey(t))
	for _, pt := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte{0}, 1000), make([]byte, 64<<10)} {
		sealed := b.Seal(pt, []byte("sess:abc"))
		if len(sealed) != len(pt)+Overhead {
			t.Errorf("len(Seal(%d bytes)) = %d, want %d", len(pt), len(sealed), len(pt)+Overhead)
		}
		if len(pt) > 8 && bytes.Contains(sealed, pt[:8]) && !bytes.Equal(pt[:8], make([]byte, 8)) {
			t.Errorf("sealed value contains plaintext")
		}
		got, err := b.Open(sealed, []byte("sess:abc"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("Open = %x, want %x", got, pt)
		}
	}
}

func TestHeader(t *testing.T) {
	k := newKey(t)
	sealed := mustNew(t, k).Seal([]byte("v"), nil)
	sum := sha256.Sum256(k)
	if sealed[0] != 1 || sealed[1] != sum[0] {
		t.Fatalf("header = %x, want 01%02x", sealed[:2], sum[0])
	}
}

// TestGoldenVector freezes the format: values sealed by an earlier release
// must still open. The vector was produced with crypto/cipher directly, not
// with Seal.
func TestGoldenVector(t *testing.T) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	sealed, _ := hex.DecodeString("0163a0a1a2a3a4a5a6a7a8a9aaab8e7d10412aeb529b86b05f3c228f3dd5b61d052cd7")
	got, err := mustNew(t, key).Open(sealed, []byte("sess:1"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("Open(golden) = %q, %v; want \"hello\"", got, err)
	}
}

func TestNonceIsFresh(t *testing.T) {
	b := mustNew(t, newKey(t))
	seen := map[string]bool{}
	for range 1000 {
		s := string(b.Seal([]byte("same"), []byte("k")))
		if seen[s] {
			t.Fatal("two Seals of the same plaintext produced the same output")
		}
		seen[s] = true
	}
}

func TestAADBindsKey(t *testing.T) {
	b := mustNew(t, newKey(t))
	sealed := b.Seal([]byte("session"), []byte("sess:alice"))
	for _, aad := range []string{"sess:mallory", "", "sess:alic", "sess:alicee"} {
		if _, err := b.Open(sealed, []byte(aad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open with aad %q = %v, want ErrCorrupt", aad, err)
		}
	}
}

func TestTamper(t *testing.T) {
	b := mustNew(t, newKey(t))
	sealed := b.Seal([]byte("authorization code"), []byte("k"))
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(sealed)
			bad[i] ^= bit
			if got, err := b.Open(bad, []byte("k")); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open with byte %d ^ %#x = %q, %v; want ErrCorrupt", i, bit, got, err)
			}
		}
	}
	for n := range len(sealed) {
		if _, err := b.Open(sealed[:n], []byte("k")); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open of %d-byte prefix = %v, want ErrCorrupt", n, err)
		}
	}
	if _, err := b.Open(append(bytes.Clone(sealed), 0), []byte("k")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with trailing byte = %v, want ErrCorrupt", err)
	}
}

func TestOldOrForeignFormats(t *testing.T) {
	b := mustNew(t, newKey(t))
	for name, v := range map[string][]byte{
		"nil":          nil,
		"plain json":   []byte(`{"sub":"alice","acr":"eidas1","exp":1700000000}`),
		"version 0":    append([]byte{0x00}, make([]byte, 40)...),
		"version 2":    append([]byte{0x02}, b.Seal([]byte("x"), nil)[1:]...),
		"header only":  {0x01, b.sealID},
		"zero-filled":  make([]byte, 100),
		"missing tag":  b.Seal(nil, nil)[:Overhead-1],
		"unknown key":  append([]byte{0x01, b.sealID + 1}, make([]byte, 40)...),
		"random bytes": []byte(strings.Repeat("\xde\xad\xbe\xef", 16)),
	} {
		if got, err := b.Open(v, nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Open = %q, %v; want ErrCorrupt", name, got, err)
		}
	}
	// Operators reading logs after a format change need to see why.
	_, err := b.Open(append([]byte{0x02}, b.Seal([]byte("x"), nil)[1:]...), nil)
	if err == nil || !strings.Contains(err.Error(), "version 0x02") {
		t.Errorf("Open of a version 2 value = %v, want an error naming the version", err)
	}
}

func TestRotation(t *testing.T) {
	keys := distinctKeys(t, 2)
	oldK, newK := keys[0], keys[1]
	aad := []byte("k")

	before := mustNew(t, oldK).Seal([]byte("old"), aad)

	rotated := mustNew(t, newK, oldK)
	if got, err := rotated.Open(before, aad); err != nil || string(got) != "old" {
		t.Fatalf("ring [new, old] opening an old value = %q, %v", got, err)
	}
	after := rotated.Seal([]byte("new"), aad)
	if after[1] != keyID(newK) {
		t.Fatalf("ring [new, old] sealed with key id %#x, want the first key's %#x", after[1], keyID(newK))
	}

	reordered := mustNew(t, oldK, newK)
	for _, v := range [][]byte{before, after} {
		if _, err := reordered.Open(v, aad); err != nil {
			t.Fatalf("reordered ring cannot open: %v", err)
		}
	}

	retired := mustNew(t, newK)
	if _, err := retired.Open(before, aad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ring without the old key opened an old value: %v", err)
	}
	if _, err := mustNew(t, oldK).Open(after, aad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("old ring opened a value sealed with the new key: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	k := newKey(t)
	// Find a different key whose id collides with k's.
	var collide []byte
	for collide == nil {
		c := newKey(t)
		if keyID(c) == keyID(k) && !bytes.Equal(c, k) {
			collide = c
		}
	}
	for name, keys := range map[string][][]byte{
		"no keys":      nil,
		"short key":    {k[:16]},
		"long key":     {append(bytes.Clone(k), 0)},
		"nil key":      {k, nil},
		"zero key":     {make([]byte, KeySize)},
		"duplicate":    {k, bytes.Clone(k)},
		"id collision": {k, collide},
	} {
		if b, err := New(keys); err == nil {
			t.Errorf("%s: New succeeded (%v), want error", name, b)
		}
	}
}

func TestBoxIndependentOfCallerSlices(t *testing.T) {
	k := newKey(t)
	b := mustNew(t, k)
	sealed := b.Seal([]byte("v"), nil)
	clear(k) // a caller wiping its copy must not break the Box
	if _, err := b.Open(sealed, nil); err != nil {
		t.Fatalf("Open after caller cleared its key slice: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(0xfb + i) // produces '+' '/' vs '-' '_' in the encodings
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		s := enc.EncodeToString(key)
		for _, in := range []string{s, " " + s + "\n"} {
			got, err := ParseKey(in)
			if err != nil || !bytes.Equal(got, key) {
				t.Errorf("ParseKey(%q) = %x, %v; want %x", in, got, err, key)
			}
		}
	}

	secret := "c2VjcmV0LXNlY3JldC1zZWNyZXQ" // decodes to 20 bytes
	for in, wantMsg := range map[string]string{
		"":                  "empty",
		"   ":               "empty",
		"not base64 at all": "not valid base64",
		"@@@@" + secret:     "not valid base64",
		secret:              "decodes to 20 bytes, want 32",
		base64.StdEncoding.EncodeToString(make([]byte, 64)): "decodes to 64 bytes",
	} {
		_, err := ParseKey(in)
		if err == nil {
			t.Errorf("ParseKey(%q) succeeded, want error", in)
			continue
		}
		if !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("ParseKey(%q) = %q, want it to mention %q", in, err, wantMsg)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("ParseKey error %q echoes the key material", err)
		}
	}
}
