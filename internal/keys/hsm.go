package keys

import (
	"crypto"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// HSMConfig says how to reach a PKCS#11 token.
type HSMConfig struct {
	// Module is the path of the vendor's PKCS#11 library (SoftHSM2:
	// /usr/lib/softhsm/libsofthsm2.so).
	Module string
	// TokenLabel selects the token.
	TokenLabel string
	// PIN logs in as the token's user. It comes from the environment,
	// never from the config file.
	PIN string
}

// HSM holds private keys that never leave it: it only signs.
type HSM interface {
	// Signer finds the key pair labelled label. Its Sign runs in the
	// HSM; Public is read from the HSM's public key object.
	Signer(label string) (crypto.Signer, error)
	// Close logs out and releases the module.
	Close() error
}

// HSMGenerator is an HSM that can make key pairs (the PKCS#11 one can),
// for `sesame keys hsm-generate`.
type HSMGenerator interface {
	// Generate makes a key pair for alg labelled label, which the HSM
	// will never let out, and returns its signer.
	Generate(label, alg string) (crypto.Signer, error)
}

// ErrNoPKCS11 is what opening an HSM gives in a binary built without
// PKCS#11 support, which is the default build: PKCS#11 needs cgo and a
// vendor's C library, and the default binary stays static and cgo-free.
var ErrNoPKCS11 = errors.New("this binary was built without PKCS#11 support; use the sesame-hsm image (deploy/Dockerfile.hsm) or build with CGO_ENABLED=1 go build -tags pkcs11")

var (
	hsmMu     sync.Mutex
	hsmOpener func(HSMConfig) (HSM, error)
)

// RegisterHSM installs the PKCS#11 implementation. The build tag pkcs11
// compiles a file of this package that calls it, so nothing but the tag
// decides whether a binary can use an HSM.
func RegisterHSM(open func(HSMConfig) (HSM, error)) {
	hsmMu.Lock()
	defer hsmMu.Unlock()
	hsmOpener = open
}

// HSMSupported reports whether this binary can open an HSM.
func HSMSupported() bool {
	hsmMu.Lock()
	defer hsmMu.Unlock()
	return hsmOpener != nil
}

// OpenHSM logs in to the token cfg names.
func OpenHSM(cfg HSMConfig) (HSM, error) {
	hsmMu.Lock()
	open := hsmOpener
	hsmMu.Unlock()
	if open == nil {
		return nil, ErrNoPKCS11
	}
	h, err := open(cfg)
	if err != nil {
		return nil, fmt.Errorf("keys: HSM token %q via %s: %w", cfg.TokenLabel, cfg.Module, err)
	}
	return h, nil
}

// hsmKey makes a Key of an HSM key pair. go-jose signs through an opaque
// signer, which hashes the payload in process, has the HSM sign the
// digest, and turns ECDSA's ASN.1 signature into JOSE's r||s.
func hsmKey(h HSM, label, kid string, alg jose.SignatureAlgorithm, st State) (Key, error) {
	s, err := h.Signer(label)
	if err != nil {
		return Key{}, fmt.Errorf("HSM key %q: %w", label, err)
	}
	if err := checkKeyType(alg, s.Public()); err != nil {
		return Key{}, fmt.Errorf("HSM key %q: %w", label, err)
	}
	op := cryptosigner.Opaque(s)
	if !slices.Contains(op.Algs(), alg) {
		return Key{}, fmt.Errorf("HSM key %q cannot sign %s", label, alg)
	}
	pub := jose.JSONWebKey{Key: s.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}
	return Key{KeyID: kid, Alg: alg, State: st, InHSM: true, public: pub, key: op}, nil
}
