package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// MinNonceKey is the shortest key NewNonces accepts: the HMAC key is what
// stops a client from minting nonces for the future, so it has the strength
// of the MAC itself.
const MinNonceKey = 32

// nonceLabel separates these MACs from any other use of the same key.
const nonceLabel = "sesame dpop nonce v1\x00"

// nonceLen is the decoded length of a nonce: the bucket, then its MAC.
const nonceLen = 8 + sha256.Size

// Nonces issues and checks server nonces (RFC 9449 §8) without a store:
// a nonce is a time bucket and an HMAC-SHA256 of that bucket, so every
// replica holding the key issues the same nonce within a bucket and
// accepts any other replica's. A nonce is accepted during its bucket and
// the next one, so it lives between one and two periods, and a client that
// fetched one just before a bucket ends is not sent back at once.
//
// What a nonce adds to iat is that the server, not the client's clock,
// decides when a proof was made: a proof pre-computed by an attacker who
// briefly held the key is worthless once its nonce has expired.
type Nonces struct {
	key    []byte
	period time.Duration
}

// NewNonces returns a nonce source for key (at least MinNonceKey bytes,
// the same on every replica) and period (how long a bucket lasts; a few
// minutes is usual). The key is copied.
func NewNonces(key []byte, period time.Duration) (*Nonces, error) {
	if len(key) < MinNonceKey {
		return nil, errors.New("dpop: nonce key shorter than 32 bytes")
	}
	if period <= 0 {
		return nil, errors.New("dpop: nonce period must be positive")
	}
	return &Nonces{key: append([]byte(nil), key...), period: period}, nil
}

// bucket is the period number now falls in.
func (n *Nonces) bucket(now time.Time) uint64 {
	return uint64(now.UnixNano() / int64(n.period))
}

func (n *Nonces) mac(bucket uint64) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte(nonceLabel))
	m.Write(binary.BigEndian.AppendUint64(nil, bucket))
	return m.Sum(nil)
}

// Issue returns the nonce of now's bucket, base64url: what the server sends
// in DPoP-Nonce.
func (n *Nonces) Issue(now time.Time) string {
	b := n.bucket(now)
	raw := binary.BigEndian.AppendUint64(make([]byte, 0, nonceLen), b)
	return base64.RawURLEncoding.EncodeToString(append(raw, n.mac(b)...))
}

// Valid reports whether nonce was issued under this key for now's bucket
// or the previous one. The MAC is compared in constant time, so timing
// tells an attacker nothing about how close a forgery came.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	if len(nonce) != base64.RawURLEncoding.EncodedLen(nonceLen) {
		return false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(nonce)
	if err != nil || len(raw) != nonceLen {
		return false
	}
	b, cur := binary.BigEndian.Uint64(raw[:8]), n.bucket(now)
	if b != cur && b+1 != cur {
		return false
	}
	return hmac.Equal(raw[8:], n.mac(b))
}
