package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// envRunCLI makes the test binary run the command line instead of the tests (TestMain), so
// TestHelp sees real exit codes and the real stdout and stderr.
const envRunCLI = "PROCTOR_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envRunCLI) == "1" {
		os.Exit(run(context.Background(), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestHelp: -h and --help print usage to stdout and exit 0 for proctor and for every command and
// group in the dispatch table (so a new command is covered by being added), and the top-level
// usage names every command.
func TestHelp(t *testing.T) {
	cases := [][]string{{"--help"}, {"-h"}, {"help"}}
	var walk func(prefix []string, cmds []command)
	walk = func(prefix []string, cmds []command) {
		for _, c := range cmds {
			p := append(slices.Clone(prefix), c.name)
			cases = append(cases, append(slices.Clone(p), "--help"), append(slices.Clone(p), "-h"))
			walk(p, c.subs)
		}
	}
	walk(nil, commands())
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = append(os.Environ(), envRunCLI+"=1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", exit.ExitCode(), stdout.String(), stderr.String())
			} else if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(stdout.String(), "usage: proctor") {
				t.Errorf("stdout does not start with the usage:\n%s", stdout.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr is not empty: %s", stderr.String())
			}
		})
	}
	for _, c := range commands() {
		if !strings.Contains(usage, "\n  "+c.name+" ") {
			t.Errorf("the usage does not list %q", c.name)
		}
		for _, s := range c.subs {
			if !strings.Contains(c.usage, s.name) {
				t.Errorf("the usage of %s does not name %q", c.name, s.name)
			}
		}
	}
}

// TestCommandLineMistakes: a mistake exits 2 with a message on stderr, never 0.
func TestCommandLineMistakes(t *testing.T) {
	for _, args := range [][]string{{}, {"bogus"}, {"models"}, {"models", "bogus"}, {"serve", "--bogus"}, {"eval", "nothing"}} {
		if code := run(context.Background(), args); code != 2 {
			t.Errorf("proctor %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}
