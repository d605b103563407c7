package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sesame-id/sesame/internal/store"
)

// An access token is "<random>.<tag>". The tag names the tokens one
// session issued to one client: logout revokes them all with one marker
// per client, and checking a token reads its record and that marker in one
// round trip, in one Cluster slot. The tag is a hash of the session's sid
// and the client, so tokens of one citizen at two SPs share nothing.
const tagLen = 16

// tokenTag is the tag of the tokens a session issued to a client.
func tokenTag(sid, clientID string) string { return digest(sid + "\x00" + clientID)[:tagLen] }

func (s *Store) tokenKey(tag, token string) string { return s.ns + "{" + tag + "}at:" + digest(token) }
func (s *Store) revokedKey(tag string) string      { return s.ns + "{" + tag + "}revoked" }

// NewToken makes an access token for a client in a session (sid), and
// the sealed record of v to store under it.
func (s *Store) NewToken(sid, clientID string, v any, ttl time.Duration) (string, store.Entry, error) {
	tag := tokenTag(sid, clientID)
	token := NewID() + "." + tag
	e, err := s.entry(s.tokenKey(tag, token), v, ttl)
	return token, e, err
}

// TokenRef names a token's record without its secret, for a record that
// must be able to revoke it (the code that issued it).
func TokenRef(token string) string {
	_, tag, _ := strings.Cut(token, ".")
	return tag + ":" + digest(token)
}

// Token reads the record of an access token into v: ErrNotFound when it
// is unknown, expired, or revoked by its session's logout. One round trip.
func (s *Store) Token(ctx context.Context, token string, v any) error {
	_, tag, ok := strings.Cut(token, ".")
	if !ok || len(tag) != tagLen {
		return ErrNotFound
	}
	key := s.tokenKey(tag, token)
	vals, err := s.kv.GetMany(ctx, key, s.revokedKey(tag))
	if err != nil {
		return fmt.Errorf("session: read token: %w", err)
	}
	if vals[0] == nil || vals[1] != nil {
		return ErrNotFound
	}
	return s.open(ctx, key, vals[0], v)
}

// DeleteToken revokes one token named by TokenRef.
func (s *Store) DeleteToken(ctx context.Context, ref string) error {
	tag, d, ok := strings.Cut(ref, ":")
	if !ok {
		return nil
	}
	if err := s.kv.Delete(ctx, s.ns+"{"+tag+"}at:"+d); err != nil {
		return fmt.Errorf("session: delete token: %w", err)
	}
	return nil
}

// RevokeTokens returns the markers that revoke every access token the
// session sid issued to clients, to write with the session's deletion.
// They live as long as the longest token may.
func (s *Store) RevokeTokens(sid string, clients []string, ttl time.Duration) []store.Entry {
	var out []store.Entry
	for _, c := range clients {
		out = append(out, store.Entry{Key: s.revokedKey(tokenTag(sid, c)), Value: []byte("1"), TTL: ttl})
	}
	return out
}

// spentPrefix starts what a redeemed code's key keeps: the reference of
// the access token it was spent on. A sealed value never starts so (its
// first byte is the seal format's version, 0x01).
const spentPrefix = "spent:"

func (s *Store) codeKey(code string) string { return s.ns + "code:" + digest(code) }

// Code reads the grant of an authorization code into v without spending
// it, and returns the stored value for SpendCode to compare with. A code
// already redeemed returns spentOn, the reference of the access token it
// was spent on (see TokenRef), and ErrNotFound.
func (s *Store) Code(ctx context.Context, code string, v any) (raw []byte, spentOn string, err error) {
	key := s.codeKey(code)
	raw, err = s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, "", ErrNotFound
	case err != nil:
		return nil, "", fmt.Errorf("session: read code: %w", err)
	}
	if ref, spent := strings.CutPrefix(string(raw), spentPrefix); spent {
		return nil, ref, ErrNotFound
	}
	if err := s.open(ctx, key, raw, v); err != nil {
		return nil, "", err
	}
	return raw, "", nil
}

// SpendCode marks a code read by Code as spent on the access token ref,
// only if its key still holds raw, and writes records (the token's) in
// the same round trip: one write for the token step. It reports whether
// this request spent the code: of parallel redemptions, on any replicas,
// one wins. The records are written whatever the outcome, which is
// harmless: the loser's token is a secret nobody was given. The mark
// lives ttl (the token's life), so that a replay of the code within it
// can revoke the token.
func (s *Store) SpendCode(ctx context.Context, code string, raw []byte, ref string, ttl time.Duration, records ...store.Entry) (bool, error) {
	mark := store.Entry{Key: s.codeKey(code), Value: []byte(spentPrefix + ref), TTL: ttl}
	won, err := s.kv.Swap(ctx, raw, mark, records)
	if err != nil {
		return false, fmt.Errorf("session: spend code: %w", err)
	}
	return won, nil
}

// DropCode spends a code without a token: a redemption that failed its
// checks still uses it up.
func (s *Store) DropCode(ctx context.Context, code string) error {
	if err := s.kv.Delete(ctx, s.codeKey(code)); err != nil {
		return fmt.Errorf("session: drop code: %w", err)
	}
	return nil
}
