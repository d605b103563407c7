package civilregistry_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/providers/civilregistry"
)

// ParseRequest takes any bytes: it never panics, and what it accepts has
// every required claim, bounded, and reads back the same once re-encoded.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"given_name":"Angela Claire Louise","family_name":"Dubois","birthdate":"1962-08-24","gender":"female","birthplace":"75107","birthcountry":"99100"}`))
	f.Add([]byte(`{"given_name":"Klaus","family_name":"Müller","birthdate":"1970-06-21","gender":"male","birthcountry":"99109"}`))
	f.Add([]byte(`{"given_name":"A","x":1}`))
	f.Add([]byte(`{}{}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("{\"given_name\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := civilregistry.ParseRequest(raw)
		if err != nil {
			if strings.Contains(err.Error(), string(raw)) && len(raw) > 8 {
				t.Fatalf("the error echoes the input: %v", err)
			}
			return
		}
		if p.GivenName == "" || p.FamilyName == "" || p.Birthdate == "" || p.Gender == "" || p.Birthcountry == "" {
			t.Fatalf("accepted without a required claim: %+v", p)
		}
		again, _ := json.Marshal(p)
		q, err := civilregistry.ParseRequest(again)
		if err != nil || q != p {
			t.Fatalf("re-encoded %+v does not read back: %v", p, err)
		}
	})
}
