package session

import (
	"context"
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
