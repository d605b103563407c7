package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"go.yaml.in/yaml/v3"

	"github.com/sesame-id/sesame/broker"
	"github.com/sesame-id/sesame/config"
)

const spUsage = `usage: sesame sp new [-plus] [-name NAME] [-redirect-uri URI] [-out DIR] > my-sp.yaml
  prints a ready SP entry (an SP file: level and service_providers) with fresh credentials;
  -plus makes an SP for the "+" platform, with its signing and encryption key pairs: the
  private keys go to DIR/<client_id>.jwks.json (mode 0600), the public ones inline.
  Register it in the dev stack with: sesame dev -sp my-sp.yaml`

// spCommand runs `sesame sp new`: the entry goes to out, what was
// written and what to do next to info, so that out can be redirected to
// a file as it is.
func spCommand(args []string, out, info io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		return errors.New(spUsage)
	}
	fs := flag.NewFlagSet("sp new", flag.ContinueOnError)
	fs.SetOutput(info)
	plus := fs.Bool("plus", false, `an SP for the "+" platform (eidas2, eidas3): private_key_jwt, encrypted tokens`)
	name := fs.String("name", "Mon service", "the service's name, shown to citizens on the chooser")
	redirect := fs.String("redirect-uri", "http://localhost:9000/callback", "the SP's redirect_uri (http on localhost only)")
	dir := fs.String("out", ".", "the folder of the private keys file (-plus)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sp new: unexpected argument %q\n%s", fs.Arg(0), spUsage)
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("sp new: -name is empty")
	}
	u, err := url.Parse(*redirect)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("sp new: -redirect-uri %q: expected an absolute http(s) URL without fragment", *redirect)
	}
	slug := slugOf(*name)
	id := slug + "-" + randomHex(3)
	e := spEntry{
		ClientID: id, Name: strings.TrimSpace(*name),
		// The slug without the random part: the SPs made for one service
		// on both platforms share a sector, so a citizen has one sub there.
		Sector:                 slug,
		RedirectURIs:           []string{*redirect},
		PostLogoutRedirectURIs: []string{(&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/logged-out"}).String()},
		Scopes:                 []string{"openid", "identite_pivot", "email"},
	}
	level, keysFile := "standard", ""
	if *plus {
		level = "plus"
		e.Claims = []string{"amr"}
		e.TokenEndpointAuthMethods = []string{"private_key_jwt"}
		e.IDTokenEncryptedResponseAlg, e.IDTokenEncryptedResponseEnc = "ECDH-ES", "A256GCM"
		e.UserinfoEncryptedResponseAlg, e.UserinfoEncryptedResponseEnc = "ECDH-ES", "A256GCM"
		private, public, err := newSPKeys()
		if err != nil {
			return err
		}
		e.JWKS = &jwksOut{Keys: public}
		keysFile = filepath.Join(*dir, id+".jwks.json")
		if err := writePrivateJWKS(keysFile, private); err != nil {
			return err
		}
	} else {
		e.ClientSecret = randomSecret()
	}
	body, err := marshalSPFile(level, e)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(out, spHeader(level, keysFile)+body); err != nil {
		return err
	}
	issuer, try := "http://localhost:8000", "-client-secret "+e.ClientSecret+" -acr eidas1"
	if *plus {
		issuer, try = "http://localhost:8001", "-keys "+keysFile+" -acr eidas3"
		fmt.Fprintf(info, "sesame sp new: private keys written to %s (mode 0600); never commit them\n", keysFile)
	}
	fmt.Fprintf(info, "sesame sp new: client_id %s for the %s platform; save the entry and start the dev stack with it:\n"+
		"  bin/sesame dev -sp FILE\n"+
		"then log in with the example client (docs/quickstart.md):\n"+
		"  go run ./examples/go-client -issuer %s -client-id %s %s\n", id, level, issuer, id, try)
	return nil
}

// spHeader says what the entry is and how to use it, as YAML comments.
func spHeader(level, keysFile string) string {
	var b strings.Builder
	if level == "plus" {
		b.WriteString("# Sésame: an SP for the \"+\" platform (eidas2, eidas3; FAPI 2.0: PAR, PKCE, DPoP,\n" +
			"# private_key_jwt; id_token and userinfo encrypted to its key), from `sesame sp new -plus`.\n" +
			"# Its private keys, for this SP alone (never commit them): " + keysFile + "\n")
	} else {
		b.WriteString("# Sésame: an SP for the standard platform (eidas1), from `sesame sp new`.\n" +
			"# It holds the SP's client_secret: keep it out of version control.\n")
	}
	b.WriteString("# Dev stack: bin/sesame dev -sp THIS_FILE registers it at start. Elsewhere, paste\n" +
		"# the entry under service_providers: of the platform with level: " + level + ".\n")
	return b.String()
}

// spEntry is the SP as printed: config.SP's fields that `sp new` sets,
// in the order a reader looks for them. The round-trip test checks that
// config reads it back.
type spEntry struct {
	ClientID                     string   `yaml:"client_id"`
	ClientSecret                 string   `yaml:"client_secret,omitempty"`
	Name                         string   `yaml:"name"`
	Sector                       string   `yaml:"sector"`
	RedirectURIs                 []string `yaml:"redirect_uris,flow"`
	PostLogoutRedirectURIs       []string `yaml:"post_logout_redirect_uris,flow"`
	Scopes                       []string `yaml:"scopes,flow"`
	Claims                       []string `yaml:"claims,flow,omitempty"`
	TokenEndpointAuthMethods     []string `yaml:"token_endpoint_auth_methods,flow,omitempty"`
	IDTokenEncryptedResponseAlg  string   `yaml:"id_token_encrypted_response_alg,omitempty"`
	IDTokenEncryptedResponseEnc  string   `yaml:"id_token_encrypted_response_enc,omitempty"`
	UserinfoEncryptedResponseAlg string   `yaml:"userinfo_encrypted_response_alg,omitempty"`
	UserinfoEncryptedResponseEnc string   `yaml:"userinfo_encrypted_response_enc,omitempty"`
	JWKS                         *jwksOut `yaml:"jwks,omitempty"`
}

// jwksOut is a public key set written as YAML (config.InlineJWKS reads
// the mapping).
type jwksOut struct {
	Keys []jwkOut `yaml:"keys"`
}

// jwkOut is one public EC key, members in the usual order.
type jwkOut struct {
	Kty string `yaml:"kty" json:"kty"`
	Use string `yaml:"use" json:"use"`
	Kid string `yaml:"kid" json:"kid"`
	Alg string `yaml:"alg" json:"alg"`
	Crv string `yaml:"crv" json:"crv"`
	X   string `yaml:"x" json:"x"`
	Y   string `yaml:"y" json:"y"`
}

func marshalSPFile(level string, e spEntry) (string, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	doc := struct {
		Level            string    `yaml:"level"`
		ServiceProviders []spEntry `yaml:"service_providers"`
	}{level, []spEntry{e}}
	if err := enc.Encode(doc); err != nil {
		return "", fmt.Errorf("sp new: encode the entry: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("sp new: encode the entry: %w", err)
	}
	return buf.String(), nil
}

// newSPKeys makes the two P-256 key pairs a "+" SP needs: ES256 for
// private_key_jwt (and nothing else: DPoP proofs take a key of their
// own), ECDH-ES for the tokens the broker encrypts to it.
func newSPKeys() (jose.JSONWebKeySet, []jwkOut, error) {
	var private jose.JSONWebKeySet
	var public []jwkOut
	for _, k := range []struct{ use, alg string }{{"sig", string(jose.ES256)}, {"enc", string(jose.ECDH_ES)}} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return private, nil, fmt.Errorf("sp new: generate a key: %w", err)
		}
		jwk := jose.JSONWebKey{Key: key, Use: k.use, Algorithm: k.alg}
		pubKey := jwk.Public()
		tp, err := pubKey.Thumbprint(crypto.SHA256)
		if err != nil {
			return private, nil, fmt.Errorf("sp new: key thumbprint: %w", err)
		}
		jwk.KeyID = k.use + "-" + base64.RawURLEncoding.EncodeToString(tp)[:12]
		private.Keys = append(private.Keys, jwk)
		pubKey.KeyID = jwk.KeyID
		raw, err := pubKey.MarshalJSON()
		if err != nil {
			return private, nil, fmt.Errorf("sp new: encode a public key: %w", err)
		}
		var pub jwkOut
		if err := json.Unmarshal(raw, &pub); err != nil {
			return private, nil, fmt.Errorf("sp new: encode a public key: %w", err)
		}
		public = append(public, pub)
	}
	return private, public, nil
}

// writePrivateJWKS writes the private key set readable by its owner
// only, and never over an existing file: another SP's keys may be there.
func writePrivateJWKS(path string, set jose.JSONWebKeySet) error {
	raw, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return fmt.Errorf("sp new: encode the private keys: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("sp new: private keys: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("sp new: private keys: %w", err)
	}
	if _, err := f.Write(append(raw, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("sp new: write %s: %w", path, err)
	}
	return f.Close()
}

// slugOf makes a client_id prefix of a service name: lower-case ASCII
// letters and digits, accents dropped, anything else a single dash.
func slugOf(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if a, ok := unaccent[r]; ok {
			r = a
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimSuffix(b.String(), "-")
	if len(s) > 40 {
		s = strings.TrimSuffix(s[:40], "-")
	}
	if s == "" {
		s = "sp"
	}
	return s
}

// unaccent covers the letters of French service names.
var unaccent = map[rune]rune{
	'à': 'a', 'â': 'a', 'ä': 'a', 'á': 'a', 'ç': 'c', 'é': 'e', 'è': 'e', 'ê': 'e', 'ë': 'e',
	'î': 'i', 'ï': 'i', 'í': 'i', 'ô': 'o', 'ö': 'o', 'ó': 'o', 'ù': 'u', 'û': 'u', 'ü': 'u', 'ú': 'u',
	'ÿ': 'y', 'ñ': 'n', 'œ': 'o', 'æ': 'a',
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// randomSecret is a client_secret of 256 bits: 43 characters, above the
// broker's 32-character minimum.
func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// loadConfig loads the config file and registers the SPs of the -sp
// files on it (config.AddSPFiles).
func loadConfig(path string, spFiles []string) (*config.Config, []config.AddedSP, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	added, err := cfg.AddSPFiles(spFiles...)
	if err != nil {
		return nil, nil, err
	}
	return cfg, added, nil
}

// reloadRegistry is the SIGHUP reload of the registries: the file again,
// with the SPs of the -sp files, which would otherwise vanish from a
// running broker at its first reload.
func reloadRegistry(rl *broker.Reloader, path string, spFiles []string) error {
	if len(spFiles) == 0 {
		_, err := rl.ReloadFile(path)
		return err
	}
	next, _, err := loadConfig(path, spFiles)
	if err != nil {
		return fmt.Errorf("reload %s: %w", path, err)
	}
	_, err = rl.Reload(next)
	return err
}

// fileList is a repeatable flag.
type fileList []string

func (l *fileList) String() string { return strings.Join(*l, ",") }

func (l *fileList) Set(v string) error {
	if v == "" {
		return errors.New("empty file name")
	}
	*l = append(*l, v)
	return nil
}
