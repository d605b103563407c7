//go:build !linux

package loadgen

import (
	"os/exec"
	"time"
)

// setDeathSignal does nothing outside Linux: the bench stops what it
// started itself, but a killed bench may leave processes behind.
func setDeathSignal(*exec.Cmd) {}

// selfCPU is not measured outside Linux.
func selfCPU() (time.Duration, bool) { return 0, false }
