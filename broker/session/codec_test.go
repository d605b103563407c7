package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// filled returns a session whose every field, down through its pointers,
// holds a distinct non-zero value, so that a field the codec forgets
// shows in the round trip.
func filled(t *testing.T) *Session {
	t.Helper()
	n := 0
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		n++
		switch v.Kind() {
		case reflect.String:
			v.SetString("v" + string(rune('a'+n%26)) + time.Duration(n).String())
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int:
			v.SetInt(int64(-n))
		case reflect.Slice:
			s := reflect.MakeSlice(v.Type(), 2, 2)
			fill(s.Index(0))
			fill(s.Index(1))
			v.Set(s)
		case reflect.Pointer:
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem())
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				v.Set(reflect.ValueOf(time.Unix(1_700_000_000+int64(n), int64(n)).UTC()))
				return
			}
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() && v.Type().Field(i).Name != "ID" {
					fill(v.Field(i))
				}
			}
		default:
			t.Fatalf("filled: no value for kind %s: teach the codec and this test", v.Kind())
		}
	}
	sess := &Session{}
	fill(reflect.ValueOf(sess).Elem())
	return sess
}

func TestCodecEveryField(t *testing.T) {
	in := filled(t)
	b := marshalSession(in)
	out := &Session{}
	if err := unmarshalSession(b, out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip lost fields:\n in  %+v\n out %+v", in, out)
	}
	// Zero values, nil and empty lists keep their difference too.
	in = &Session{Step: StepAuthorize, Clients: []string{}}
	out = &Session{}
	if err := unmarshalSession(marshalSession(in), out); err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("zero session: %v\n in  %+v\n out %+v", err, in, out)
	}
}

func TestCodecReadsJSON(t *testing.T) {
	in := filled(t)
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := &Session{}
	if err := unmarshalSession(b, out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("JSON record read differently:\n in  %+v\n out %+v", in, out)
	}
}

func TestCodecRefusesBadRecords(t *testing.T) {
	b := marshalSession(filled(t))
	for i := range len(b) {
		if err := unmarshalSession(b[:i], &Session{}); err == nil {
			t.Fatalf("record truncated to %d of %d bytes decoded", i, len(b))
		}
	}
	for _, bad := range [][]byte{append(append([]byte(nil), b...), 0), {2, 0}, {codecV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if err := unmarshalSession(bad, &Session{}); err == nil {
			t.Fatalf("bad record %x decoded", bad)
		}
	}
}

// A session sealed as JSON by the broker before this format (a rolling
// upgrade) still loads, and its next write is binary.
func TestLoadsJSONSessionOfOlderBroker(t *testing.T) {
	s, kv := newStore(t, time.Hour, true)
	ctx := context.Background()
	sess := s.New()
	sess.Step, sess.IdP, sess.Clients = StepDone, "impots", []string{"sp"}
	plain, err := json.Marshal(sess)
	if err != nil {
		t.Fatal(err)
	}
	key := s.sessionKey(sess.ID)
	if err := kv.Put(ctx, key, s.box.Seal(plain, []byte(key)), time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, sess.ID)
	if err != nil {
		t.Fatalf("load of a JSON record: %v", err)
	}
	if got.Step != StepDone || got.IdP != "impots" || got.SID != sess.SID || got.CSRF != sess.CSRF || !got.Created.Equal(sess.Created) || len(got.Clients) != 1 {
		t.Fatalf("JSON record loaded as %+v", got)
	}
	if won, err := s.Advance(ctx, got, nil); err != nil || !won {
		t.Fatalf("advance after a JSON load: %v %v", won, err)
	}
	raw, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.box.Open(raw, []byte(key)); err != nil || p[0] != codecV2 {
		t.Fatalf("rewritten record is not binary: %v %q", err, p[:1])
	}
}

func TestPendingCookieRoundTrip(t *testing.T) {
	s, _ := newStore(t, time.Hour, true)
	full := filled(t)
	sess := s.NewPending(full.Request)
	sess.Banner, sess.Risk = full.Banner, full.Risk
	v, err := s.SealPending(sess)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.OpenPending(v)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sess) {
		t.Fatalf("pending round trip:\n in  %+v\n out %+v", sess, got)
	}
}

// A cookie sealed as JSON by an older broker (a citizen at the chooser
// during the upgrade) still opens.
func TestPendingCookieOfOlderBroker(t *testing.T) {
	s, _ := newStore(t, time.Hour, true)
	sess := s.NewPending(filled(t).Request)
	plain, err := json.Marshal(pending{ID: sess.ID, CSRF: sess.CSRF, SID: sess.SID, Request: sess.Request, Created: sess.Created, LoginID: sess.LoginID})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.OpenPending(base64.RawURLEncoding.EncodeToString(s.box.Seal(plain, s.pendingAAD())))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sess) {
		t.Fatalf("JSON pending cookie:\n in  %+v\n out %+v", sess, got)
	}
}

// The IdP's id_token and the random ids are stored as their parts'
// bytes, and read back as the very text they were, whatever it is.
func TestCodecB64(t *testing.T) {
	part := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + n)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	jws := part(36) + "." + part(400) + "." + part(64)
	for _, tc := range []struct {
		name, text string
		compact    bool
	}{
		{"JWS", jws, true},
		{"JWE", part(20) + ".." + part(12) + "." + part(300) + "." + part(16), true},
		{"random id", NewID(), true},
		{"empty", "", false},
		{"padded", part(36) + "." + part(400) + "=." + part(64), false},
		{"non-canonical bits", "AB." + part(40) + "." + part(40), false},
		{"newline", part(36) + "." + part(21) + "\n" + part(21) + "." + part(40), false},
		{"standard base64", part(36) + "." + part(40) + "+/." + part(40), false},
		{"six parts", jws + "." + part(8) + "." + part(8) + "." + part(8), false},
		{"text", "not base64!", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e encoder
			e.b64(tc.text)
			d := decoder{b: e}
			if got := d.b64(); d.bad || len(d.b) != 0 || got != tc.text {
				t.Fatalf("%q read back as %q (bad %v, %d bytes left)", tc.text, got, d.bad, len(d.b))
			}
			var plain encoder
			plain.str(tc.text)
			if saved := len(plain) - len(e); tc.compact && saved < len(tc.text)/5 {
				t.Errorf("%d bytes saved on %d", saved, len(tc.text))
			} else if !tc.compact && saved != -1 {
				t.Errorf("kept as text, yet %d bytes saved (want -1, the marker)", saved)
			}
			for n := range len(e) {
				d := decoder{b: e[:n]}
				if d.b64(); !d.bad {
					t.Fatalf("truncated to %d of %d bytes, read", n, len(e))
				}
			}
		})
	}
	// A real session with a real-looking id_token survives the record.
	in := filled(t)
	in.Login.UpstreamIDToken, in.CSRF, in.SID, in.LoginID = jws, NewID(), NewID()[:22], NewID()[:22]
	out := &Session{}
	if err := unmarshalSession(marshalSession(in), out); err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("session with an id_token: %v", err)
	}
	if v1, v2 := len(marshalSessionAs(in, codecV1)), len(marshalSession(in)); v1-v2 < len(jws)/5 {
		t.Errorf("v2 record %d bytes, v1 %d", v2, v1)
	}
}

// A session an older broker wrote (v1, ids and id_token as text) still
// reads.
func TestCodecReadsV1(t *testing.T) {
	in := filled(t)
	in.Login.UpstreamIDToken, in.CSRF = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", NewID()
	out := &Session{}
	if err := unmarshalSession(marshalSessionAs(in, codecV1), out); err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("v1 record: %v\n in  %+v\n out %+v", err, in, out)
	}
}
