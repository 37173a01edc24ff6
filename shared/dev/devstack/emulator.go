package devstack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// EmulatorCommand returns the command that runs the local AWS emulator (moto in server
// mode from the project's virtualenv, through tools/emulator/serve.py, which serializes
// DynamoDB requests so conditional writes are atomic as in DynamoDB) on 127.0.0.1:port.
// Every starter (make emulator-start, tests, make dev) uses the same launcher.
func EmulatorCommand(repoRoot string, port int) (*exec.Cmd, error) {
	python := filepath.Join(repoRoot, ".venv", "bin", "python")
	script := filepath.Join(repoRoot, "tools", "emulator", "serve.py")
	for _, p := range []string{python, script} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s not found (run `make venv`)", p)
		}
	}
	cmd := exec.Command(python, script, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	return cmd, nil
}
