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
	if p, err := s.box.Open(raw, []byte(key)); err != nil || p[0] != codecV1 {
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
