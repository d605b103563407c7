package civilregistry_test

import (
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker/civilregistry"
)

// ParseResponse takes any registry answer: it never panics, only a valid
// pivot comes back as found or corrected, and no error echoes the answer.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`{"status":"found","identity":{"given_name":"Angela Claire Louise","family_name":"Dubois","birthdate":"1962-08-24","gender":"female","birthplace":"75107","birthcountry":"99100"}}`))
	f.Add([]byte(`{"status":"found","identity":{"given_name":"Sophie","family_name":"Dubois","birthdate":"1962-08-24","gender":"female","birthplace":"75107","birthcountry":"99100"}}`))
	f.Add([]byte(`{"status":"not_found"}`))
	f.Add([]byte(`{"status":"deceased","identity":null}`))
	f.Add([]byte(`{"status":"found","identity":{"given_name":"<b>"}}`))
	f.Add([]byte(`{"status":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		res, err := civilregistry.ParseResponse(raw, angela)
		if err != nil {
			if len(raw) > 12 && strings.Contains(err.Error(), string(raw)) {
				t.Fatalf("the error echoes the answer: %v", err)
			}
			return
		}
		switch res.Status {
		case civilregistry.Found:
			if res.Pivot != angela {
				t.Fatalf("found as another pivot: %+v", res.Pivot)
			}
		case civilregistry.Corrected:
			if res.Pivot == angela || res.Pivot.Validate() != nil {
				t.Fatalf("corrected to %+v", res.Pivot)
			}
		case civilregistry.NotFound, civilregistry.Deceased:
			if res.Pivot != (civilregistry.Result{}).Pivot {
				t.Fatalf("%s with a pivot", res.Status)
			}
		default:
			t.Fatalf("status %q", res.Status)
		}
	})
}
