package devstack

import (
	"os/exec"
	"runtime"
	"syscall"
)

// startAttached starts cmd and closes done when it exits. With dieWithParent the kernel
// sends the emulator SIGTERM when this process dies. Pdeathsig fires when the *thread*
// that forked the child exits, so the child is started and waited for from one goroutine
// locked to its thread.
func startAttached(cmd *exec.Cmd, done chan struct{}, dieWithParent bool) error {
	if dieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after the child exited.
		if err := cmd.Start(); err != nil {
			started <- err
			close(done)
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(done)
	}()
	return <-started
}
