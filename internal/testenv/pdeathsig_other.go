//go:build unix && !linux

package testenv

import "syscall"

// setPdeathsig does nothing: only Linux has a parent-death signal. An
// orphaned cluster is swept away by the next test process (sweepStale).
func setPdeathsig(*syscall.SysProcAttr, syscall.Signal) {}
