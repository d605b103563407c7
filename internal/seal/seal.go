// Package seal encrypts values before they reach the session store, so that
// a Redis dump, a replica or a MONITOR session does not reveal tokens or
// personal data, and a value cannot be moved to another key unnoticed.
//
// Values are sealed with AES-256-GCM under the first key of a ring; every key
// of the ring can open. Rotation is: prepend a new key, deploy, wait for the
// longest store TTL, drop the old key.
//
// Sealed format (version 1):
//
//	version (1 byte, 0x01) | key id (1 byte) | nonce (12 bytes) | ciphertext+tag
//
// The key id is the first byte of SHA-256(key), so the ring can be reordered
// freely. The GCM additional data is the 2-byte header followed by the
// caller's aad (the store key), binding the value to both.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

const (
	version1   = 0x01
	headerSize = 2
	nonceSize  = 12
	tagSize    = 16
)

const (
	// KeySize is the required key length: AES-256.
	KeySize = 32
	// Overhead is how many bytes Seal adds to the plaintext; the store
	// holds len(plaintext)+Overhead bytes per value.
	Overhead = headerSize + nonceSize + tagSize
)

// ErrCorrupt is returned by Open for anything it cannot authenticate:
// truncated or garbage input, an unknown format version, a key id not in the
// ring, a wrong aad or tampered bytes. Callers should treat the value as
// absent.
var ErrCorrupt = errors.New("seal: corrupt or unauthenticated value")

// Box seals and opens values with a key ring. It is safe for concurrent use.
type Box struct {
	sealID byte
	aeads  map[byte]cipher.AEAD
}

// New builds a Box from keys, each KeySize bytes. keys[0] seals new values;
// all keys open. Two keys whose ids collide are refused; generate another
// key (the odds are 1 in 256 per pair).
func New(keys [][]byte) (*Box, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no key given")
	}
	b := &Box{aeads: make(map[byte]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("seal: key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		if bytes.Equal(k, make([]byte, KeySize)) {
			return nil, fmt.Errorf("seal: key %d is all zeros, which is a placeholder, not a key", i)
		}
		id := keyID(k)
		if _, dup := b.aeads[id]; dup {
			return nil, fmt.Errorf("seal: key %d has the same id as an earlier key (duplicate key, or a 1-in-256 id collision: generate a new key)", i)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", i, err)
		}
		b.aeads[id] = aead
		if i == 0 {
			b.sealID = id
		}
	}
	return b, nil
}

func keyID(key []byte) byte {
	sum := sha256.Sum256(key)
	return sum[0]
}

// additionalData authenticates the header along with aad; the header has a
// fixed size, so the concatenation is unambiguous.
func additionalData(header, aad []byte) []byte {
	ad := make([]byte, 0, len(header)+len(aad))
	return append(append(ad, header...), aad...)
}

// Seal encrypts plaintext bound to aad (the store key). Random 96-bit nonces
// are safe for about 2^32 values per key; rotate keys long before that.
func (b *Box) Seal(plaintext, aad []byte) []byte {
	out := make([]byte, headerSize+nonceSize, Overhead+len(plaintext))
	out[0], out[1] = version1, b.sealID
	// cipher.NewGCMWithRandomNonce would hide the nonce handling, but it
	// would also fix the layout to nonce-first; the header must come first
	// so that old versions can be recognised before anything else.
	nonce := out[headerSize:]
	// Since Go 1.24 rand.Read never returns an error (it crashes rather than
	// hand out a weak nonce), hence no error result on Seal.
	_, _ = rand.Read(nonce)
	return b.aeads[b.sealID].Seal(out, nonce, plaintext, additionalData(out[:headerSize], aad))
}

// Open authenticates and decrypts a value produced by Seal with the same aad.
// Every failure wraps ErrCorrupt.
func (b *Box) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("seal: %d bytes is shorter than the %d-byte minimum: %w", len(sealed), Overhead, ErrCorrupt)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("seal: unsupported format version 0x%02x: %w", sealed[0], ErrCorrupt)
	}
	aead, ok := b.aeads[sealed[1]]
	if !ok {
		return nil, fmt.Errorf("seal: key id 0x%02x is not in the key ring (retired key?): %w", sealed[1], ErrCorrupt)
	}
	nonce := sealed[headerSize : headerSize+nonceSize]
	pt, err := aead.Open(nil, nonce, sealed[headerSize+nonceSize:], additionalData(sealed[:headerSize], aad))
	if err != nil {
		return nil, fmt.Errorf("seal: authentication failed (wrong key, wrong aad or tampered value): %w", ErrCorrupt)
	}
	return pt, nil
}

// ParseKey decodes a key from configuration: base64 in the standard or URL
// alphabet, with or without padding, surrounding whitespace ignored. Errors
// never echo the input, which is a secret. Generate a key with
// `openssl rand -base64 32`.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("seal: empty key")
	}
	var (
		key []byte
		err error
	)
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		if key, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("seal: key is not valid base64 (standard or URL alphabet, padding optional)")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: key decodes to %d bytes, want %d (generate one with: openssl rand -base64 32)", len(key), KeySize)
	}
	return key, nil
}
