package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The tail of a real CI run that failed with nothing found (Go 1.26.8, shared/auth).
const raceOutput = `fuzz: elapsed: 0s, gathering baseline coverage: 0/97 completed
fuzz: elapsed: 1s, gathering baseline coverage: 97/97 completed, now fuzzing with 2 workers
fuzz: elapsed: 9s, execs: 64133 (12556/sec), new interesting: 11 (total: 108)
fuzz: elapsed: 11s, execs: 73308 (4404/sec), new interesting: 15 (total: 112)
--- FAIL: FuzzVerify (11.18s)
    context deadline exceeded
FAIL
exit status 1
FAIL	github.com/datajetty/webhooks/shared/auth	11.227s
`

// How go test reports a real finding.
const findingOutput = `fuzz: elapsed: 3s, execs: 5777 (1925/sec), new interesting: 1 (total: 98)
fuzz: minimizing 57-byte failing input file
fuzz: elapsed: 4s, minimizing
--- FAIL: FuzzVerify (4.02s)
    --- FAIL: FuzzVerify (0.00s)
        verify_test.go:41: accepted a token without a signature

    Failing input written to testdata/fuzz/FuzzVerify/5d3c8e1f0a2b
    To re-run:
    go test -run=FuzzVerify/5d3c8e1f0a2b
FAIL
exit status 1
`

func TestShutdownRace(t *testing.T) {
	cases := []struct {
		name   string
		output string
		added  []string
		want   bool
	}{
		{"bare deadline at the fuzztime boundary", raceOutput, nil, true},
		{"a finding", findingOutput, nil, false},
		{"the bare message but a new corpus file", raceOutput, []string{"5d3c8e1f0a2b"}, false},
		{"a panic", "panic: runtime error: index out of range\n--- FAIL: FuzzX (1.00s)\n    context deadline exceeded\n", nil, false},
		{"another reason", "--- FAIL: FuzzX (10.10s)\n    fuzzing process hung or terminated unexpectedly: exit status 2\nFAIL\n", nil, false},
		{"the deadline and another reason", "--- FAIL: FuzzX (10.10s)\n    context deadline exceeded\n    worker exited\nFAIL\n", nil, false},
		{"a test timeout", "panic: test timed out after 10m0s\n", nil, false},
		{"a build failure", "# github.com/x/y\n./a.go:3:1: syntax error\nFAIL\tgithub.com/x/y [build failed]\n", nil, false},
		{"no output", "", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := shutdownRace(c.output, c.added); got != c.want {
				t.Errorf("shutdownRace = %v, want %v", got, c.want)
			}
		})
	}
}

func TestFindTargets(t *testing.T) {
	root := t.TempDir()
	write := func(rel, src string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("shared/a/a_test.go", "package a\nfunc FuzzOne(f *testing.F) {}\nfunc TestX(t *testing.T) {}\nfunc FuzzTwo(f *testing.F) {}\n")
	write("shared/a/a.go", "package a\nfunc FuzzNotATest(f int) {}\n")
	write("shared/a/testdata/fuzz/x_test.go", "package x\nfunc FuzzHidden(f *testing.F) {}\n")
	write("tools/b/b_test.go", "package b\n// func FuzzInAComment(f *testing.F) {}\n")
	t.Chdir(root)
	got, err := findTargets([]string{"shared", "tools", "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"shared/a:FuzzOne", "shared/a:FuzzTwo"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findTargets = %v, want %v", got, want)
	}
}

func TestNewFiles(t *testing.T) {
	got := newFiles(map[string]bool{"a": true}, map[string]bool{"a": true, "c": true, "b": true})
	if want := []string{"b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("newFiles = %v, want %v", got, want)
	}
}
