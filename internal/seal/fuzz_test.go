package seal

import (
	"bytes"
	"errors"
	"testing"
)

// sealFixedNonce is Seal with a chosen nonce. The fuzzing engine re-runs
// FuzzOpen's setup in every worker process, so genuine seeds must be
// reproducible there; Seal's random nonces are not.
func sealFixedNonce(b *Box, n byte, pt, aad string) []byte {
	out := []byte{version1, b.sealID}
	nonce := bytes.Repeat([]byte{n}, nonceSize)
	out = append(out, nonce...)
	return b.aeads[b.sealID].Seal(out, nonce, []byte(pt), additionalData(out[:headerSize], []byte(aad)))
}

// FuzzOpen feeds Open arbitrary bytes: it must never panic, and it must
// reject everything except the genuine values sealed below.
func FuzzOpen(f *testing.F) {
	// Fixed keys keep the fuzz target deterministic across runs.
	k1 := bytes.Repeat([]byte{0x11}, KeySize)
	k2 := bytes.Repeat([]byte{0x22}, KeySize)
	b, err := New([][]byte{k1, k2})
	if err != nil {
		f.Fatal(err)
	}
	old, err := New([][]byte{k2})
	if err != nil {
		f.Fatal(err)
	}

	genuine := map[string]string{} // sealed||aad -> plaintext
	add := func(sealed []byte, aad, pt string) {
		genuine[string(sealed)+"\x00"+aad] = pt
		f.Add(sealed, []byte(aad))
	}
	add(sealFixedNonce(b, 1, "hello", "sess:1"), "sess:1", "hello")
	add(sealFixedNonce(b, 2, "", "code:x"), "code:x", "")
	add(sealFixedNonce(old, 3, `{"sub":"alice"}`, "k"), "k", `{"sub":"alice"}`)

	f.Add([]byte{}, []byte{})
	f.Add([]byte{0x01}, []byte("k"))
	f.Add([]byte{0x01, 0x00}, []byte("k"))
	f.Add(make([]byte, Overhead), []byte("k"))
	// The fuzzer turns this unknown version back into 0x01, which is a
	// value genuinely sealed, not a forgery (testdata/fuzz/FuzzOpen
	// holds the case): it must be known as genuine.
	v4 := sealFixedNonce(b, 4, "v", "")
	genuine[string(v4)+"\x00"] = "v"
	f.Add(append([]byte{0x02}, v4[1:]...), []byte{})
	f.Add([]byte(`{"sub":"alice"}`), []byte("k"))

	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		pt, err := b.Open(sealed, aad)
		want, isGenuine := genuine[string(sealed)+"\x00"+string(aad)]
		switch {
		case isGenuine && (err != nil || string(pt) != want):
			t.Fatalf("genuine value: Open = %q, %v; want %q", pt, err, want)
		case !isGenuine && err == nil:
			t.Fatalf("Open accepted forged input %x (aad %q) as %q", sealed, aad, pt)
		case !isGenuine && !errors.Is(err, ErrCorrupt):
			t.Fatalf("Open error %v does not wrap ErrCorrupt", err)
		}
	})
}
