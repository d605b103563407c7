package demosp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/config"
)

// publishedKeys GETs an SP's /jwks and checks what every published set must
// be: JSON, public keys only (no private member at all on the wire), each
// with a unique kid, a use and an alg.
func publishedKeys(t *testing.T, sp string) jose.JSONWebKeySet {
	t.Helper()
	p := newBrowser(t).get(sp + "/jwks")
	if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "application/json") {
		t.Fatalf("/jwks: %d %q", p.status, p.header.Get("Content-Type"))
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(p.body), &raw); err != nil {
		t.Fatal(err)
	}
	for i, k := range raw.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, present := k[private]; present {
				t.Errorf("/jwks key %d publishes the private member %q", i, private)
			}
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(p.body), &set); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			t.Errorf("key %q is not a valid public key", k.KeyID)
		}
		if k.KeyID == "" || seen[k.KeyID] {
			t.Errorf("kid %q is empty or duplicate", k.KeyID)
		}
		seen[k.KeyID] = true
		if k.Use == "" || k.Algorithm == "" {
			t.Errorf("key %q lacks use or alg", k.KeyID)
		}
	}
	return set
}

func TestJWKSGenerated(t *testing.T) {
	_, sp := startSP(t, "http://127.0.0.1:1", func(c *config.DemoSP) { c.Keys = "" })
	set := publishedKeys(t, sp.URL)
	var got []string
	for _, k := range set.Keys {
		got = append(got, k.Use+"/"+k.Algorithm)
		switch pub := k.Key.(type) {
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P256() {
				t.Errorf("key %s: curve %s, want P-256", k.KeyID, pub.Curve.Params().Name)
			}
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 {
				t.Errorf("key %s: RSA %d bits", k.KeyID, pub.N.BitLen())
			}
			if k.Algorithm != "RSA-OAEP-256" {
				t.Errorf("RSA key %s has alg %s", k.KeyID, k.Algorithm)
			}
		default:
			t.Errorf("key %s: unexpected type %T", k.KeyID, k.Key)
		}
	}
	slices.Sort(got)
	if want := []string{"enc/ECDH-ES", "enc/RSA-OAEP-256", "sig/ES256"}; !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
	// Another start generates other keys.
	_, other := startSP(t, "http://127.0.0.1:1", func(c *config.DemoSP) { c.Keys = "" })
	if publishedKeys(t, other.URL).Keys[0].KeyID == set.Keys[0].KeyID {
		t.Error("two generated key sets share a kid")
	}
}

func TestJWKSFromFile(t *testing.T) {
	raw, err := os.ReadFile(testKeysFile)
	if err != nil {
		t.Fatal(err)
	}
	var file jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	_, sp := startSP(t, "http://127.0.0.1:1")
	set := publishedKeys(t, sp.URL)
	if len(set.Keys) != len(file.Keys) {
		t.Fatalf("published %d keys, the file has %d", len(set.Keys), len(file.Keys))
	}
	for i := range file.Keys {
		if set.Keys[i].KeyID != file.Keys[i].KeyID {
			t.Errorf("key %d: kid %q, file says %q", i, set.Keys[i].KeyID, file.Keys[i].KeyID)
		}
	}
}

// TestLoadKeys checks what a keys file may hold: a use left out is filled
// in from the alg, and anything the demo SP would not use, or could misuse,
// is refused at start.
func TestLoadKeys(t *testing.T) {
	base, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	sign, ec, rs := base.Keys[0], base.Keys[1], base.Keys[2]
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	with := func(k jose.JSONWebKey, f func(*jose.JSONWebKey)) jose.JSONWebKey { f(&k); return k }
	dir := t.TempDir()
	write := func(name string, v any) string {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if s, ok := v.(string); ok {
			raw = []byte(s)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	set := func(ks ...jose.JSONWebKey) jose.JSONWebKeySet { return jose.JSONWebKeySet{Keys: ks} }

	noUse := write("nouse.json", set(
		with(sign, func(k *jose.JSONWebKey) { k.Use = "" }),
		with(ec, func(k *jose.JSONWebKey) { k.Use = "" })))
	k, err := loadKeys(noUse)
	if err != nil {
		t.Fatalf("a file without use members was refused: %v", err)
	}
	for _, key := range k.public().Keys {
		if key.Use == "" {
			t.Errorf("key %s published without use", key.KeyID)
		}
	}

	bad := map[string]string{
		"not JSON":              write("garbage.json", "{not json"),
		"public keys only":      write("public.json", set(sign.Public(), ec.Public(), rs.Public())),
		"an RS256 key":          write("rs256.json", set(sign, ec, with(rs, func(k *jose.JSONWebKey) { k.Algorithm, k.Use = "RS256", "sig" }))),
		"a duplicate kid":       write("dup.json", set(sign, with(ec, func(k *jose.JSONWebKey) { k.KeyID = sign.KeyID }))),
		"an empty kid":          write("nokid.json", set(sign, with(ec, func(k *jose.JSONWebKey) { k.KeyID = "" }))),
		"no decryption key":     write("noenc.json", set(sign)),
		"no signing key":        write("nosig.json", set(ec, rs)),
		"an enc key for sig":    write("encsig.json", set(sign, with(ec, func(k *jose.JSONWebKey) { k.Use = "sig" }))),
		"a sig key for enc":     write("sigenc.json", set(with(sign, func(k *jose.JSONWebKey) { k.Use = "enc" }), ec)),
		"ECDH-ES on an RSA key": write("rsaecdh.json", set(sign, with(rs, func(k *jose.JSONWebKey) { k.Algorithm = "ECDH-ES" }))),
		"RSA under 2048 bits":   write("small.json", set(sign, jose.JSONWebKey{Key: small, KeyID: "small", Algorithm: "RSA-OAEP-256", Use: "enc"})),
		"a missing file":        filepath.Join(dir, "absent.json"),
	}
	for name, path := range bad {
		if _, err := loadKeys(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestDecryptKeyChoice: the kid picks the key, and the header's alg must be
// that key's own.
func TestDecryptKeyChoice(t *testing.T) {
	k, err := loadKeys(testKeysFile)
	if err != nil {
		t.Fatal(err)
	}
	var ec, rs jose.JSONWebKey
	for _, key := range k.set {
		switch key.Algorithm {
		case "ECDH-ES":
			ec = key
		case "RSA-OAEP-256":
			rs = key
		}
	}
	for _, c := range []struct {
		kid, alg string
		want     string // the kid expected, "" for none
	}{
		{ec.KeyID, "ECDH-ES", ec.KeyID},
		{rs.KeyID, "RSA-OAEP-256", rs.KeyID},
		{"", "RSA-OAEP-256", rs.KeyID},
		{rs.KeyID, "RSA-OAEP", ""},
		{ec.KeyID, "RSA-OAEP-256", ""},
		{k.sign.KeyID, "ECDH-ES", ""},
		{"unknown", "ECDH-ES", ""},
	} {
		got, ok := k.decryptKey(c.kid, c.alg)
		if (c.want == "") == ok || (ok && got.KeyID != c.want) {
			t.Errorf("decryptKey(%q, %s) = %q, %v; want %q", c.kid, c.alg, got.KeyID, ok, c.want)
		}
	}
}

// TestJWKSHandlerDirect calls /jwks without a server, as the broker's cache
// would see it: cacheable, but briefly.
func TestJWKSHandlerDirect(t *testing.T) {
	app, err := New(testConfig("http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	app.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/jwks", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Cache-Control"), "max-age=60") {
		t.Errorf("/jwks: %d, Cache-Control %q", rec.Code, rec.Header().Get("Cache-Control"))
	}
}
