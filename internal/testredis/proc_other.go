//go:build !linux

package testredis

import "os/exec"

// setDeathSignal is a no-op where the kernel offers no parent-death signal;
// t.Cleanup still stops the server on every orderly exit.
func setDeathSignal(*exec.Cmd) {}
