package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/sesame-id/sesame/broker/clientkeys"
	"github.com/sesame-id/sesame/config"
)

// errNoSPKey means an SP that must get encrypted tokens has no usable key
// right now (its jwks_uri is down, or holds no encryption key).
var errNoSPKey = errors.New("no usable encryption key for the SP")

// encryptFor wraps a signed JWT in a JWE to the SP's key (nested JWT, cty
// "JWT"), when the SP's registration asks for it; otherwise it returns jws
// as it is. alg empty means the alg the SP's key implies.
func (p *Platform) encryptFor(ctx context.Context, sp *config.SP, jws, alg, enc string) (string, error) {
	return encryptTo(ctx, p.reg(ctx).spKeys[sp.ClientID], sp.ClientID, jws, alg, enc)
}

// encryptTo wraps jws in a JWE to a key of keys (nil: none registered),
// or returns it as it is when enc is empty.
func encryptTo(ctx context.Context, keys *clientkeys.Keys, who, jws, alg, enc string) (string, error) {
	if enc == "" {
		return jws, nil
	}
	if keys == nil {
		return "", errNoSPKey
	}
	key, keyAlg, err := keys.Encryption(ctx, alg)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errNoSPKey, err)
	}
	opts := (&jose.EncrypterOptions{}).WithContentType("JWT").WithType("JWT")
	e, err := jose.NewEncrypter(jose.ContentEncryption(enc), jose.Recipient{Algorithm: keyAlg, Key: key.Key, KeyID: key.KeyID}, opts)
	if err != nil {
		return "", fmt.Errorf("encrypter for %s: %w", who, err)
	}
	obj, err := e.Encrypt([]byte(jws))
	if err != nil {
		return "", fmt.Errorf("encrypt for %s: %w", who, err)
	}
	return obj.CompactSerialize()
}
