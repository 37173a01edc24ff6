// Package devenv is what the local tools (make invoke, make token, make redrive) share
// about the stack `make dev` runs: the environment it records in .local/dev.env, and the
// development token issuer it verifies tokens with.
package devenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/datajetty/webhooks/shared/config"
)

// FileName is where `make dev` (tools/dev) records the resolved configuration of the
// running local stack, relative to the repository root.
const FileName = ".local/dev.env"

// ErrNotRunning is returned by Load when there is no dev.env: the local stack was never
// started here.
var ErrNotRunning = errors.New("start `make dev` first (in another terminal): it runs the local stack and writes " + FileName)

// Load reads a dev.env file. A missing file is ErrNotRunning (wrapped with the path).
func Load(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no %s: %w", file, ErrNotRunning)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if env["AWS_ENDPOINT_URL"] == "" {
		return nil, fmt.Errorf("%s has no AWS_ENDPOINT_URL: restart `make dev` to rewrite it", file)
	}
	return env, nil
}

// Parse reads KEY=value lines, the format tools/dev writes: no quoting, the value is
// everything after the first '='. Blank lines and lines starting with '#' are skipped.
func Parse(r io.Reader) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("line %d: want KEY=value, got %q", n, line)
		}
		env[k] = v
	}
	return env, sc.Err()
}

// CheckRunning reports whether the stack of env still runs: dev.env outlives `make dev`, and
// a stopped stack's emulator no longer answers at AWS_ENDPOINT_URL.
func CheckRunning(env map[string]string) error {
	u, err := url.Parse(env["AWS_ENDPOINT_URL"])
	if err != nil || u.Host == "" {
		return fmt.Errorf("AWS_ENDPOINT_URL %q in %s is not a URL: restart `make dev`", env["AWS_ENDPOINT_URL"], FileName)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		return fmt.Errorf("the local stack is not running (nothing answers at %s, recorded in %s): %w", u, FileName, ErrNotRunning)
	}
	conn.Close()
	return nil
}

// Region is the region of the local stack: AWS_REGION (or AWS_DEFAULT_REGION) from the
// process environment if set, else the region of the first ARN recorded in env (the
// emulator keeps resources per region, and dev.env records no region of its own), else
// us-east-1, the region tools/dev defaults to.
func Region(env map[string]string) string {
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// arn:partition:service:region:account:resource
		if parts := strings.SplitN(env[k], ":", 6); len(parts) == 6 && parts[0] == "arn" && parts[3] != "" {
			return parts[3]
		}
	}
	return "us-east-1"
}

// QueuePrefix returns the prefix tools/dev gave the local resources (devstack names each
// one prefix + logical id), read from the ReplayQueue's URL in env; "dev-" if it cannot
// be told.
func QueuePrefix(env map[string]string) string {
	if u, err := url.Parse(env[config.ReplayQueueURL.Name]); err == nil {
		if name := path.Base(u.Path); strings.HasSuffix(name, "ReplayQueue") {
			return strings.TrimSuffix(name, "ReplayQueue")
		}
	}
	return "dev-"
}

// UseLocalAWS points the AWS SDK of this process at the local stack of env: it sets
// AWS_ENDPOINT_URL, the region (see Region) and, unless credentials are already set,
// dummy ones (the emulator accepts any).
func UseLocalAWS(env map[string]string) error {
	vars := map[string]string{"AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"], "AWS_REGION": Region(env)}
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"] = "local", "local"
	}
	for k, v := range vars {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}
