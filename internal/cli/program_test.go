package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// fakeFinder is a programFinder over a temporary directory: a module
// checkout in src, the running executable in exe/, and nothing on PATH
// but what lookPath is given.
type fakeFinder struct {
	programFinder
	dir    string
	src    string
	path   map[string]string
	builds []string
	notes  bytes.Buffer
}

func newFakeFinder(t *testing.T) *fakeFinder {
	t.Helper()
	dir := t.TempDir()
	f := &fakeFinder{dir: dir, src: filepath.Join(dir, "src"), path: map[string]string{}}
	for _, d := range []string{"exe", "src/internal/cli", "src/cmd/astrid-tui", "home/bin", "elsewhere"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(f.src, "go.mod"), "module "+modulePath+"\n\ngo 1.26.0\n")
	writeFile(t, filepath.Join(f.src, "cmd/astrid-tui/main.go"), "package main\n")
	f.programFinder = programFinder{
		getenv:     func(string) string { return "" },
		executable: func() (string, error) { return filepath.Join(dir, "exe", "astrid"), nil },
		lookPath: func(name string) (string, error) {
			if p, ok := f.path[name]; ok {
				return p, nil
			}
			return "", errors.New("not on PATH")
		},
		buildInfo: func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}}, true
		},
		sourceFile: filepath.Join(f.src, "internal/cli/program.go"),
		wd:         filepath.Join(dir, "elsewhere"),
		binDir:     filepath.Join(dir, "home/bin"),
		build: func(_ context.Context, goTool, root, pkg, out string) error {
			f.builds = append(f.builds, root+" "+pkg)
			return os.WriteFile(out, []byte("#!/bin/sh\n"), 0o755)
		},
		note: &f.notes,
	}
	f.path["go"] = "/usr/bin/go"
	return f
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindProgramOrder(t *testing.T) {
	ctx := context.Background()
	f := newFakeFinder(t)
	sibling := filepath.Join(f.dir, "exe", TUIName)

	// Nothing next to astrid or on PATH: built from the source.
	got, err := f.find(ctx, TUIName, TUIExeVar)
	if err != nil || !strings.HasPrefix(got, filepath.Join(f.dir, "home/bin", TUIName+"-src-")) {
		t.Fatalf("find = %q, %v; want a build under home/bin", got, err)
	}
	// On PATH wins over a build.
	f.path[TUIName] = "/opt/bin/astrid-tui"
	if got, err := f.find(ctx, TUIName, TUIExeVar); err != nil || got != "/opt/bin/astrid-tui" {
		t.Fatalf("find = %q, %v; want the one on PATH", got, err)
	}
	// A sibling that is not executable is no program.
	writeFile(t, sibling, "not a program")
	if got, _ := f.find(ctx, TUIName, TUIExeVar); got == sibling {
		t.Fatal("find returned a sibling that cannot be executed")
	}
	// An executable sibling wins over PATH.
	if err := os.Chmod(sibling, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := f.find(ctx, TUIName, TUIExeVar); err != nil || got != sibling {
		t.Fatalf("find = %q, %v; want the sibling", got, err)
	}
	// The environment variable wins over everything.
	f.getenv = func(k string) string {
		if k == TUIExeVar {
			return "/custom/astrid-tui"
		}
		return ""
	}
	if got, err := f.find(ctx, TUIName, TUIExeVar); err != nil || got != "/custom/astrid-tui" {
		t.Fatalf("find = %q, %v; want the variable's", got, err)
	}
}

func TestFindProgramBuildsOnceAndCaches(t *testing.T) {
	ctx := context.Background()
	f := newFakeFinder(t)
	stale := filepath.Join(f.binDir, TUIName+"-src-0000000000000000")
	writeFile(t, stale, "old build")

	first, err := f.find(ctx, TUIName, TUIExeVar)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.builds) != 1 || f.builds[0] != f.src+" ./cmd/astrid-tui" {
		t.Fatalf("builds = %q, want one of ./cmd/astrid-tui in %s", f.builds, f.src)
	}
	if n := strings.Count(f.notes.String(), "\n"); n != 1 || !strings.Contains(f.notes.String(), "building astrid-tui from the source in "+f.src) {
		t.Fatalf("notes = %q, want one line saying it builds", f.notes.String())
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the build from older source was kept: %v", err)
	}
	second, err := f.find(ctx, TUIName, TUIExeVar)
	if err != nil || second != first || len(f.builds) != 1 {
		t.Fatalf("second find = %q, %v after %d builds; want the cached %q", second, err, len(f.builds), first)
	}

	// Editing the source makes a new key, so a new build.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(f.src, "cmd/astrid-tui/main.go"), later, later); err != nil {
		t.Fatal(err)
	}
	third, err := f.find(ctx, TUIName, TUIExeVar)
	if err != nil || third == first || len(f.builds) != 2 {
		t.Fatalf("after an edit: find = %q, %v after %d builds; want a new build", third, err, len(f.builds))
	}
	// A failed build is an error, and leaves nothing behind.
	writeFile(t, filepath.Join(f.src, "cmd/astrid-tui/new.go"), "package main\n")
	f.build = func(context.Context, string, string, string, string) error { return errors.New("compile error") }
	if _, err := f.find(ctx, TUIName, TUIExeVar); err == nil || !strings.Contains(err.Error(), "compile error") {
		t.Fatalf("find after a failed build = %v, want the build's error", err)
	}
	left, _ := filepath.Glob(filepath.Join(f.binDir, "*.tmp*"))
	if len(left) != 0 {
		t.Errorf("a failed build left %q", left)
	}
}

func TestFindProgramModuleRootFromWorkingDirectory(t *testing.T) {
	f := newFakeFinder(t)
	// Built with -trimpath: the source file's path says nothing.
	f.sourceFile = modulePath + "/internal/cli/program.go"
	f.wd = filepath.Join(f.src, "internal")
	if _, err := f.find(context.Background(), TUIName, TUIExeVar); err != nil || len(f.builds) != 1 || !strings.HasPrefix(f.builds[0], f.src+" ") {
		t.Fatalf("find = %v, builds %q; want a build in %s", err, f.builds, f.src)
	}
}

func TestFindProgramCannotBuild(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(f *fakeFinder)
		want   string
	}{
		"a release build": {func(f *fakeFinder) {
			f.buildInfo = func() (*debug.BuildInfo, bool) {
				return &debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v1.2.3"}}, true
			}
		}, "not built from a source checkout"},
		"another module": {func(f *fakeFinder) {
			f.buildInfo = func() (*debug.BuildInfo, bool) {
				return &debug.BuildInfo{Main: debug.Module{Path: "example.com/fork", Version: "(devel)"}}, true
			}
		}, "not built from a source checkout"},
		"no source": {func(f *fakeFinder) {
			f.sourceFile = modulePath + "/internal/cli/program.go"
			writeFile(t, filepath.Join(f.dir, "elsewhere", "go.mod"), "module example.com/other\n")
		}, "source of " + modulePath + " was not found"},
		"no go":   {func(f *fakeFinder) { delete(f.path, "go") }, "no go toolchain"},
		"no home": {func(f *fakeFinder) { f.binDir = "" }, "no $ASTRID_HOME"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeFinder(t)
			tc.change(f)
			_, err := f.find(context.Background(), TUIName, TUIExeVar)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "neither next to this program nor on PATH") {
				t.Fatalf("find = %v, want an error saying %q", err, tc.want)
			}
			if len(f.builds) != 0 {
				t.Fatalf("it built %q", f.builds)
			}
		})
	}
}

func TestSourceKeyUsesCleanRevision(t *testing.T) {
	root := t.TempDir()
	bi := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}}
	if k, err := sourceKey(bi, root); err != nil || k != "rev-0123456789ab" {
		t.Fatalf("clean revision: key %q, %v", k, err)
	}
	bi.Settings[1].Value = "true"
	if k, err := sourceKey(bi, root); err != nil || !strings.HasPrefix(k, "src-") {
		t.Fatalf("modified tree: key %q, %v; want a source hash", k, err)
	}
}
