package devstack

import (
	"errors"
	"os"
	"path/filepath"
)

// RepoRoot returns the repository root: the nearest directory above the working directory
// that holds go.mod. Tests (whose working directory is their package's) and the local tools
// both find the template, the fixtures and the virtualenv from it.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the repository (no go.mod found)")
		}
		dir = parent
	}
}
