package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/datajetty/webhooks/shared/dev/devstack"
)

// startEmulator starts the emulator on a free loopback port (logging to
// .local/dev-moto.log) and points the AWS SDK at it, unless AWS_ENDPOINT_URL already names
// one; then it returns nil and there is nothing to stop.
func startEmulator(ctx context.Context, root string) (*devstack.Emulator, error) {
	if os.Getenv("AWS_ENDPOINT_URL") != "" {
		localCredentials()
		return nil, nil
	}
	if err := os.MkdirAll(filepath.Join(root, ".local"), 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(root, ".local", "dev-moto.log"))
	if err != nil {
		return nil, err
	}
	emu, err := devstack.StartEmulator(ctx, root, devstack.EmulatorOptions{Log: logf, Ready: 30 * time.Second})
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("%w (see .local/dev-moto.log)", err)
	}
	os.Setenv("AWS_ENDPOINT_URL", emu.URL)
	localCredentials()
	return emu, nil
}

// localCredentials sets the region and the (dummy) credentials the emulator accepts, unless
// the environment has its own: the functions' AWS configuration reads them from the
// environment, as Lambda provides them.
func localCredentials() {
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
}
