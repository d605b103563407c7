package testpg

import "syscall"

// setDeathSignal makes the kernel kill initdb or postgres if the test
// binary dies without running its cleanups (go test -timeout, SIGKILL), so
// no orphan server keeps running; its backends then exit on their own when
// they see the postmaster gone. Go sets it after switching to the postgres
// user, so the change of credentials does not clear it. Strictly it fires
// when the starting OS thread exits, which the Go runtime only does for
// goroutines that exit while locked to their thread; tests do not start
// servers from such goroutines.
func setDeathSignal(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
