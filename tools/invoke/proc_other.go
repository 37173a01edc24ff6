//go:build !unix

package main

import (
	"os/exec"
	"syscall"
)

func newProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(cmd *exec.Cmd, kill bool) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
