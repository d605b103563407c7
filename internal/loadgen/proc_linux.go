package loadgen

import (
	"os/exec"
	"syscall"
	"time"
)

// setDeathSignal makes the kernel kill a started process when the bench
// dies without stopping it (SIGKILL, a crash), so that no broker or
// redis-server is left running.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// selfCPU is the CPU time (user + system) the bench process itself has
// used so far: the generator, and the round-robin proxy when there is one.
func selfCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
