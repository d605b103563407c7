// Package session keeps the broker's per-browser login state and its
// one-time records (upstream trips, codes, access tokens) in a store.Store.
// Every value is sealed with AES-GCM bound to its key, and every key that
// names a secret (session id, code, token, state) holds only a hash of it,
// so a store dump gives nothing usable.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sesame-id/sesame/broker/authreq"
	"github.com/sesame-id/sesame/broker/identity"
	"github.com/sesame-id/sesame/internal/seal"
	"github.com/sesame-id/sesame/internal/store"
)

// Step is where a browser is in the login flow. Each handler checks the
// step before it, so no step can be skipped or replayed.
type Step string

// The steps, in order.
const (
	StepAuthorize     Step = "authorize"     // SP request validated, chooser next
	StepUpstream      Step = "upstream"      // sent to an IdP, callback next
	StepAuthenticated Step = "authenticated" // identity known, consent next
	StepDone          Step = "done"          // code issued; the login stays for SSO and logout
	// StepEnded marks a session ended by logout, for a minute: a
	// tombstone that makes the logout single use (see End). It serves
	// nothing; loading it is as if there were no session.
	StepEnded Step = "ended"
)

// endedTTL is how long a logout's tombstone stays.
const endedTTL = time.Minute

// Session is one browser's state on one platform.
type Session struct {
	// ID is the cookie value; it is never stored, only its hash.
	ID      string           `json:"-"`
	Step    Step             `json:"step"`
	CSRF    string           `json:"csrf"`
	Request *authreq.Request `json:"req,omitempty"`
	// IdP is the provider of the trip under way.
	IdP string `json:"idp,omitempty"`
	// Trip is the trip to the IdP under way. It lives in the session, so
	// the callback's single take of the session also consumes the trip.
	Trip *Trip `json:"trip,omitempty"`
	// Banner is a message for the chooser after an IdP error (a code from
	// our catalogue, never upstream text).
	Banner string `json:"banner,omitempty"`
	Login  *Login `json:"login,omitempty"`
	// Reused marks a request served from an earlier login (SSO): the SP
	// gets the level it asked for, not more, so an eidas3 login reused
	// at eidas2 says eidas2.
	Reused bool `json:"reused,omitempty"`
	// Created is when the session began; with a non-sliding TTL it bounds
	// the session's whole life.
	Created time.Time `json:"created"`
	// SID names the session in id_tokens and logout tokens. Unlike ID it
	// survives rotation and is no secret.
	SID string `json:"sid"`
	// Clients are the SPs that got a code in this session: the ones to
	// notify by back-channel logout.
	Clients []string `json:"clients,omitempty"`
	// LoginID joins the audit events of the authorization request under
	// way (see internal/audit); a new one for each request.
	LoginID string `json:"lid,omitempty"`
	// Issued is the code of the request just served (Served says where it
	// went), so that the loser of a race on the consent step (a double
	// click) sends the browser where the winner did, and no second code
	// exists. A broker before this one kept the whole redirect here.
	Issued   string    `json:"issued,omitempty"`
	IssuedAt time.Time `json:"issued_at,omitzero"`
	// Served is the last request this session answered (its SP,
	// redirect_uri and state), kept after the request itself is dropped,
	// so that the Back button after a login leads back to that SP rather
	// than to an error page.
	Served *Served `json:"served,omitempty"`
	// Risk are the reasons the request under way was found suspicious
	// (broker/risk codes); empty: it was not. Assessed at /authorize,
	// kept sealed here so the chooser, the choice and the callback apply
	// the same verdict without asking again.
	Risk []string `json:"risk,omitempty"`
	// Lang is the language the last request served asked for (its
	// ui_locales, matched to fr or en; "" for none), kept once the
	// request is dropped so that the pages after it, logout's, use it.
	Lang string `json:"lang,omitempty"`

	// raw is the sealed value as loaded, the "prev" of the compare-and-set
	// that makes each step single use.
	raw []byte
	// pending marks a session that exists only in its sealed cookie; its
	// first Advance creates it only if its id is free.
	pending bool
}

// Login is an authentication done at an IdP.
type Login struct {
	IdP      string            `json:"idp"`
	Identity identity.Identity `json:"identity"`
	ACR      string            `json:"acr"`
	AMR      []string          `json:"amr,omitempty"`
	AuthTime time.Time         `json:"auth_time"`
	// UpstreamIDToken is kept as id_token_hint for the IdP's end_session.
	UpstreamIDToken string `json:"up_idt,omitempty"`
	// CivilRegistry is the civil registry's outcome for Identity: found,
	// corrected (Identity is then the registry's), or unavailable (let
	// through by the outage policy); empty when it was not asked.
	CivilRegistry string `json:"rnipp,omitempty"`
}

// Served is what the Back button after a login needs to lead back to the
// SP: where the answer went, and the state it carried. The redirect_uri
// was checked at /authorize.
type Served struct {
	ClientID    string `json:"cid"`
	RedirectURI string `json:"ru"`
	State       string `json:"state,omitempty"`
}

// Trip is one trip to an IdP: what the callback must find to accept it.
type Trip struct {
	// State is the hash of the state sent to the IdP.
	State string `json:"state"`
	// URL is where the trip sent the browser, for the loser of a race on
	// the choice (a double click) to follow the winner.
	URL      string    `json:"url,omitempty"`
	IdP      string    `json:"idp"`
	Issuer   string    `json:"iss"`
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"`
	ACR      string    `json:"acr"`
	Created  time.Time `json:"created"`
}

// Errors a handler maps to pages.
var (
	// ErrNotFound: no session, an expired one, or a used record.
	ErrNotFound = errors.New("session: not found")
	// ErrCorrupt: a value that does not open or decode; it has been deleted.
	ErrCorrupt = errors.New("session: corrupt value")
)

// Store is the typed, sealed view of a store.Store for one platform.
type Store struct {
	kv  store.Store
	box *seal.Box
	// ns keeps platforms apart: standard and "+" never share a key.
	ns string
	// ttl is the session lifetime; sliding extends it on every save.
	ttl     time.Duration
	sliding bool
}

// New makes a platform's session store.
func New(kv store.Store, box *seal.Box, namespace string, ttl time.Duration, sliding bool) *Store {
	return &Store{kv: kv, box: box, ns: namespace, ttl: ttl, sliding: sliding}
}

// NewID returns a 256-bit random identifier, for session ids, codes,
// tokens, states and CSRF tokens alike.
func NewID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Errorf("crypto/rand failed: %w", err)) // the OS RNG never fails on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// digest hashes a secret for use in a key.
func digest(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// sessionKey puts the hashed id in a Cluster hash tag, so that keys added
// for a session later land in its slot.
func (s *Store) sessionKey(id string) string { return s.ns + "{" + digest(id) + "}:sess" }

// New starts a fresh session (not yet saved).
func (s *Store) New() *Session {
	return &Session{ID: NewID(), CSRF: NewID(), SID: NewID()[:22], Created: time.Now().UTC()}
}

// Load returns the session for a cookie value.
func (s *Store) Load(ctx context.Context, id string) (*Session, error) {
	if id == "" || len(id) > 128 {
		return nil, ErrNotFound
	}
	sess := &Session{}
	raw, err := s.get(ctx, s.sessionKey(id), sess, false)
	if err != nil {
		return nil, err
	}
	if (!s.sliding && time.Since(sess.Created) > s.ttl) || sess.Step == StepEnded {
		return nil, ErrNotFound
	}
	sess.ID, sess.raw = id, raw
	return sess, nil
}

// Advance moves a session to its next step only if nobody else did since
// it was loaded (compare-and-set on the sealed value), writing records and
// deleting the sessions in gone in the same round trip; a session not yet
// stored (a pending request) is created only if its id is still free. It
// reports whether this request won: of N parallel requests carrying one
// session, on any replicas, exactly one does. The records of a loser are
// written too, so they must be unknown to anyone (a fresh code).
func (s *Store) Advance(ctx context.Context, sess *Session, records []store.Entry, gone ...string) (bool, error) {
	e, err := s.sessionEntry(sess)
	if err != nil {
		return false, err
	}
	var deletes []string
	for _, id := range gone {
		if id != sess.ID {
			deletes = append(deletes, s.sessionKey(id))
		}
	}
	prev := sess.raw
	if sess.pending {
		prev = nil
	} else if prev == nil {
		return false, errors.New("session: advance of a session that was not loaded")
	}
	won, err := s.kv.Swap(ctx, prev, e, records, deletes...)
	if err != nil {
		return false, fmt.Errorf("session: advance: %w", err)
	}
	if won {
		sess.raw, sess.pending = e.Value, false
	}
	return won, nil
}

// sessionEntry seals the session under its key with what is left of its
// life.
func (s *Store) sessionEntry(sess *Session) (store.Entry, error) {
	ttl := s.ttl
	if !s.sliding {
		ttl = s.ttl - time.Since(sess.Created)
		if ttl <= 0 {
			return store.Entry{}, ErrNotFound
		}
	}
	return s.entry(s.sessionKey(sess.ID), sess, ttl)
}

// Save writes the session. A sliding session gets a full TTL again; a fixed
// one keeps only what is left of its life.
func (s *Store) Save(ctx context.Context, sess *Session) error {
	return s.Commit(ctx, sess, nil)
}

// Commit writes the session together with records (see Record) and
// deletes the sessions named in gone, in one round trip.
func (s *Store) Commit(ctx context.Context, sess *Session, records []store.Entry, gone ...string) error {
	e, err := s.sessionEntry(sess)
	if err != nil {
		return err
	}
	var deletes []string
	for _, id := range gone {
		deletes = append(deletes, s.sessionKey(id))
	}
	if err := s.kv.Write(ctx, append([]store.Entry{e}, records...), deletes...); err != nil {
		return fmt.Errorf("session: write: %w", err)
	}
	sess.raw, sess.pending = e.Value, false
	return nil
}

// Take reads and deletes a session at once: of two parallel requests with
// one session (a replayed IdP callback), only one gets it.
func (s *Store) Take(ctx context.Context, id string) (*Session, error) {
	if id == "" || len(id) > 128 {
		return nil, ErrNotFound
	}
	sess := &Session{}
	if _, err := s.get(ctx, s.sessionKey(id), sess, true); err != nil {
		return nil, err
	}
	if (!s.sliding && time.Since(sess.Created) > s.ttl) || sess.Step == StepEnded {
		return nil, ErrNotFound
	}
	sess.ID = id
	return sess, nil
}

// Rotate gives the session a new id, as after authentication, so an id
// planted before login is worthless after it.
//
// records, when set, makes the records to write with the rotated session
// (they may name its new id).
func (s *Store) Rotate(ctx context.Context, sess *Session, records func(*Session) []store.Entry) error {
	old := sess.ID
	sess.ID = NewID()
	sess.CSRF = NewID()
	var recs []store.Entry
	if records != nil {
		recs = records(sess)
	}
	return s.Commit(ctx, sess, recs, old)
}

// End ends a session by logout only if nobody changed it since it was
// loaded, writing records in the same round trip, and reports whether
// this request did: of parallel logouts of one session, on any replicas,
// one wins, so SPs are told once. The session becomes a short-lived
// tombstone (StepEnded) that serves nothing.
func (s *Store) End(ctx context.Context, sess *Session, records ...store.Entry) (bool, error) {
	if sess.raw == nil {
		return false, errors.New("session: end of a session that was not loaded")
	}
	e, err := s.entry(s.sessionKey(sess.ID), &Session{Step: StepEnded, SID: sess.SID, Created: sess.Created}, endedTTL)
	if err != nil {
		return false, err
	}
	won, err := s.kv.Swap(ctx, sess.raw, e, records)
	if err != nil {
		return false, fmt.Errorf("session: end: %w", err)
	}
	return won, nil
}

// Destroy deletes a session and writes records in the same round trip.
func (s *Store) Destroy(ctx context.Context, id string, records ...store.Entry) error {
	if err := s.kv.Write(ctx, records, s.sessionKey(id)); err != nil {
		return fmt.Errorf("session: delete: %w", err)
	}
	return nil
}

// Record seals a one-time record (code, token, logout) for Commit or
// Destroy, stored under the hash of its secret in namespace kind.
func (s *Store) Record(kind, secret string, v any, ttl time.Duration) (store.Entry, error) {
	return s.entry(s.ns+kind+":"+digest(secret), v, ttl)
}

// Marker is a plain (unsealed) record naming another by its digest.
func (s *Store) Marker(kind, secret, value string, ttl time.Duration) store.Entry {
	return store.Entry{Key: s.ns + kind + ":" + digest(secret), Value: []byte(value), TTL: ttl}
}

// Write stores records prepared with Record or Marker in one round trip.
func (s *Store) Write(ctx context.Context, records ...store.Entry) error {
	if err := s.kv.Write(ctx, records); err != nil {
		return fmt.Errorf("session: write: %w", err)
	}
	return nil
}

// GetRecord reads a record without consuming it (access tokens).
func (s *Store) GetRecord(ctx context.Context, kind, secret string, v any) error {
	_, err := s.get(ctx, s.ns+kind+":"+digest(secret), v, false)
	return err
}

// TakeRecord consumes a record atomically (codes, logout states).
func (s *Store) TakeRecord(ctx context.Context, kind, secret string, v any) error {
	_, err := s.get(ctx, s.ns+kind+":"+digest(secret), v, true)
	return err
}

// AddMarker stores a marker only if absent (jti replay, one-time use).
func (s *Store) AddMarker(ctx context.Context, kind, secret string, value string, ttl time.Duration) (bool, error) {
	ok, err := s.kv.Add(ctx, s.ns+kind+":"+digest(secret), []byte(value), ttl)
	if err != nil {
		return false, fmt.Errorf("session: add %s: %w", kind, err)
	}
	return ok, nil
}

// AddMarkers stores markers made with Marker, each only if absent, in one
// round trip, and reports which were stored.
func (s *Store) AddMarkers(ctx context.Context, markers ...store.Entry) ([]bool, error) {
	ok, err := s.kv.AddAll(ctx, markers)
	if err != nil {
		return nil, fmt.Errorf("session: add markers: %w", err)
	}
	return ok, nil
}

// GetMarker reads a marker stored by AddMarker.
func (s *Store) GetMarker(ctx context.Context, kind, secret string) (string, error) {
	v, err := s.kv.Get(ctx, s.ns+kind+":"+digest(secret))
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("session: get %s: %w", kind, err)
	}
	return string(v), nil
}

// Digest exposes the key hash, so a record can name another (the access
// token a code issued) without holding the secret.
func Digest(secret string) string { return digest(secret) }

// DeleteDigest removes a record named by its digest.
func (s *Store) DeleteDigest(ctx context.Context, kind, d string) error {
	if err := s.kv.Delete(ctx, s.ns+kind+":"+d); err != nil {
		return fmt.Errorf("session: delete %s: %w", kind, err)
	}
	return nil
}

// entry seals v under key, bound to it.
func (s *Store) entry(key string, v any, ttl time.Duration) (store.Entry, error) {
	var plain []byte
	if sess, ok := v.(*Session); ok {
		plain = marshalSession(sess)
	} else if r, ok := v.(BinaryRecord); ok {
		plain = marshalRecord(r)
	} else {
		var err error
		if plain, err = json.Marshal(v); err != nil {
			return store.Entry{}, fmt.Errorf("session: encode: %w", err)
		}
	}
	return store.Entry{Key: key, Value: s.box.Seal(plain, []byte(key)), TTL: ttl}, nil
}

func (s *Store) get(ctx context.Context, key string, v any, take bool) ([]byte, error) {
	var raw []byte
	var err error
	if take {
		raw, err = s.kv.Take(ctx, key)
	} else {
		raw, err = s.kv.Get(ctx, key)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: read: %w", err)
	}
	if err := s.open(ctx, key, raw, v); err != nil {
		return nil, err
	}
	return raw, nil
}

// open unseals a value read under key into v.
func (s *Store) open(ctx context.Context, key string, raw []byte, v any) error {
	plain, err := s.box.Open(raw, []byte(key))
	if err == nil {
		if sess, ok := v.(*Session); ok {
			err = unmarshalSession(plain, sess)
		} else if r, ok := v.(BinaryRecord); ok {
			err = unmarshalRecord(plain, r)
		} else {
			err = json.Unmarshal(plain, v)
		}
	}
	if err != nil {
		// A value we cannot read (old format, foreign key, garbage) is
		// dropped so it cannot wedge the browser in an error loop.
		_ = s.kv.Delete(ctx, key)
		return ErrCorrupt
	}
	return nil
}

// upstreamKey names the index entry from an IdP's session (by its sid, or
// by the citizen's sub there) to the broker session it logged in, for the
// IdP's back-channel logout. It holds the hash of the session id, never
// the id.
func (s *Store) upstreamKey(idp, kind, value string) string {
	return s.ns + "upstream:" + digest(idp+"\x00"+kind+"\x00"+value)
}

// UpstreamIndex returns the index entries of a login at an IdP, to write
// with the session: one by the IdP's sid when it gave one, one by its sub
// (the most recent session of that citizen at that IdP). They live as
// long as a fixed session, and 12 h on a sliding platform, whose sessions
// an index cannot follow for ever.
func (s *Store) UpstreamIndex(sess *Session, idp, sid, sub string) []store.Entry {
	ttl := s.ttl
	if s.sliding {
		ttl = max(ttl, 12*time.Hour)
	}
	d := []byte(digest(sess.ID))
	out := []store.Entry{{Key: s.upstreamKey(idp, "sub", sub), Value: d, TTL: ttl}}
	if sid != "" {
		out = append(out, store.Entry{Key: s.upstreamKey(idp, "sid", sid), Value: d, TTL: ttl})
	}
	return out
}

// TakeUpstream takes the session an IdP's logout names, by sid when given,
// else by sub, or reports ErrNotFound.
func (s *Store) TakeUpstream(ctx context.Context, idp, sid, sub string) (*Session, error) {
	kind, value := "sub", sub
	if sid != "" {
		kind, value = "sid", sid
	}
	d, err := s.kv.Take(ctx, s.upstreamKey(idp, kind, value))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: read upstream index: %w", err)
	}
	sess := &Session{}
	if _, err := s.get(ctx, s.ns+"{"+string(d)+"}:sess", sess, true); err != nil {
		return nil, err
	}
	return sess, nil
}
