//go:build !linux

package testenv

// startAndWait starts srv.cmd and closes srv.done when it exits. Off Linux the
// server only stops through Main.
func startAndWait(srv *server) error {
	if err := srv.cmd.Start(); err != nil {
		close(srv.done)
		return err
	}
	go func() {
		_ = srv.cmd.Wait()
		close(srv.done)
	}()
	return nil
}
