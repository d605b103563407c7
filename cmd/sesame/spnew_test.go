package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/broker/teststack"
	"github.com/sesame-id/sesame/config"
)

// spNew runs `sesame sp new args...` and saves what it prints as an SP
// file, as the quickstart does with a shell redirection.
func spNew(t *testing.T, args ...string) (file string, entry config.SP, info string) {
	t.Helper()
	var out, msgs bytes.Buffer
	if err := spCommand(append([]string{"new"}, args...), &out, &msgs); err != nil {
		t.Fatalf("sp new %v: %v\n%s", args, err, msgs.String())
	}
	file = filepath.Join(t.TempDir(), "sp.yaml")
	if err := os.WriteFile(file, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.LoadSPFile(file)
	if err != nil {
		t.Fatalf("the printed entry does not load: %v\n%s", err, out.String())
	}
	if len(f.ServiceProviders) != 1 {
		t.Fatalf("%d SPs printed, want 1", len(f.ServiceProviders))
	}
	return file, f.ServiceProviders[0], msgs.String()
}

// withSPFile registers the SPs of file on the stack's platform, as
// `sesame dev -sp file` does.
func withSPFile(t *testing.T, file string) teststack.Option {
	return func(c *config.Config) {
		if _, err := c.AddSPFiles(file); err != nil {
			t.Fatalf("sesame dev -sp: %v", err)
		}
	}
}

func TestSPNewStandardLogsIn(t *testing.T) {
	file, sp, info := spNew(t, "-name", "Mairie d'Égletons", "-redirect-uri", teststack.SPRedirect)
	if !regexp.MustCompile(`^mairie-d-egletons-[0-9a-f]{6}$`).MatchString(sp.ClientID) || sp.Name != "Mairie d'Égletons" {
		t.Errorf("client_id %q, name %q", sp.ClientID, sp.Name)
	}
	if len(sp.ClientSecret) < 32 || sp.JWKS != "" {
		t.Errorf("client_secret %q (want 32+ characters), jwks %q (want none)", sp.ClientSecret, sp.JWKS)
	}
	if !strings.Contains(info, "-client-id "+sp.ClientID+" -client-secret "+sp.ClientSecret) {
		t.Errorf("info does not say how to try it:\n%s", info)
	}
	_, again, _ := spNew(t, "-name", "Mairie d'Égletons")
	if again.ClientID == sp.ClientID || again.ClientSecret == sp.ClientSecret {
		t.Error("two runs gave the same credentials")
	}

	s := teststack.New(t, withSPFile(t, file))
	params := teststack.AuthParams()
	params.Set("client_id", sp.ClientID)
	back := s.Login(t, params, "impots", "angela-dubois")
	code := back.Query().Get("code")
	if code == "" || back.Query().Get("state") != "state-1" {
		t.Fatalf("no code back: %s", back)
	}
	req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {teststack.SPRedirect}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(sp.ClientID, sp.ClientSecret)
	tok := postToken(t, req)
	claims := verifiedClaims(t, s, tok["id_token"].(string))
	if claims["aud"] != sp.ClientID || claims["acr"] != "eidas1" {
		t.Errorf("id_token aud %v acr %v", claims["aud"], claims["acr"])
	}
}

func TestSPNewPlusLogsIn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	file, sp, info := spNew(t, "-plus", "-redirect-uri", teststack.SPRedirect, "-out", dir)
	keysFile := filepath.Join(dir, sp.ClientID+".jwks.json")
	st, err := os.Stat(keysFile)
	if err != nil {
		t.Fatalf("private keys: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("private keys file mode %v, want 0600", st.Mode().Perm())
	}
	if !strings.Contains(info, keysFile) {
		t.Errorf("info does not name the keys file:\n%s", info)
	}
	private := readJWKS(t, keysFile)
	sig, enc := keyOfUse(t, private, "sig"), keyOfUse(t, private, "enc")
	if sig.IsPublic() || enc.IsPublic() || sig.Algorithm != "ES256" || enc.Algorithm != "ECDH-ES" {
		t.Fatalf("private keys: sig %s public=%v, enc %s public=%v", sig.Algorithm, sig.IsPublic(), enc.Algorithm, enc.IsPublic())
	}
	// The inline part is the public half of the same keys, and only that.
	var public jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(sp.JWKS), &public); err != nil {
		t.Fatal(err)
	}
	for _, k := range []jose.JSONWebKey{sig, enc} {
		got := public.Key(k.KeyID)
		if len(got) != 1 || !got[0].IsPublic() {
			t.Fatalf("kid %s: %d public keys inline", k.KeyID, len(got))
		}
		pub := k.Public()
		a, _ := got[0].Thumbprint(crypto.SHA256)
		b, _ := pub.Thumbprint(crypto.SHA256)
		if !bytes.Equal(a, b) {
			t.Errorf("kid %s: the inline key is not the file's", k.KeyID)
		}
	}
	if sp.ClientSecret != "" {
		t.Error("a client_secret on +")
	}
	if err := spCommand([]string{"new", "-plus", "-out", dir}, io.Discard, io.Discard); err != nil {
		t.Fatalf("second SP in the same folder: %v", err)
	}

	// Teststack's "+" platform, with PAR, PKCE and DPoP off (the Go
	// example's test has them on): private_key_jwt with the file's sig
	// key, tokens decrypted with its enc key.
	s := teststack.New(t, teststack.Plus(string(sp.JWKS)), withSPFile(t, file))
	params := teststack.AuthParams()
	params.Set("client_id", sp.ClientID)
	params.Set("acr_values", "eidas3")
	params.Set("claims", `{"id_token":{"amr":null}}`)
	back := s.Login(t, params, "laposte", "angela-dubois")
	now := time.Now()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: sig.Key}, (&jose.SignerOptions{}).WithHeader("kid", sig.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	assertion, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: sp.ClientID, Subject: sp.ClientID, Audience: jwt.Audience{s.BrokerURL},
		ID: rand.Text(), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.BrokerURL+"/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {teststack.SPRedirect},
		"client_id": {sp.ClientID}, "client_assertion": {assertion},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tok := postToken(t, req)
	raw := tok["id_token"].(string)
	if strings.Count(raw, ".") != 4 {
		t.Fatalf("id_token is not a JWE: %.40s", raw)
	}
	jwe, err := jose.ParseEncrypted(raw, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	if jwe.Header.KeyID != enc.KeyID {
		t.Errorf("encrypted to kid %q, want %s", jwe.Header.KeyID, enc.KeyID)
	}
	inner, err := jwe.Decrypt(enc.Key)
	if err != nil {
		t.Fatalf("the file's enc key does not decrypt the id_token: %v", err)
	}
	claims := verifiedClaims(t, s, string(inner))
	if claims["aud"] != sp.ClientID || claims["acr"] != "eidas3" {
		t.Errorf("id_token aud %v acr %v", claims["aud"], claims["acr"])
	}
}

func TestSPNewRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no action":        {nil, "usage: sesame sp new"},
		"unknown action":   {[]string{"list"}, "usage: sesame sp new"},
		"extra argument":   {[]string{"new", "x"}, `unexpected argument "x"`},
		"relative URI":     {[]string{"new", "-redirect-uri", "/callback"}, "expected an absolute http(s) URL"},
		"fragment":         {[]string{"new", "-redirect-uri", "https://sp.example/cb#x"}, "without fragment"},
		"empty name":       {[]string{"new", "-name", " "}, "-name is empty"},
		"unknown flag":     {[]string{"new", "-secret", "x"}, "flag provided but not defined"},
		"keys over a file": {[]string{"new", "-plus", "-out", filepath.Join(dir, "file")}, "private keys"},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "keys over a file" {
				// -out names a file: the keys cannot go under it.
				if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			err := spCommand(tc.args, &out, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if out.Len() > 0 {
				t.Errorf("printed an entry anyway:\n%s", out.String())
			}
		})
	}
}

func TestSPFlagOnlyWhereTheBrokerRuns(t *testing.T) {
	file, _, _ := spNew(t)
	for _, cmd := range []string{"providers", "demo-sp", "dashboard"} {
		if err := run(cmd, []string{"-sp", file}); err == nil || !strings.Contains(err.Error(), "use it with sesame dev or sesame broker") {
			t.Errorf("%s -sp: %v", cmd, err)
		}
	}
	if err := run("dev", []string{"-config", "../../config/dev.yaml", "-sp", filepath.Join(t.TempDir(), "missing.yaml")}); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("dev -sp with a missing file: %v", err)
	}
}

// TestReloadKeepsSPFiles: a SIGHUP reload reads the config file again;
// the SPs of the -sp files must stay registered.
func TestReloadKeepsSPFiles(t *testing.T) {
	stdFile, std, _ := spNew(t)
	plusFile, plus, _ := spNew(t, "-plus", "-out", t.TempDir())
	dev := "../../config/dev.yaml"
	files := []string{stdFile, plusFile}
	cfg, added, err := loadConfig(dev, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 2 || added[0] != (config.AddedSP{ClientID: std.ClientID, Platform: "std", File: stdFile}) ||
		added[1] != (config.AddedSP{ClientID: plus.ClientID, Platform: "plus", File: plusFile}) {
		t.Fatalf("added = %v", added)
	}
	b, err := broker.New(cfg.Broker, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	known := func(pl int, clientID string) bool {
		q := url.Values{"client_id": {clientID}, "redirect_uri": {"http://localhost:9000/callback"}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"s"}, "nonce": {"n"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
			"code_challenge_method": {"S256"}}
		rec := httptest.NewRecorder()
		b.Platforms[pl].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/authorize?"+q.Encode(), nil))
		// An unknown client gets the error page, never a redirect; PAR
		// required on + is an error sent back to a known client.
		return rec.Code == http.StatusSeeOther
	}
	if !known(0, std.ClientID) || !known(1, plus.ClientID) || known(0, "nobody") {
		t.Fatalf("before the reload: std %v, plus %v, nobody %v", known(0, std.ClientID), known(1, plus.ClientID), known(0, "nobody"))
	}
	rl := broker.NewReloader(b, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err := reloadRegistry(rl, dev, files); err != nil {
		t.Fatal(err)
	}
	if !known(0, std.ClientID) || !known(1, plus.ClientID) {
		t.Fatalf("after the reload: std %v, plus %v", known(0, std.ClientID), known(1, plus.ClientID))
	}
	// Without the files, the same reload drops them: the check above can fail.
	if err := reloadRegistry(rl, dev, nil); err != nil {
		t.Fatal(err)
	}
	if known(0, std.ClientID) {
		t.Fatal("a reload without the SP files kept their SPs")
	}
}

func postToken(t *testing.T, req *http.Request) map[string]any {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %v %v", resp.StatusCode, out, err)
	}
	if _, ok := out["id_token"].(string); !ok {
		t.Fatalf("token: no id_token in %v", out)
	}
	return out
}

// verifiedClaims checks an ES256 JWS against the broker's /jwks.
func verifiedClaims(t *testing.T, s *teststack.Stack, raw string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("not an ES256 JWS: %v", err)
	}
	_, body := teststack.Get(t, http.DefaultClient, s.BrokerURL+"/jwks")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatal("signing kid not in /jwks")
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func readJWKS(t *testing.T, path string) jose.JSONWebKeySet {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return set
}

func keyOfUse(t *testing.T, set jose.JSONWebKeySet, use string) jose.JSONWebKey {
	t.Helper()
	for _, k := range set.Keys {
		if k.Use == use {
			return k
		}
	}
	t.Fatalf("no %s key", use)
	return jose.JSONWebKey{}
}
