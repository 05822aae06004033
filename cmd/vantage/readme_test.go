package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-probe/vantage/internal/testenv"
)

// The README's "Then run your own" block runs as written: each line's
// command, with its redirection, in a directory holding configs/local.toml
// (the agent line runs in the background, as the README's "another
// terminal" says).
func TestReadmeCommandsRunAsWritten(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(filepath.Join("..", "..", "configs", "local.toml"))
	if err != nil {
		t.Fatal(err)
	}
	block := readmeBlock(t, string(readme), "Then run your own")
	if len(block) < 4 {
		t.Fatalf("the block has %d commands: %q", len(block), block)
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:9115"); err != nil {
		t.Skipf("port 9115, which configs/local.toml listens on, is taken here: %v", err)
	} else {
		ln.Close()
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "configs"), 0o755)
	os.WriteFile(filepath.Join(dir, "configs", "local.toml"), local, 0o600)
	t.Chdir(dir)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	agentDone := make(chan int, 1)
	for _, line := range block {
		args, redirect := splitCommand(t, line)
		if args[0] == "agent" {
			var out, errb bytes.Buffer
			go func() { agentDone <- run(ctx, args, &out, &errb) }()
			testenv.Poll(t, 20*time.Second, "the agent's /healthz", func() bool {
				c, err := net.Dial("tcp", "127.0.0.1:9115")
				if err == nil {
					c.Close()
				}
				return err == nil
			})
			continue
		}
		var out, errb bytes.Buffer
		if code := run(ctx, args, &out, &errb); code != exitOK {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s", line, code, out.String(), errb.String())
			continue
		}
		if redirect != "" {
			if err := os.WriteFile(redirect, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			if out.Len() == 0 {
				t.Errorf("%s: wrote nothing to %s", line, redirect)
			}
		}
	}
	cancel()
	select {
	case code := <-agentDone:
		if code != exitOK {
			t.Errorf("the agent exited %d on shutdown", code)
		}
	case <-time.After(30 * time.Second):
		t.Error("the agent did not stop")
	}
}

// readmeBlock returns the commands of the first ```sh block after marker,
// without "bin/vantage" and comments.
func readmeBlock(t *testing.T, readme, marker string) []string {
	t.Helper()
	i := strings.Index(readme, marker)
	if i < 0 {
		t.Fatalf("README has no %q", marker)
	}
	rest := readme[i:]
	start := strings.Index(rest, "```sh\n")
	end := strings.Index(rest[start+6:], "```")
	var out []string
	sc := bufio.NewScanner(strings.NewReader(rest[start+6 : start+6+end]))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "bin/vantage ") {
			t.Fatalf("README command %q does not run bin/vantage", line)
		}
		out = append(out, strings.TrimPrefix(line, "bin/vantage "))
	}
	return out
}

func splitCommand(t *testing.T, line string) (args []string, redirect string) {
	t.Helper()
	cmd, redirect, _ := strings.Cut(line, ">")
	return strings.Fields(cmd), strings.TrimSpace(redirect)
}
