package light

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LightToken faults. Parse wraps exactly one of them, so a caller can tell
// a forged token from a stale one.
var (
	// ErrTokenTooLarge: longer than MaxSize, refused before decoding.
	ErrTokenTooLarge = errors.New("light: token too large")
	// ErrTokenMalformed: not base64, not four parts, bad id or timestamp.
	ErrTokenMalformed = errors.New("light: token malformed")
	// ErrTokenIssuer: the issuer part is not the one this direction
	// expects (a token of another direction, replayed here).
	ErrTokenIssuer = errors.New("light: token issuer unexpected")
	// ErrTokenDigest: the digest does not match (wrong secret, or a part
	// changed).
	ErrTokenDigest = errors.New("light: token digest invalid")
	// ErrTokenExpired: older than MaxAge, or dated further in the future
	// than Skew.
	ErrTokenExpired = errors.New("light: token expired")
)

// Defaults of a Token's limits.
const (
	// DefaultTokenMaxSize is the EC node's (and FranceConnect's) bound.
	DefaultTokenMaxSize = 1024
	// DefaultTokenMaxAge covers one auto-submitted POST, with room for a
	// slow browser; the EC node's own default is of the same order.
	DefaultTokenMaxAge = 2 * time.Minute
	// DefaultTokenSkew is how far in the future a timestamp may be, for
	// clocks that disagree a little.
	DefaultTokenSkew = 5 * time.Second
	// MinSecretLength is the shortest secret NewToken accepts (as
	// FranceConnect's bridge config does).
	MinSecretLength = 32
)

// timestampLayout is the token's "yyyy-MM-dd HH:mm:ss SSS" without the
// milliseconds, which Go layouts cannot put after a space.
const timestampLayout = "2006-01-02 15:04:05"

// Token makes and checks the LightTokens of one direction (one issuer and
// one secret; see the Issuer* constants).
//
// A token is base64(issuer|id|timestamp|base64(SHA-256(id|issuer|timestamp|secret)))
// with the timestamp as "yyyy-MM-dd HH:mm:ss SSS" (Integration Guide
// §4.4.1). Parse checks size, encoding, the issuer, the digest in constant
// time, and the age; the EC node checks size and digest, FranceConnect's
// bridge size and digest only.
type Token struct {
	Issuer string
	Secret string
	// MaxAge bounds a token's age; zero means DefaultTokenMaxAge.
	MaxAge time.Duration
	// MaxSize bounds the encoded token; zero means DefaultTokenMaxSize.
	MaxSize int
	// Skew is how far in the future a timestamp may lie; zero means
	// DefaultTokenSkew.
	Skew time.Duration
	// Location is the time zone the timestamps are written in, which
	// carry none; nil means UTC. The EC node writes its JVM's local time,
	// so a node running on Paris time needs Europe/Paris here.
	Location *time.Location
}

// NewToken returns a Token for issuer and secret with default limits,
// refusing an issuer that is empty or has "|", and a secret shorter than
// MinSecretLength.
func NewToken(issuer, secret string) (Token, error) {
	t := Token{Issuer: issuer, Secret: secret}
	return t, t.Validate()
}

// Validate checks the issuer and the secret's length.
func (t Token) Validate() error {
	if t.Issuer == "" || strings.Contains(t.Issuer, "|") {
		return fmt.Errorf("light: token issuer %q: empty or contains |", t.Issuer)
	}
	if len(t.Secret) < MinSecretLength {
		return fmt.Errorf("light: token secret of issuer %s: %d characters, at least %d needed", t.Issuer, len(t.Secret), MinSecretLength)
	}
	return nil
}

func (t Token) loc() *time.Location {
	if t.Location == nil {
		return time.UTC
	}
	return t.Location
}

// FormatTimestamp writes ts as a token timestamp, "yyyy-MM-dd HH:mm:ss SSS".
func (t Token) FormatTimestamp(ts time.Time) string {
	ts = ts.In(t.loc())
	return ts.Format(timestampLayout) + fmt.Sprintf(" %03d", ts.Nanosecond()/int(time.Millisecond))
}

func (t Token) parseTimestamp(s string) (time.Time, error) {
	if len(s) != len(timestampLayout)+4 || s[len(timestampLayout)] != ' ' {
		return time.Time{}, fmt.Errorf("timestamp %q: not yyyy-MM-dd HH:mm:ss SSS", s)
	}
	base, err := time.ParseInLocation(timestampLayout, s[:len(timestampLayout)], t.loc())
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	ms, err := strconv.Atoi(s[len(timestampLayout)+1:])
	if err != nil || ms < 0 || strings.ContainsAny(s[len(timestampLayout)+1:], "+-") {
		return time.Time{}, fmt.Errorf("timestamp %q: milliseconds not three digits", s)
	}
	return base.Add(time.Duration(ms) * time.Millisecond), nil
}

func (t Token) digest(id, ts string) []byte {
	sum := sha256.Sum256([]byte(id + "|" + t.Issuer + "|" + ts + "|" + t.Secret))
	return sum[:]
}

// Make returns the token carrying id, dated now. The id should pass
// ValidID (NewID's do); one that does not gives a token Parse refuses.
func (t Token) Make(id string, now time.Time) string {
	ts := t.FormatTimestamp(now)
	raw := t.Issuer + "|" + id + "|" + ts + "|" + base64.StdEncoding.EncodeToString(t.digest(id, ts))
	return base64.StdEncoding.EncodeToString([]byte(raw))
}

// Parse checks token at now and returns the message id it carries. Its
// error wraps one of the ErrToken* values, or is a configuration error
// when the Token has no secret or issuer.
func (t Token) Parse(token string, now time.Time) (string, error) {
	if t.Secret == "" || t.Issuer == "" {
		return "", errors.New("light: token: no issuer or secret configured")
	}
	maxSize := t.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultTokenMaxSize
	}
	if len(token) > maxSize {
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrTokenTooLarge, len(token), maxSize)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(token)
	if err != nil || len(token) == 0 {
		return "", fmt.Errorf("%w: not base64", ErrTokenMalformed)
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 {
		return "", fmt.Errorf("%w: %d parts, expected issuer|id|timestamp|digest", ErrTokenMalformed, len(parts))
	}
	issuer, id, ts, sum := parts[0], parts[1], parts[2], parts[3]
	if issuer != t.Issuer {
		return "", fmt.Errorf("%w: %q, expected %q", ErrTokenIssuer, truncate(issuer), t.Issuer)
	}
	if err := ValidID(id); err != nil {
		return "", fmt.Errorf("%w: id: %v", ErrTokenMalformed, err)
	}
	got, err := base64.StdEncoding.Strict().DecodeString(sum)
	if err != nil {
		return "", fmt.Errorf("%w: digest not base64", ErrTokenMalformed)
	}
	// The digest covers the timestamp as written, so it is checked
	// before the timestamp is read: a forged date is a digest fault.
	if subtle.ConstantTimeCompare(got, t.digest(id, ts)) != 1 {
		return "", ErrTokenDigest
	}
	at, err := t.parseTimestamp(ts)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrTokenMalformed, err)
	}
	maxAge, skew := t.MaxAge, t.Skew
	if maxAge <= 0 {
		maxAge = DefaultTokenMaxAge
	}
	if skew <= 0 {
		skew = DefaultTokenSkew
	}
	switch age := now.Sub(at); {
	case age > maxAge:
		return "", fmt.Errorf("%w: issued %s ago, at most %s", ErrTokenExpired, age.Round(time.Millisecond), maxAge)
	case -age > skew:
		return "", fmt.Errorf("%w: dated %s in the future", ErrTokenExpired, (-age).Round(time.Millisecond))
	}
	return id, nil
}
