package testenv

import (
	"runtime"
	"syscall"
)

// startAndWait starts srv.cmd so that the kernel kills it (SIGTERM) when the
// test process dies, even without Main's cleanup, and closes srv.done when it
// exits. Pdeathsig fires when the *thread* that forked the child exits, so the
// child is started and waited for from one goroutine locked to its thread.
func startAndWait(srv *server) error {
	srv.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after the
		// child has exited.
		if err := srv.cmd.Start(); err != nil {
			started <- err
			close(srv.done)
			return
		}
		started <- nil
		_ = srv.cmd.Wait()
		close(srv.done)
	}()
	return <-started
}
