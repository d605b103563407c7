//go:build pkcs11

package testhsm

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder intercepts the outcome of Start without ending the real test.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) {
	r.failed, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

// Without SoftHSM2 the HSM tests skip, saying how to install it, except
// where they are required (make test sets SESAME_REQUIRE_HSM=1), where
// they fail.
func TestHSMMissingSoftHSM(t *testing.T) {
	t.Setenv("SESAME_SOFTHSM_MODULE", t.TempDir()+"/libsofthsm2.so")
	for _, tc := range []struct {
		ci, require string
		wantFail    bool
	}{{"", "", false}, {"true", "", true}, {"", "1", true}} {
		t.Setenv("CI", tc.ci)
		t.Setenv("SESAME_REQUIRE_HSM", tc.require)
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Start(r)
		}()
		<-done
		if r.failed != tc.wantFail || r.skipped == tc.wantFail {
			t.Errorf("CI=%q SESAME_REQUIRE_HSM=%q: failed=%v skipped=%v, want failed=%v", tc.ci, tc.require, r.failed, r.skipped, tc.wantFail)
		}
		if !strings.Contains(r.msg, "apt-get install softhsm2") {
			t.Errorf("message %q does not tell how to install SoftHSM2", r.msg)
		}
	}
}
