//go:build pkcs11

package keys

import "github.com/sesame-id/sesame/internal/keys/pkcs11"

// With the pkcs11 tag, HSMs are opened through crypto11.
func init() {
	RegisterHSM(func(c HSMConfig) (HSM, error) { return pkcs11.Open(c.Module, c.TokenLabel, c.PIN) })
}
