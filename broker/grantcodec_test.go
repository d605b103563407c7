package broker

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sesame-id/sesame/broker/session"
	"github.com/sesame-id/sesame/internal/seal"
	"github.com/sesame-id/sesame/internal/store/memstore"
)

// A grant stored as a code record and read back keeps every field: each
// is filled by reflection, so a field added to grant and forgotten by its
// EncodeRecord or DecodeRecord fails here.
func TestGrantRecordEveryField(t *testing.T) {
	var in grant
	n := 0
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		n++
		switch v.Kind() {
		case reflect.String:
			v.SetString("v" + time.Duration(n).String())
		case reflect.Slice:
			v.Set(reflect.ValueOf([]string{"a" + time.Duration(n).String(), "b"}))
		case reflect.Struct:
			if v.Type() == reflect.TypeFor[time.Time]() {
				v.Set(reflect.ValueOf(time.Unix(1_700_000_000+int64(n), int64(n)).UTC()))
				return
			}
			for i := range v.NumField() {
				fill(v.Field(i))
			}
		default:
			t.Fatalf("no test value for kind %s: teach grantcodec.go and this test", v.Kind())
		}
	}
	fill(reflect.ValueOf(&in).Elem())

	box, err := seal.New([][]byte{[]byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	kv := memstore.New()
	defer kv.Close()
	s := session.New(kv, box, "ns:", time.Hour, true)
	ctx := context.Background()
	rec, err := s.Record("code", "secret", &in, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, rec); err != nil {
		t.Fatal(err)
	}
	var out grant
	if err := s.TakeRecord(ctx, "code", "secret", &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("grant record lost fields:\n in  %+v\n out %+v", in, out)
	}

	// A code or token an older broker sealed as JSON (a rolling upgrade)
	// still reads.
	plain, err := json.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	key := "ns:code:" + session.Digest("old")
	if err := kv.Put(ctx, key, box.Seal(plain, []byte(key)), time.Minute); err != nil {
		t.Fatal(err)
	}
	out = grant{}
	if err := s.TakeRecord(ctx, "code", "old", &out); err != nil {
		t.Fatalf("JSON grant: %v", err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("JSON grant read differently:\n in  %+v\n out %+v", in, out)
	}
}
