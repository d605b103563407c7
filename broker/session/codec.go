package session

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/sesame-id/sesame/broker/authreq"
)

// The session record is read at nearly every request of a login and
// written at most of them. Decoding it from JSON (reflection, field-name
// matching, one allocation per string and more) cost 15 times its AES-GCM
// opening; it is now a flat binary record, the fields in a fixed order:
//
//	version byte (codecV1), then each field: a string as uvarint length
//	and bytes, a bool as one byte, an int as a varint, a []string as a
//	uvarint count and strings, a time as a presence byte and, when set,
//	varint Unix seconds and uvarint nanoseconds (UTC), a pointer as a
//	presence byte and, when set, its fields.
//
// A record sealed by an older broker is JSON, whose first byte is '{':
// during a rolling upgrade both are read, and every write is binary.
// Adding a field to Session, Login, Trip, Served or authreq.Request means
// adding it here, at the end of its struct's list; TestCodecEveryField
// fails until then.

// codecV1 is the first byte of a binary session record; codecV2 that of
// one whose CSRF, SID, LoginID, Issued and Login.UpstreamIDToken are
// written as bytes where they are base64url (see encoder.b64), the only
// difference. Both are read; a session is written as v2. Other
// records (BinaryRecord, pending requests) stay v1.
const (
	codecV1 = 1
	codecV2 = 2
)

// errCodec is a binary record that does not decode: truncated, or written
// by a newer version.
var errCodec = errors.New("session: bad binary record")

// marshalSession encodes sess in the binary format.
func marshalSession(sess *Session) []byte { return marshalSessionAs(sess, codecV2) }

// marshalSessionAs encodes sess in the binary format of a version: v1 is
// what an older broker wrote.
func marshalSessionAs(sess *Session, version byte) []byte {
	e := encoder(make([]byte, 0, 1024))
	e = append(e, version)
	// v2 writes the random ids and the id_token as bytes (see b64).
	str64 := e.str
	if version == codecV2 {
		str64 = e.b64
	}
	e.str(string(sess.Step))
	str64(sess.CSRF)
	e.present(sess.Request != nil)
	if r := sess.Request; r != nil {
		e.str(r.ClientID)
		e.str(r.RedirectURI)
		e.str(r.State)
		e.str(r.Nonce)
		e.strs(r.Scopes)
		e.str(r.ACR)
		e.bool(r.ACREssential)
		e.str(r.CodeChallenge)
		e.strs(r.Prompt)
		e.int(r.MaxAge)
		e.strs(r.IDTokenClaims)
		e.strs(r.UserinfoClaims)
		e.str(r.IDPHint)
		e.str(r.UILocales)
		e.str(r.DPoPJKT)
	}
	e.str(sess.IdP)
	e.present(sess.Trip != nil)
	if t := sess.Trip; t != nil {
		e.str(t.State)
		e.str(t.URL)
		e.str(t.IdP)
		e.str(t.Issuer)
		e.str(t.Nonce)
		e.str(t.Verifier)
		e.str(t.ACR)
		e.time(t.Created)
	}
	e.str(sess.Banner)
	e.present(sess.Login != nil)
	if l := sess.Login; l != nil {
		e.str(l.IdP)
		id := &l.Identity
		e.str(id.GivenName)
		e.str(id.FamilyName)
		e.str(id.Birthdate)
		e.str(id.Gender)
		e.str(id.Birthplace)
		e.str(id.Birthcountry)
		e.str(id.Email)
		e.str(id.PreferredUsername)
		e.str(id.EIDAS)
		e.str(l.ACR)
		e.strs(l.AMR)
		e.time(l.AuthTime)
		str64(l.UpstreamIDToken)
		e.str(l.CivilRegistry)
	}
	e.bool(sess.Reused)
	e.time(sess.Created)
	str64(sess.SID)
	e.strs(sess.Clients)
	str64(sess.LoginID)
	str64(sess.Issued)
	e.time(sess.IssuedAt)
	e.present(sess.Served != nil)
	if s := sess.Served; s != nil {
		e.str(s.ClientID)
		e.str(s.RedirectURI)
		e.str(s.State)
	}
	e.strs(sess.Risk)
	e.str(sess.Lang)
	return e
}

// unmarshalSession decodes a session record of either format into sess.
func unmarshalSession(b []byte, sess *Session) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, sess)
	}
	if len(b) == 0 || (b[0] != codecV1 && b[0] != codecV2) {
		return errCodec
	}
	d := decoder{b: b[1:]}
	str64 := d.str
	if b[0] == codecV2 {
		str64 = d.b64
	}
	sess.Step = Step(d.str())
	sess.CSRF = str64()
	if d.present() {
		r := &authreq.Request{}
		r.ClientID = d.str()
		r.RedirectURI = d.str()
		r.State = d.str()
		r.Nonce = d.str()
		r.Scopes = d.strs()
		r.ACR = d.str()
		r.ACREssential = d.bool()
		r.CodeChallenge = d.str()
		r.Prompt = d.strs()
		r.MaxAge = d.int()
		r.IDTokenClaims = d.strs()
		r.UserinfoClaims = d.strs()
		r.IDPHint = d.str()
		r.UILocales = d.str()
		r.DPoPJKT = d.str()
		sess.Request = r
	}
	sess.IdP = d.str()
	if d.present() {
		t := &Trip{}
		t.State = d.str()
		t.URL = d.str()
		t.IdP = d.str()
		t.Issuer = d.str()
		t.Nonce = d.str()
		t.Verifier = d.str()
		t.ACR = d.str()
		t.Created = d.time()
		sess.Trip = t
	}
	sess.Banner = d.str()
	if d.present() {
		l := &Login{}
		l.IdP = d.str()
		id := &l.Identity
		id.GivenName = d.str()
		id.FamilyName = d.str()
		id.Birthdate = d.str()
		id.Gender = d.str()
		id.Birthplace = d.str()
		id.Birthcountry = d.str()
		id.Email = d.str()
		id.PreferredUsername = d.str()
		id.EIDAS = d.str()
		l.ACR = d.str()
		l.AMR = d.strs()
		l.AuthTime = d.time()
		l.UpstreamIDToken = str64()
		l.CivilRegistry = d.str()
		sess.Login = l
	}
	sess.Reused = d.bool()
	sess.Created = d.time()
	sess.SID = str64()
	sess.Clients = d.strs()
	sess.LoginID = str64()
	sess.Issued = str64()
	sess.IssuedAt = d.time()
	if d.present() {
		s := &Served{}
		s.ClientID = d.str()
		s.RedirectURI = d.str()
		s.State = d.str()
		sess.Served = s
	}
	sess.Risk = d.strs()
	sess.Lang = d.str()
	if d.bad || len(d.b) != 0 {
		return errCodec
	}
	return nil
}

// encoder appends fields to a record.
type encoder []byte

// Encoder writes the fields of a binary record for a type of another
// package (see BinaryRecord), in the session record's format.
type Encoder struct{ e encoder }

// Decoder reads the fields an Encoder wrote, in the same order. After a
// bad field the reads return zero values, and the record is refused as
// a whole (ErrCorrupt) once DecodeRecord returns.
type Decoder struct{ d decoder }

// BinaryRecord is a record value that encodes itself in the binary
// format: Record and the reads (GetRecord, TakeRecord, Token) use it
// instead of JSON; a JSON value an older broker wrote is still read. A
// field is added at the end of both methods; a record with fields a
// broker does not know is refused by it (ErrCorrupt), so a new field must
// not be written before every replica reads it.
type BinaryRecord interface {
	EncodeRecord(*Encoder)
	DecodeRecord(*Decoder)
}

// String, Strings, Bool, Int and Time write one field.
func (e *Encoder) String(s string)    { e.e.str(s) }
func (e *Encoder) Strings(v []string) { e.e.strs(v) }
func (e *Encoder) Bool(b bool)        { e.e.bool(b) }
func (e *Encoder) Int(i int)          { e.e.int(i) }
func (e *Encoder) Time(t time.Time)   { e.e.time(t) }
func (d *Decoder) String() string     { return d.d.str() }
func (d *Decoder) Strings() []string  { return d.d.strs() }
func (d *Decoder) Bool() bool         { return d.d.bool() }
func (d *Decoder) Int() int           { return d.d.int() }
func (d *Decoder) Time() time.Time    { return d.d.time() }

// marshalRecord encodes a BinaryRecord, version byte first.
func marshalRecord(r BinaryRecord) []byte {
	e := Encoder{e: make(encoder, 1, 512)}
	e.e[0] = codecV1
	r.EncodeRecord(&e)
	return e.e
}

// unmarshalRecord decodes a BinaryRecord's value, or the JSON an older
// broker wrote.
func unmarshalRecord(b []byte, r BinaryRecord) error {
	if len(b) > 0 && b[0] == '{' {
		return json.Unmarshal(b, r)
	}
	if len(b) == 0 || b[0] != codecV1 {
		return errCodec
	}
	d := Decoder{d: decoder{b: b[1:]}}
	r.DecodeRecord(&d)
	if d.d.bad || len(d.d.b) != 0 {
		return errCodec
	}
	return nil
}

func (e *encoder) str(s string) {
	*e = binary.AppendUvarint(*e, uint64(len(s)))
	*e = append(*e, s...)
}

// b64 writes a string of one to five base64url parts joined by dots (a
// compact JWS or JWE, a random id) as its parts' bytes, a quarter shorter
// than their text: the IdP's id_token, kept for its end_session's
// id_token_hint, is the largest field of a logged-in session. A first
// byte of 0 is a string kept as it is (empty, or not canonical base64url,
// which could not be written back alike); otherwise it is the number of
// parts.
func (e *encoder) b64(s string) {
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 5 {
		*e = append(*e, 0)
		e.str(s)
		return
	}
	mark := len(*e)
	*e = append(*e, byte(len(parts)))
	for _, part := range parts {
		// Strict refuses non-zero trailing bits; the length check, the
		// line breaks a decoder skips: what is left encodes back alike.
		raw, err := b64Strict.DecodeString(part)
		if err != nil || b64Strict.EncodedLen(len(raw)) != len(part) {
			*e = append((*e)[:mark], 0)
			e.str(s)
			return
		}
		e.str(string(raw))
	}
}

func (e *encoder) strs(v []string) {
	if v == nil {
		*e = append(*e, 0)
		return
	}
	// 0 is nil, n+1 is n strings: an empty list stays empty, not nil.
	*e = binary.AppendUvarint(*e, uint64(len(v))+1)
	for _, s := range v {
		e.str(s)
	}
}

func (e *encoder) bool(b bool) {
	if b {
		*e = append(*e, 1)
	} else {
		*e = append(*e, 0)
	}
}

func (e *encoder) present(b bool) { e.bool(b) }

func (e *encoder) int(i int) { *e = binary.AppendVarint(*e, int64(i)) }

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		*e = append(*e, 0)
		return
	}
	*e = append(*e, 1)
	*e = binary.AppendVarint(*e, t.Unix())
	*e = binary.AppendUvarint(*e, uint64(t.Nanosecond()))
}

// decoder reads fields from a record; the first error sticks (bad), the
// later reads return zero values.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// b64Strict is the alphabet of encoder.b64.
var b64Strict = base64.RawURLEncoding.Strict()

// b64 reads what encoder.b64 wrote.
func (d *decoder) b64() string {
	if d.bad || len(d.b) == 0 {
		d.bad = true
		return ""
	}
	n := d.b[0]
	d.b = d.b[1:]
	if n == 0 {
		return d.str()
	}
	if n > 5 {
		d.bad = true
		return ""
	}
	var out []byte
	for i := range int(n) {
		part := d.str()
		if i > 0 {
			out = append(out, '.')
		}
		out = base64.RawURLEncoding.AppendEncode(out, []byte(part))
	}
	return string(out)
}

func (d *decoder) strs() []string {
	n := d.uvarint()
	if d.bad || n == 0 {
		return nil
	}
	n--
	// Each string takes at least its length byte: a count beyond what is
	// left is a bad record, not an allocation to make.
	if n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.str()
	}
	return v
}

func (d *decoder) bool() bool {
	if d.bad || len(d.b) == 0 || d.b[0] > 1 {
		d.bad = true
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) present() bool { return d.bool() }

func (d *decoder) varint() int64 {
	if d.bad {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int { return int(d.varint()) }

func (d *decoder) time() time.Time {
	if !d.present() {
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	if d.bad || nsec >= 1e9 {
		d.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
