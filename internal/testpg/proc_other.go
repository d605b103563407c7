//go:build !linux

package testpg

import "syscall"

// setDeathSignal is a no-op where the kernel offers no parent-death signal;
// Stop still shuts the server down on every orderly exit.
func setDeathSignal(*syscall.SysProcAttr) {}
