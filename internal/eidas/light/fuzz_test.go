package light

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// The seed corpora under testdata/fuzz/<Fuzz...>/ run in every `go test`;
// `go test -fuzz FuzzParseRequest ./internal/eidas/light` explores further.

// FuzzTokenParse: Parse never panics, fails only with its sentinels, and
// accepts nothing whose id it could not have made.
func FuzzTokenParse(f *testing.F) {
	tok := Token{Issuer: IssuerConnectorRequest, Secret: testSecret}
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	f.Add(tok.Make("_abc", now))
	f.Add(czNIC.token)
	f.Add("")
	f.Add("fA==")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := tok.Parse(s, now)
		if err != nil {
			for _, e := range []error{ErrTokenTooLarge, ErrTokenMalformed, ErrTokenIssuer, ErrTokenDigest, ErrTokenExpired} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if ValidID(id) != nil {
			t.Fatalf("accepted invalid id %q", id)
		}
	})
}

// FuzzParseRequest: ParseRequest never panics, and what it accepts
// marshals and parses back to the same request.
func FuzzParseRequest(f *testing.F) {
	if b, err := MarshalRequest(sampleRequest()); err == nil {
		f.Add(b)
	}
	f.Add([]byte(reqHead + reqBody + `</lightRequest>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FieldError: %v", err)
			}
			return
		}
		out, err := MarshalRequest(r)
		if err != nil {
			t.Fatalf("accepted request does not marshal: %v", err)
		}
		again, err := ParseRequest(out)
		if err != nil {
			t.Fatalf("marshalled request does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", r, again)
		}
	})
}

// FuzzParseResponse is FuzzParseRequest for responses.
func FuzzParseResponse(f *testing.F) {
	if b, err := MarshalResponse(sampleResponse()); err == nil {
		f.Add(b)
	}
	f.Add([]byte(respHead + respIDs + respOK + `</lightResponse>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResponse(b)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a *FieldError: %v", err)
			}
			return
		}
		out, err := MarshalResponse(r)
		if err != nil {
			t.Fatalf("accepted response does not marshal: %v", err)
		}
		again, err := ParseResponse(out)
		if err != nil {
			t.Fatalf("marshalled response does not parse: %v\n%s", err, out)
		}
		if r.Status.StatusCode == "" && !r.Status.Failure {
			r.Status.StatusCode = StatusSuccess // Marshal writes the default
		}
		if !reflect.DeepEqual(r, again) {
			t.Fatalf("round trip changed the response:\n%+v\n%+v", r, again)
		}
	})
}
