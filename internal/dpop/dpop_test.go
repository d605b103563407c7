package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The request every table case is checked against.
const (
	testMethod = "POST"
	testURL    = "https://broker.example/token"
	testToken  = "at-0123456789"
)

// testNow is fixed so that iat cases are exact, and far from a bucket edge.
var testNow = time.Unix(1_750_000_000, 0)

var (
	keysOnce        sync.Once
	ecKey, otherKey *ecdsa.PrivateKey
	rsaKey          *rsa.PrivateKey
	edKey           ed25519.PrivateKey
)

// testKeys generates the keys once: RSA 2048 costs a noticeable fraction of
// a second on a shared machine.
func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if otherKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

func ath(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// forge describes one proof, good by default; each table case changes one
// thing. Every proof is signed by go-jose, so a case fails on the check it
// is named after and not on a malformed JWS (alg none aside: go-jose has no
// such signer, and forgeNone builds that one).
type forge struct {
	key    any                     // signing key; nil means ecKey
	alg    jose.SignatureAlgorithm // "" means ES256
	typ    string                  // "" means dpop+jwt; "-" leaves typ out
	noJWK  bool                    // do not embed the signing key's jwk
	jwk    any                     // put this in the jwk header instead
	claims map[string]any          // merged over the good claims; nil deletes
}

func goodClaims() map[string]any {
	return map[string]any{
		"jti": "e1j3V_bKic8-LAEB", "htm": testMethod, "htu": testURL,
		"iat": testNow.Unix(), "ath": ath(testToken),
	}
}

func (f forge) sign(t testing.TB) string {
	t.Helper()
	testKeys(t)
	key, alg := f.key, f.alg
	if key == nil {
		key = ecKey
	}
	if alg == "" {
		alg = jose.ES256
	}
	opts := &jose.SignerOptions{EmbedJWK: !f.noJWK && f.jwk == nil}
	switch f.typ {
	case "":
		opts.WithType(JWTType)
	case "-":
	default:
		opts.WithType(jose.ContentType(f.typ))
	}
	if f.jwk != nil {
		opts.WithHeader("jwk", f.jwk)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(f.payload(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f forge) payload(t testing.TB) []byte {
	c := goodClaims()
	for k, v := range f.claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// forgeNone builds an unsigned proof (alg none) with a valid-looking jwk:
// the attack go-jose will not help with, so it is assembled here.
func forgeNone(t testing.TB) string {
	testKeys(t)
	jwk, err := json.Marshal(jose.JSONWebKey{Key: &ecKey.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	hdr := `{"alg":"none","typ":"dpop+jwt","jwk":` + string(jwk) + `}`
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(hdr)) + "." + enc(forge{}.payload(t)) + "."
}

func goodCheck() Check {
	return Check{Method: testMethod, URL: testURL, AccessToken: testToken, Now: testNow}
}

func TestVerifyValid(t *testing.T) {
	testKeys(t)
	p, err := Verify(forge{claims: map[string]any{"nonce": "n-1"}}.sign(t), goodCheck())
	if err != nil {
		t.Fatalf("a good proof was refused: %v", err)
	}
	want, err := Thumbprint(jose.JSONWebKey{Key: &ecKey.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if p.JKT != want || p.JTI != "e1j3V_bKic8-LAEB" || !p.IssuedAt.Equal(testNow) || p.Nonce != "n-1" {
		t.Errorf("proof %+v, want jkt %s", p, want)
	}
}

// TestVerifyRFCExample verifies the proof of RFC 9449 Figure 2 (made by
// another implementation) and finds the jkt the RFC publishes for its key.
func TestVerifyRFCExample(t *testing.T) {
	const proof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik" +
		"VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdC" +
		"RnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R" +
		"1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj" +
		"oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia" +
		"WF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	p, err := Verify(proof, Check{Method: "POST", URL: "https://server.example.com/token", Now: time.Unix(1562262616, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if p.JKT != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" || p.JTI != "-BwC3ESc6acc2lTc" {
		t.Errorf("RFC example: %+v", p)
	}
}

func TestVerifyRefusals(t *testing.T) {
	testKeys(t)
	privJWK := jose.JSONWebKey{Key: ecKey}
	otherPub := jose.JSONWebKey{Key: &otherKey.PublicKey}
	good := forge{}.sign(t)
	parts := strings.Split(good, ".")
	weakRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	valid := newTestNonces(t)
	stale := valid.Issue(testNow.Add(-3 * time.Minute))

	cases := []struct {
		name  string
		proof func() string
		check func(*Check)
		want  error // nil: accepted
	}{
		// Form and size.
		{"garbage", func() string { return "not a proof" }, nil, ErrInvalidProof},
		{"empty", func() string { return "" }, nil, ErrInvalidProof},
		{"two JWS parts garbage", func() string { return "eyJhbGciOiJFUzI1NiJ9.e30" }, nil, ErrInvalidProof},
		{"two proofs joined", func() string { return good + "," + good }, nil, ErrInvalidProof},
		{"JWE-shaped", func() string { return parts[0] + ".." + parts[1] + ".." + parts[2] }, nil, ErrInvalidProof},
		{"JSON serialisation", func() string {
			return `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`
		}, nil, ErrInvalidProof},
		{"oversized", func() string {
			return forge{claims: map[string]any{"pad": strings.Repeat("x", MaxProofSize)}}.sign(t)
		}, nil, ErrInvalidProof},

		// Header.
		{"typ JWT", func() string { return forge{typ: "JWT"}.sign(t) }, nil, ErrInvalidProof},
		{"typ in another case", func() string { return forge{typ: "DPoP+JWT"}.sign(t) }, nil, ErrInvalidProof},
		{"no typ", func() string { return forge{typ: "-"}.sign(t) }, nil, ErrInvalidProof},
		{"alg none", func() string { return forgeNone(t) }, nil, ErrInvalidProof},
		{"alg HS256", func() string {
			return forge{key: make([]byte, 32), alg: jose.HS256, jwk: jose.JSONWebKey{Key: &ecKey.PublicKey}}.sign(t)
		}, nil, ErrInvalidProof},
		{"alg HS256 even when listed", func() string {
			return forge{key: make([]byte, 32), alg: jose.HS256, jwk: jose.JSONWebKey{Key: &ecKey.PublicKey}}.sign(t)
		}, func(c *Check) { c.Algs = []jose.SignatureAlgorithm{jose.HS256, jose.ES256} }, ErrInvalidProof},
		{"RS256 not listed", func() string { return forge{key: rsaKey, alg: jose.RS256}.sign(t) }, nil, ErrInvalidProof},
		{"RS256 listed", func() string { return forge{key: rsaKey, alg: jose.RS256}.sign(t) },
			func(c *Check) { c.Algs = []jose.SignatureAlgorithm{jose.RS256} }, nil},
		{"PS256", func() string { return forge{key: rsaKey, alg: jose.PS256}.sign(t) }, nil, nil},
		{"EdDSA", func() string { return forge{key: edKey, alg: jose.EdDSA}.sign(t) }, nil, nil},
		{"RSA 1024", func() string { return forge{key: weakRSA, alg: jose.PS256}.sign(t) }, nil, ErrInvalidProof},
		{"missing jwk", func() string { return forge{noJWK: true}.sign(t) }, nil, ErrInvalidProof},
		{"private jwk", func() string { return forge{jwk: privJWK}.sign(t) }, nil, ErrInvalidProof},
		{"symmetric jwk", func() string { return forge{jwk: jose.JSONWebKey{Key: make([]byte, 32)}}.sign(t) }, nil, ErrInvalidProof},
		{"bad signature: another key's jwk", func() string { return forge{jwk: otherPub}.sign(t) }, nil, ErrInvalidProof},
		{"bad signature: payload changed", func() string {
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(forge{claims: map[string]any{"jti": "other"}}.payload(t)) + "." + parts[2]
		}, nil, ErrInvalidProof},

		// jti.
		{"missing jti", func() string { return forge{claims: map[string]any{"jti": nil}}.sign(t) }, nil, ErrInvalidProof},
		{"empty jti", func() string { return forge{claims: map[string]any{"jti": ""}}.sign(t) }, nil, ErrInvalidProof},
		{"jti of 256 bytes", func() string { return forge{claims: map[string]any{"jti": strings.Repeat("j", 256)}}.sign(t) }, nil, nil},
		{"jti of 257 bytes", func() string { return forge{claims: map[string]any{"jti": strings.Repeat("j", 257)}}.sign(t) }, nil, ErrInvalidProof},

		// htm.
		{"wrong htm", func() string { return forge{claims: map[string]any{"htm": "GET"}}.sign(t) }, nil, ErrInvalidProof},
		{"htm in lower case", func() string { return forge{claims: map[string]any{"htm": "post"}}.sign(t) }, nil, ErrInvalidProof},
		{"missing htm", func() string { return forge{claims: map[string]any{"htm": nil}}.sign(t) }, nil, ErrInvalidProof},

		// htu.
		{"wrong htu path", func() string { return forge{claims: map[string]any{"htu": "https://broker.example/par"}}.sign(t) }, nil, ErrInvalidProof},
		{"wrong htu host", func() string { return forge{claims: map[string]any{"htu": "https://evil.example/token"}}.sign(t) }, nil, ErrInvalidProof},
		{"wrong htu scheme", func() string { return forge{claims: map[string]any{"htu": "http://broker.example/token"}}.sign(t) }, nil, ErrInvalidProof},
		{"wrong htu port", func() string {
			return forge{claims: map[string]any{"htu": "https://broker.example:8443/token"}}.sign(t)
		}, nil, ErrInvalidProof},
		{"htu with userinfo", func() string { return forge{claims: map[string]any{"htu": "https://u@broker.example/token"}}.sign(t) }, nil, ErrInvalidProof},
		{"htu not a URI", func() string { return forge{claims: map[string]any{"htu": "/token"}}.sign(t) }, nil, ErrInvalidProof},
		{"missing htu", func() string { return forge{claims: map[string]any{"htu": nil}}.sign(t) }, nil, ErrInvalidProof},
		{"htu with another query and a fragment", func() string {
			return forge{claims: map[string]any{"htu": testURL + "?a=1#frag"}}.sign(t)
		}, func(c *Check) { c.URL = testURL + "?b=2" }, nil},
		{"htu normalised: case, default port", func() string {
			return forge{claims: map[string]any{"htu": "HTTPS://Broker.EXAMPLE:443/token"}}.sign(t)
		}, nil, nil},
		{"htu normalised: percent-encoding, dot segments", func() string {
			return forge{claims: map[string]any{"htu": "https://broker.example/a/../%74oken"}}.sign(t)
		}, nil, nil},
		{"htu normalised: empty path is /", func() string {
			return forge{claims: map[string]any{"htu": "https://broker.example"}}.sign(t)
		}, func(c *Check) { c.URL = "https://broker.example/" }, nil},
		{"htu path case matters", func() string { return forge{claims: map[string]any{"htu": "https://broker.example/Token"}}.sign(t) }, nil, ErrInvalidProof},

		// iat.
		{"iat too old", func() string {
			return forge{claims: map[string]any{"iat": testNow.Add(-61 * time.Second).Unix()}}.sign(t)
		}, nil, ErrInvalidProof},
		{"iat in the future", func() string {
			return forge{claims: map[string]any{"iat": testNow.Add(61 * time.Second).Unix()}}.sign(t)
		}, nil, ErrInvalidProof},
		{"iat at the edge of the window", func() string {
			return forge{claims: map[string]any{"iat": testNow.Add(-60 * time.Second).Unix()}}.sign(t)
		}, nil, nil},
		{"iat within a wider window", func() string {
			return forge{claims: map[string]any{"iat": testNow.Add(-5 * time.Minute).Unix()}}.sign(t)
		},
			func(c *Check) { c.Window = 10 * time.Minute }, nil},
		{"missing iat", func() string { return forge{claims: map[string]any{"iat": nil}}.sign(t) }, nil, ErrInvalidProof},
		{"iat not a number", func() string { return forge{claims: map[string]any{"iat": "yesterday"}}.sign(t) }, nil, ErrInvalidProof},

		// ath.
		{"ath missing", func() string { return forge{claims: map[string]any{"ath": nil}}.sign(t) }, nil, ErrInvalidProof},
		{"ath of another token", func() string { return forge{claims: map[string]any{"ath": ath("another")}}.sign(t) }, nil, ErrInvalidProof},
		{"ath ignored without an access token", func() string { return forge{claims: map[string]any{"ath": "whatever"}}.sign(t) },
			func(c *Check) { c.AccessToken = "" }, nil},

		// nonce.
		{"nonce missing", func() string { return forge{}.sign(t) },
			func(c *Check) { c.Nonce = func(n string) bool { return valid.Valid(n, testNow) } }, ErrUseNonce},
		{"nonce stale", func() string { return forge{claims: map[string]any{"nonce": stale}}.sign(t) },
			func(c *Check) { c.Nonce = func(n string) bool { return valid.Valid(n, testNow) } }, ErrUseNonce},
		{"nonce valid", func() string { return forge{claims: map[string]any{"nonce": valid.Issue(testNow)}}.sign(t) },
			func(c *Check) { c.Nonce = func(n string) bool { return valid.Valid(n, testNow) } }, nil},
		{"nonce missing on an otherwise bad proof", func() string { return forge{claims: map[string]any{"htm": "GET"}}.sign(t) },
			func(c *Check) { c.Nonce = func(string) bool { return false } }, ErrInvalidProof},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check := goodCheck()
			if c.check != nil {
				c.check(&check)
			}
			p, err := Verify(c.proof(), check)
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == nil && p == nil:
				t.Fatal("accepted without a proof")
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("got %v, want %v", err, c.want)
			case c.want != nil && p != nil:
				t.Fatal("refused but returned a proof")
			case errors.Is(err, ErrUseNonce) && errors.Is(err, ErrInvalidProof):
				t.Fatal("a nonce refusal must not read as an invalid proof")
			}
		})
	}
}

func TestVerifyBadCheckURL(t *testing.T) {
	_, err := Verify(forge{}.sign(t), Check{Method: "POST", URL: "/token", Now: testNow})
	if err == nil || errors.Is(err, ErrInvalidProof) {
		t.Fatalf("a server-side URL error must not read as the client's fault: %v", err)
	}
}

func TestFromHeader(t *testing.T) {
	h := http.Header{}
	if _, present, err := FromHeader(h); present || err != nil {
		t.Errorf("no header: present %v err %v", present, err)
	}
	h.Set(HeaderName, "a.b.c")
	if p, present, err := FromHeader(h); !present || err != nil || p != "a.b.c" {
		t.Errorf("one header: %q %v %v", p, present, err)
	}
	h.Add(HeaderName, "d.e.f")
	if _, _, err := FromHeader(h); !errors.Is(err, ErrInvalidProof) {
		t.Errorf("two headers: %v", err)
	}
}

func TestNewProof(t *testing.T) {
	testKeys(t)
	for _, key := range []jose.JSONWebKey{
		{Key: ecKey},
		{Key: ecKey, Algorithm: "ES256", KeyID: "k1"},
		{Key: edKey},
		{Key: rsaKey},
	} {
		now := time.Now()
		nonces := newTestNonces(t)
		nonce := nonces.Issue(now)
		raw, err := NewProof(key, "GET", "https://broker.example/userinfo?x=1#y", testToken, nonce)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Verify(raw, Check{
			Method: "GET", URL: "https://broker.example/userinfo", AccessToken: testToken, Now: now,
			Nonce: func(n string) bool { return nonces.Valid(n, now) },
		})
		if err != nil {
			t.Fatalf("%T: NewProof made a proof Verify refuses: %v", key.Key, err)
		}
		want, _ := Thumbprint(key)
		if p.JKT != want || p.Nonce != nonce || len(p.JTI) < 22 {
			t.Errorf("%T: %+v", key.Key, p)
		}
		// The header holds the public key only, and the claims no query.
		jws, err := jose.ParseSignedCompact(raw, DefaultAlgs)
		if err != nil {
			t.Fatal(err)
		}
		if hdr := jws.Signatures[0].Protected; !hdr.JSONWebKey.IsPublic() {
			t.Errorf("%T: the jwk header is not public", key.Key)
		}
		hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
		if strings.Contains(string(hdr), `"d"`) {
			t.Errorf("%T: private parameter in the header %s", key.Key, hdr)
		}
		var c map[string]any
		_ = json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c)
		if c["htu"] != "https://broker.example/userinfo" || c["ath"] != ath(testToken) {
			t.Errorf("%T: claims %v", key.Key, c)
		}
	}

	a, _ := NewProof(jose.JSONWebKey{Key: ecKey}, "POST", testURL, "", "")
	b, _ := NewProof(jose.JSONWebKey{Key: ecKey}, "POST", testURL, "", "")
	pa, errA := Verify(a, Check{Method: "POST", URL: testURL})
	pb, errB := Verify(b, Check{Method: "POST", URL: testURL})
	if errA != nil || errB != nil || pa.JTI == pb.JTI {
		t.Errorf("two proofs: %v %v, same jti: %v", errA, errB, pa != nil && pb != nil && pa.JTI == pb.JTI)
	}
	var c map[string]any
	jws, _ := jose.ParseSignedCompact(a, DefaultAlgs)
	_ = json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c)
	if _, has := c["ath"]; has {
		t.Error("ath without an access token")
	}
	if _, has := c["nonce"]; has {
		t.Error("nonce without a nonce")
	}

	for name, key := range map[string]jose.JSONWebKey{
		"public key":    {Key: &ecKey.PublicKey},
		"symmetric key": {Key: make([]byte, 32)},
		"MAC alg":       {Key: ecKey, Algorithm: "HS256"},
	} {
		if _, err := NewProof(key, "POST", testURL, "", ""); err == nil {
			t.Errorf("%s: NewProof signed", name)
		}
	}
	if _, err := NewProof(jose.JSONWebKey{Key: ecKey}, "POST", "/token", "", ""); err == nil {
		t.Error("NewProof accepted a relative URL")
	}
}

func TestThumbprint(t *testing.T) {
	// RFC 9449 Figure 2's key and the jkt the RFC gives for it.
	var k jose.JSONWebKey
	if err := json.Unmarshal([]byte(`{"kty":"EC","crv":"P-256",
		"x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
		"y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}`), &k); err != nil {
		t.Fatal(err)
	}
	if tp, err := Thumbprint(k); err != nil || tp != "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" {
		t.Errorf("thumbprint %q %v", tp, err)
	}
	testKeys(t)
	pub, _ := Thumbprint(jose.JSONWebKey{Key: &ecKey.PublicKey})
	if priv, err := Thumbprint(jose.JSONWebKey{Key: ecKey}); err != nil || priv != pub {
		t.Errorf("a private key's thumbprint is not its public key's: %v", err)
	}
	if _, err := Thumbprint(jose.JSONWebKey{Key: make([]byte, 32)}); err == nil {
		t.Error("a symmetric key has a thumbprint")
	}
}

// newTestNonces returns a nonce source with a random key and a period of
// one minute.
func newTestNonces(t testing.TB) *Nonces {
	t.Helper()
	n, err := NewNonces([]byte(rand.Text()+rand.Text()), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNonces(t *testing.T) {
	const period = 5 * time.Minute
	key := []byte(strings.Repeat("k", 32))
	n, err := NewNonces(key, period)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewNonces([]byte(strings.Repeat("o", 32)), period)
	start := time.Unix(1_750_000_200, 0).Truncate(period) // a bucket's first second
	issued := n.Issue(start)

	if again := n.Issue(start.Add(period - time.Second)); again != issued {
		t.Error("two nonces in one bucket differ: replicas would disagree")
	}
	twin, _ := NewNonces(key, period)
	if twin.Issue(start) != issued || !twin.Valid(issued, start) {
		t.Error("another replica with the same key disagrees")
	}
	key[0] = 'x' // NewNonces copied it
	if !n.Valid(issued, start) {
		t.Error("changing the caller's key slice changed the nonces")
	}

	tampered := []byte(issued)
	tampered[len(tampered)-1] ^= 1
	for _, c := range []struct {
		name  string
		n     *Nonces
		nonce string
		at    time.Time
		want  bool
	}{
		{"valid now", n, issued, start, true},
		{"valid at the end of its bucket", n, issued, start.Add(period - time.Nanosecond), true},
		{"valid in the next bucket (issued in the previous)", n, issued, start.Add(period), true},
		{"valid at the very end of the next bucket", n, issued, start.Add(2*period - time.Nanosecond), true},
		{"invalid two buckets later", n, issued, start.Add(2 * period), false},
		{"invalid before it was issued", n, issued, start.Add(-time.Nanosecond), false},
		{"invalid under another key", other, issued, start, false},
		{"garbage", n, "garbage", start, false},
		{"empty", n, "", start, false},
		{"right length, not base64url", n, strings.Repeat("!", len(issued)), start, false},
		{"right length, random", n, strings.Repeat("A", len(issued)), start, false},
		{"MAC tampered", n, string(tampered), start, false},
		{"padded", n, issued + "=", start, false},
	} {
		if got := c.n.Valid(c.nonce, c.at); got != c.want {
			t.Errorf("%s: Valid = %v, want %v", c.name, got, c.want)
		}
	}

	if _, err := NewNonces(make([]byte, 31), period); err == nil {
		t.Error("a 31-byte key was accepted")
	}
	if _, err := NewNonces(key, 0); err == nil {
		t.Error("a zero period was accepted")
	}
}

// FuzzVerify feeds Verify arbitrary proofs: it must never panic, and what
// it accepts must really be for the request it was checked against.
func FuzzVerify(f *testing.F) {
	f.Add(forge{}.sign(f))
	f.Add(forge{claims: map[string]any{"htu": "HTTPS://BROKER.example:443/a/../token?q#f"}}.sign(f))
	f.Add(forge{key: edKey, alg: jose.EdDSA}.sign(f))
	f.Add(forgeNone(f))
	f.Add("garbage")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.")
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := Verify(proof, goodCheck())
		if err != nil {
			if p != nil {
				t.Fatal("refused but returned a proof")
			}
			return
		}
		jws, err := jose.ParseSignedCompact(proof, DefaultAlgs)
		if err != nil {
			t.Fatalf("accepted a proof go-jose cannot parse: %v", err)
		}
		var c struct{ HTM, HTU string }
		if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(c.HTU)
		if err != nil {
			t.Fatalf("accepted htu %q: %v", c.HTU, err)
		}
		if c.HTM != testMethod || !strings.EqualFold(u.Scheme, "https") || !strings.EqualFold(u.Hostname(), "broker.example") ||
			(u.Port() != "" && u.Port() != "443") || path.Clean(u.Path) != "/token" {
			t.Fatalf("accepted htm %q htu %q for %s %s", c.HTM, c.HTU, testMethod, testURL)
		}
		if p.JKT == "" || p.JTI == "" {
			t.Fatalf("accepted without jkt or jti: %+v", p)
		}
	})
}
