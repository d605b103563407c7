//go:build pkcs11

package keys

import "testing"

// The pkcs11 tag alone registers the PKCS#11 implementation.
func TestHSMSupportRegistered(t *testing.T) {
	if !HSMSupported() {
		t.Fatal("built with -tags pkcs11 but no HSM implementation registered")
	}
}
