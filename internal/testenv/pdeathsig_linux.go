package testenv

import "syscall"

// setPdeathsig has the kernel send sig to the child when its parent dies.
func setPdeathsig(a *syscall.SysProcAttr, sig syscall.Signal) { a.Pdeathsig = sig }
