package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/internal/keys"
	"github.com/sesame-id/sesame/providers/dataprovider"
)

// genKeys prints a private signing JWKS (for platforms' signing_keys), a
// session sealing key (for broker.session_keys), or a data provider's
// private decryption keys (for providers.data_providers[].keys).
func genKeys(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(keysUsage)
	}
	switch args[0] {
	case "init", "rotate", "status":
		return keyDir(args[0], args[1:], out)
	case "hsm-generate":
		return hsmGenerate(args[1:], out)
	case "session":
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return err
		}
		_, err := fmt.Fprintln(out, base64.RawURLEncoding.EncodeToString(k))
		return err
	case "dataprovider":
		set, err := dataprovider.GenerateKeys()
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(set)
	case "signing":
		fs := flag.NewFlagSet("keys signing", flag.ContinueOnError)
		algs := fs.String("alg", "ES256,RS256", "comma-separated algorithms, one key each")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var list []jose.SignatureAlgorithm
		for _, a := range strings.Split(*algs, ",") {
			list = append(list, jose.SignatureAlgorithm(strings.TrimSpace(a)))
		}
		set, err := keys.Generate(list...)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(set.PrivateJWKS())
	}
	return fmt.Errorf("keys: unknown kind %q\n%s", args[0], keysUsage)
}

const keysUsage = `usage:
  sesame keys signing [-alg ES256,RS256] > keys.json   a private JWKS for a platform's signing_keys
  sesame keys session                                  a session sealing key
  sesame keys dataprovider > dp-keys.json              a mock data provider's decryption keys
  sesame keys init DIR [-alg ES256,RS256]              start a key directory (signing_keys_dir): one current key per alg
  sesame keys rotate DIR [-alg ALG,...] [-lead 10m] [-keep 24h] [-hsm-label LABEL [-kid KID]]
                                                       move the states on and prepare the next key
  sesame keys status DIR                               each key's state now
  sesame keys hsm-generate -module LIB -token-label T [-pin-env SESAME_HSM_PIN] -label L [-alg ES256]
                                                       make a key pair inside the HSM (sesame-hsm binary only)`

// keyDir runs the key directory commands: init, rotate and status. Flags
// may come before or after DIR.
func keyDir(cmd string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	algs := fs.String("alg", "", "comma-separated algorithms (init: default ES256,RS256; rotate: default every alg of the manifest)")
	lead := fs.Duration("lead", keys.DefaultLead, "rotate: how long the new next key is published before it signs; must exceed the platform's jwks_max_age + signing_keys_reload")
	keep := fs.Duration("keep", keys.DefaultKeep, "rotate: how long a retired key stays published after it stopped signing; must exceed every token's life, id_token_hint at logout included")
	label := fs.String("hsm-label", "", "rotate: the next key is this HSM key pair (generated in the token beforehand) instead of a new key file")
	kid := fs.String("kid", "", "rotate: the kid of the -hsm-label key (default: the label)")
	dir, rest := "", args
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		dir, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	} else if fs.NArg() > 0 || dir == "" {
		return fmt.Errorf("usage: sesame keys %s DIR [flags]", cmd)
	}
	var list []jose.SignatureAlgorithm
	if *algs != "" {
		for _, a := range strings.Split(*algs, ",") {
			list = append(list, jose.SignatureAlgorithm(strings.TrimSpace(a)))
		}
	}
	var report []string
	var err error
	switch cmd {
	case "init":
		if len(list) == 0 {
			list = []jose.SignatureAlgorithm{jose.ES256, jose.RS256}
		}
		report, err = keys.Init(dir, list, time.Now())
	case "rotate":
		report, err = keys.Rotate(dir, keys.RotateOptions{Algs: list, Lead: *lead, Keep: *keep, HSMLabel: *label, KeyID: *kid})
	case "status":
		return keyStatus(dir, out)
	}
	for _, line := range report {
		fmt.Fprintln(out, line)
	}
	return err
}

// keyStatus prints each key of a directory with its state now, which may
// differ from the manifest's: a next key whose time came signs already.
func keyStatus(dir string, out io.Writer) error {
	m, err := keys.ReadManifest(dir)
	if err != nil {
		return err
	}
	now := time.Now()
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KID\tALG\tSTATE\tNOW\tACTIVATE_AT\tREMOVE_AT\tWHERE")
	signing := map[string]string{}
	for _, k := range m.Keys {
		if k.State == keys.Next && !now.Before(k.ActivateAt) {
			signing[k.Alg] = k.KeyID
		}
	}
	for _, k := range m.Keys {
		if _, ok := signing[k.Alg]; !ok && k.State == keys.Current {
			signing[k.Alg] = k.KeyID
		}
	}
	for _, k := range m.Keys {
		state := "published"
		switch {
		case signing[k.Alg] == k.KeyID:
			state = "signing"
		case k.State == keys.Retired && !now.Before(k.RemoveAt):
			state = "gone (rotate removes it)"
		case k.State == keys.Current:
			state = "published, superseded (rotate retires it)"
		}
		where := "file " + k.File
		if k.HSMLabel != "" {
			where = "HSM " + k.HSMLabel
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KeyID, k.Alg, k.State, state, stamp(k.ActivateAt), stamp(k.RemoveAt), where)
	}
	return w.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// hsmGenerate makes a signing key pair inside an HSM and prints its
// public JWK; `keys rotate -hsm-label` then makes it the next key.
func hsmGenerate(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("keys hsm-generate", flag.ContinueOnError)
	fs.SetOutput(out)
	module := fs.String("module", "", "the PKCS#11 library of the HSM")
	token := fs.String("token-label", "", "the token's label")
	pinEnv := fs.String("pin-env", "SESAME_HSM_PIN", "the environment variable holding the user PIN")
	label := fs.String("label", "", "the label of the new key pair")
	alg := fs.String("alg", "ES256", "ES256, RS256 or PS256")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *module == "" || *token == "" || *label == "" {
		return errors.New("usage: sesame keys hsm-generate -module LIB -token-label T [-pin-env SESAME_HSM_PIN] -label L [-alg ES256]")
	}
	pin, ok := os.LookupEnv(*pinEnv)
	if !ok {
		return fmt.Errorf("keys hsm-generate: the environment variable %s (-pin-env) holding the PIN is not set", *pinEnv)
	}
	h, err := keys.OpenHSM(keys.HSMConfig{Module: *module, TokenLabel: *token, PIN: pin})
	if err != nil {
		return err
	}
	defer h.Close()
	if _, err := h.Signer(*label); err == nil {
		return fmt.Errorf("keys hsm-generate: the token already has a key pair labelled %q", *label)
	}
	g, ok := h.(keys.HSMGenerator)
	if !ok {
		return errors.New("keys hsm-generate: this HSM implementation cannot make keys; use the HSM's own tools")
	}
	s, err := g.Generate(*label, *alg)
	if err != nil {
		return err
	}
	pub := jose.JSONWebKey{Key: s.Public(), KeyID: *label, Algorithm: *alg, Use: "sig"}
	raw, err := json.MarshalIndent(pub, "", "  ")
	if err != nil {
		return fmt.Errorf("keys hsm-generate: encode the public key: %w", err)
	}
	fmt.Fprintf(out, "%s\n# made in the HSM, not extractable; make it the next key with:\n#   sesame keys rotate DIR -alg %s -hsm-label %s\n", raw, *alg, *label)
	return nil
}
