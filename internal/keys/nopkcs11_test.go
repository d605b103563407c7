//go:build !pkcs11

package keys

import (
	"errors"
	"strings"
	"testing"
)

// The default build has no PKCS#11: opening an HSM says what to do. (The
// pkcs11 build has its own tests of OpenHSM against SoftHSM2.)
func TestNoPKCS11Support(t *testing.T) {
	if HSMSupported() {
		t.Fatal("the default build claims PKCS#11 support")
	}
	_, err := OpenHSM(HSMConfig{Module: "/x.so", TokenLabel: "t"})
	if !errors.Is(err, ErrNoPKCS11) || !strings.Contains(err.Error(), "-tags pkcs11") {
		t.Fatalf("err %v", err)
	}
}
