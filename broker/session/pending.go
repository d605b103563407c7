package session

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	"github.com/sesame-id/sesame/broker/authreq"
)

// PendingTTL bounds how long an authorization request may wait at the
// chooser.
const PendingTTL = 15 * time.Minute

// MaxPendingCookie is the largest sealed request kept in a cookie;
// browsers keep 4 KiB per cookie, name and attributes included. A larger
// request is stored server-side instead.
const MaxPendingCookie = 3800

// pending is an authorization request waiting for the citizen to choose
// an IdP. It lives in a sealed cookie, not in the store, so that an
// authorization request costs no server state until the citizen acts: a
// flood of /authorize fills nothing. Its id becomes the session's at the
// choice, where creating the session only if that id is free makes the
// choice single use.
//
// This struct is the JSON an older broker sealed in the cookie, still
// read during an upgrade; the cookie is now binary (marshalPending).
type pending struct {
	ID      string           `json:"id"`
	CSRF    string           `json:"csrf"`
	SID     string           `json:"sid"`
	Request *authreq.Request `json:"req"`
	Created time.Time        `json:"c"`
	Banner  string           `json:"b,omitempty"`
	LoginID string           `json:"lid,omitempty"`
	Risk    []string         `json:"risk,omitempty"`
}

// ErrPendingTooLarge: the request does not fit in a cookie.
var ErrPendingTooLarge = errors.New("session: pending request too large for a cookie")

// NewPending starts the session of a new authorization request, at the
// chooser step, not yet stored.
func (s *Store) NewPending(req *authreq.Request) *Session {
	sess := s.New()
	sess.Step, sess.Request, sess.pending = StepAuthorize, req, true
	sess.LoginID = NewLoginID()
	return sess
}

// pendingAAD binds a sealed request to this platform's namespace, so a
// cookie of another platform does not open here.
func (s *Store) pendingAAD() []byte { return []byte("pending:" + s.ns) }

// SealPending returns the cookie value holding a session that has not
// been stored yet (see NewPending).
func (s *Store) SealPending(sess *Session) (string, error) {
	if !sess.pending {
		return "", errors.New("session: a stored session is not pending")
	}
	plain := marshalPending(sess)
	v := base64.RawURLEncoding.EncodeToString(s.box.Seal(plain, s.pendingAAD()))
	if len(v) > MaxPendingCookie {
		return "", ErrPendingTooLarge
	}
	return v, nil
}

// OpenPending returns the not-yet-stored session a cookie holds, or
// ErrNotFound when it is absent, forged, of another platform or expired.
func (s *Store) OpenPending(value string) (*Session, error) {
	if value == "" || len(value) > MaxPendingCookie {
		return nil, ErrNotFound
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return nil, ErrNotFound
	}
	plain, err := s.box.Open(raw, s.pendingAAD())
	if err != nil {
		return nil, ErrNotFound
	}
	sess, err := unmarshalPending(plain)
	if err != nil || sess.Request == nil || sess.ID == "" || time.Since(sess.Created) > PendingTTL {
		return nil, ErrNotFound
	}
	return sess, nil
}

// marshalPending encodes what a pending session holds in the binary
// format of a session record (see codec.go), preceded by its id.
func marshalPending(sess *Session) []byte {
	var e encoder = []byte{codecV1}
	e.str(sess.ID)
	return append(e, marshalSession(&Session{CSRF: sess.CSRF, SID: sess.SID, Request: sess.Request, Created: sess.Created,
		Banner: sess.Banner, LoginID: sess.LoginID, Risk: sess.Risk})...)
}

// unmarshalPending decodes a pending cookie's plaintext: binary, or the
// JSON of an older broker (a request begun before an upgrade).
func unmarshalPending(plain []byte) (*Session, error) {
	sess := &Session{}
	if len(plain) > 0 && plain[0] == '{' {
		var p pending
		if err := json.Unmarshal(plain, &p); err != nil {
			return nil, err
		}
		sess = &Session{ID: p.ID, CSRF: p.CSRF, SID: p.SID, Request: p.Request, Created: p.Created, Banner: p.Banner, LoginID: p.LoginID, Risk: p.Risk}
	} else {
		if len(plain) == 0 || plain[0] != codecV1 {
			return nil, errCodec
		}
		d := decoder{b: plain[1:]}
		id := d.str()
		if d.bad {
			return nil, errCodec
		}
		if err := unmarshalSession(d.b, sess); err != nil {
			return nil, err
		}
		if sess.Step != "" || sess.IdP != "" || sess.Trip != nil || sess.Login != nil {
			return nil, errCodec // not a pending session's fields
		}
		sess.ID = id
	}
	sess.Step, sess.pending = StepAuthorize, true
	return sess, nil
}

// NewLoginID names one login for the audit trail: random, naming no one.
func NewLoginID() string { return NewID()[:22] }

// Pending reports whether the session exists only in its sealed cookie,
// not yet in the store.
func (s *Session) Pending() bool { return s.pending }
