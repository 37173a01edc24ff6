//go:build unix && !linux

package devstack

import "os/exec"

// startAttached starts cmd and closes done when it exits. Off Linux there is no
// parent-death signal, so dieWithParent has no effect: Stop ends the emulator.
func startAttached(cmd *exec.Cmd, done chan struct{}, _ bool) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait(); close(done) }()
	return nil
}
