package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/internal/keys"
	"github.com/sesame-id/sesame/providers/dataprovider"
)

// genKeys prints a private signing JWKS (for platforms' signing_keys), a
// session sealing key (for broker.session_keys), or a data provider's
// private decryption keys (for providers.data_providers[].keys).
func genKeys(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: sesame keys signing [-alg ES256,RS256] | sesame keys session | sesame keys dataprovider")
	}
	switch args[0] {
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
	return fmt.Errorf("keys: unknown kind %q (want signing, session or dataprovider)", args[0])
}
