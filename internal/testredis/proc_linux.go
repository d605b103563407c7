package testredis

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill redis-server if the test binary dies
// without running its cleanups (go test -timeout, SIGKILL), so no orphan
// keeps running. Strictly it fires when the starting OS thread exits, which
// the Go runtime only does for goroutines that exit while locked to their
// thread; tests do not start Redis from such goroutines.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
