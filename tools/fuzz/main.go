// Command fuzz runs every Go fuzz target of the repository for a fixed time each (make fuzz).
//
//	go run ./tools/fuzz [-fuzztime 1m] [-minimizetime 10s] [-retries 2] [dir:FuzzName ...]
//
// Without arguments it finds the targets itself: every `func FuzzX` in a _test.go file under
// shared, tools and e2e.
//
// Go 1.26's fuzzing coordinator has a shutdown race (go.dev/issue/75804, fixed in Go 1.27):
// when -fuzztime expires while a worker is still busy, which happens on a loaded machine, the
// target fails with a bare "context deadline exceeded" although nothing was found. A real
// finding always says so ("Failing input written to testdata/fuzz/…", a panic, a t.Error
// line) and leaves a new file in the target's testdata/fuzz directory. So a run that failed
// with that bare message, with no finding in its output and no new corpus file, is run again
// (at most -retries times), and said so; every other failure fails at once.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

func main() {
	var (
		fuzztime     = flag.String("fuzztime", "1m", "go test -fuzztime for each target")
		minimizetime = flag.String("minimizetime", "10s", "go test -fuzzminimizetime")
		retries      = flag.Int("retries", 2, "runs again of a target that failed only with Go's fuzztime shutdown race")
	)
	flag.Parse()
	targets := flag.Args()
	if len(targets) == 0 {
		found, err := findTargets([]string{"shared", "tools", "e2e"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "fuzz:", err)
			os.Exit(1)
		}
		targets = found
	}
	if len(targets) == 0 {
		fmt.Fprintln(os.Stderr, "fuzz: no fuzz targets found")
		os.Exit(1)
	}
	for _, t := range targets {
		dir, name, ok := strings.Cut(t, ":")
		if !ok {
			fmt.Fprintf(os.Stderr, "fuzz: target %q is not dir:FuzzName\n", t)
			os.Exit(2)
		}
		if err := fuzzOne(dir, name, *fuzztime, *minimizetime, *retries); err != nil {
			fmt.Fprintf(os.Stderr, "fuzz: %s (./%s): %v\n", name, dir, err)
			os.Exit(1)
		}
	}
}

// fuzzOne runs one target, again after a shutdown-race failure, up to retries times.
func fuzzOne(dir, name, fuzztime, minimizetime string, retries int) error {
	corpus := filepath.Join(dir, "testdata", "fuzz", name)
	for run := 0; ; run++ {
		fmt.Printf("--- fuzz %s (./%s, %s)\n", name, dir, fuzztime)
		before, err := corpusFiles(corpus)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+name+"$",
			"-fuzztime", fuzztime, "-fuzzminimizetime", minimizetime, "./"+dir)
		cmd.Stdout = io.MultiWriter(os.Stdout, &out)
		cmd.Stderr = io.MultiWriter(os.Stderr, &out)
		runErr := cmd.Run()
		if runErr == nil {
			return nil
		}
		var exit *exec.ExitError
		if !errors.As(runErr, &exit) {
			return runErr
		}
		after, err := corpusFiles(corpus)
		if err != nil {
			return err
		}
		if !shutdownRace(out.String(), newFiles(before, after)) {
			return fmt.Errorf("failed (%v)", runErr)
		}
		if run >= retries {
			return fmt.Errorf("failed %d times with only Go's fuzztime shutdown race (go.dev/issue/75804); the machine is too busy for -fuzztime %s", run+1, fuzztime)
		}
		fmt.Printf("--- fuzz %s: failed with only \"context deadline exceeded\" at the fuzztime boundary, no input found and none written (go.dev/issue/75804): running it again\n", name)
	}
}

// findings are the lines by which go test reports something real.
var findings = regexp.MustCompile(`(?m)Failing input written to|^\s*panic:|fuzz: minimizing|^\s+\S+_test\.go:\d+:|test timed out|build failed|\[setup failed\]`)

// shutdownRace reports whether a failed fuzz run's output and the corpus files it added say
// nothing but Go's fuzztime shutdown race: the target failed with the bare message
// "context deadline exceeded" as its only reason, no finding in the output, no new file.
func shutdownRace(output string, added []string) bool {
	if len(added) > 0 || findings.MatchString(output) {
		return false
	}
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	var reasons []string
	inFail := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "--- FAIL: Fuzz"):
			inFail = true
		case inFail && strings.HasPrefix(line, "    "):
			reasons = append(reasons, strings.TrimSpace(line))
		default:
			inFail = false
		}
	}
	return len(reasons) == 1 && reasons[0] == "context deadline exceeded"
}

// corpusFiles lists the files of a target's testdata/fuzz directory (none when it is absent).
func corpusFiles(dir string) (map[string]bool, error) {
	files := map[string]bool{}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return files, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		files[e.Name()] = true
	}
	return files, nil
}

func newFiles(before, after map[string]bool) []string {
	var added []string
	for f := range after {
		if !before[f] {
			added = append(added, f)
		}
	}
	sort.Strings(added)
	return added
}

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz[A-Za-z0-9_]*)\(`)

// findTargets lists dir:FuzzName for every fuzz function in the _test.go files under roots.
func findTargets(roots []string) ([]string, error) {
	var targets []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if n := d.Name(); n == "testdata" || (strings.HasPrefix(n, ".") && path != root) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
				targets = append(targets, filepath.ToSlash(filepath.Dir(path))+":"+string(m[1]))
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	sort.Strings(targets)
	return targets, nil
}
