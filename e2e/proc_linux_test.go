package e2e

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill a sesame process if the test binary
// dies without running its cleanups (go test -timeout, SIGKILL).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
