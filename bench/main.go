// Command bench measures the footprint figures issue 7 sets targets for,
// on the real binaries: `astrid --version`, the CLI's cold start to
// connected with a daemon running (`astrid daemon status`), the daemon's
// time to ready (its port answering), and its idle resident memory, alone
// and holding 100 idle sessions.
//
// Run it from the module root:
//
//	go run ./bench            # builds the binaries into a temporary directory
//	go run ./bench -bin DIR   # uses DIR/astrid and DIR/astridd
//	go run ./bench -n 51      # runs per timing (median and p90 reported)
//
// Everything happens in a temporary $ASTRID_HOME with the offline replay
// provider; nothing leaves the machine. See bench/README.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
	"github.com/astrid-runtime/astrid/internal/home"
)

func main() {
	bin := flag.String("bin", "", "directory with astrid and astridd (default: build them)")
	n := flag.Int("n", 31, "runs per timing")
	settle := flag.Duration("settle", 2*time.Second, "idle time before reading the daemon's memory")
	sessions := flag.Int("sessions", 100, "idle sessions for the second memory figure")
	flag.Parse()
	if err := run(*bin, *n, *settle, *sessions); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin string, n int, settle time.Duration, sessions int) error {
	tmp, err := os.MkdirTemp("", "astrid-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "bin")
		fmt.Println("building astrid and astridd ...")
		out, err := exec.Command("go", "build", "-o", bin+"/", "./cmd/astrid", "./cmd/astridd").CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	astrid, astridd := filepath.Join(bin, "astrid"), filepath.Join(bin, "astridd")
	// A binary the linker just wrote is still dirty in the page cache, and
	// dirty pages cannot be paged out: astridd's release of its start-up
	// pages (internal/daemon/trim.go) would depend on writeback timing.
	// An installed binary is clean; make these so.
	for _, p := range []string{astrid, astridd} {
		if err := syncFile(p); err != nil {
			return err
		}
	}
	h, environ, err := newHome(tmp)
	if err != nil {
		return err
	}

	d, err := timeRuns(n, environ, astrid, "--version")
	if err != nil {
		return err
	}
	report("astrid --version", d, "15 ms")

	// The first start creates the keys and the store; time the later ones.
	if _, err := readyOnce(h, environ, astridd); err != nil {
		return err
	}
	// A ready astridd gives back its start-up pages (internal/daemon/
	// trim.go), so the next one may read its executable from the disk:
	// timed back to back, and with the executable read into the page
	// cache first, as after an install or when another process ran it.
	for _, warm := range []bool{false, true} {
		var ready []time.Duration
		for range n {
			if warm {
				if err := readFile(astridd); err != nil {
					return err
				}
			}
			r, err := readyOnce(h, environ, astridd)
			if err != nil {
				return err
			}
			ready = append(ready, r)
		}
		what := "astridd ready (port answering), back to back"
		if warm {
			what = "astridd ready, executable in the page cache"
		}
		report(what, ready, "30 ms")
	}

	p, err := startDaemon(h, environ, astridd)
	if err != nil {
		return err
	}
	defer p.stop()
	d, err = timeRuns(n, environ, astrid, "daemon", "status")
	if err != nil {
		return err
	}
	report("astrid daemon status (cold start to connected)", d, "50 ms")
	p.stop()

	// Memory: a fresh daemon, one status call, then idle.
	p, err = startDaemon(h, environ, astridd)
	if err != nil {
		return err
	}
	defer p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, h, client.DialOptions{Frontend: "bench"})
	if err != nil {
		return err
	}
	if _, err := c.Status(ctx); err != nil {
		return err
	}
	time.Sleep(settle)
	m, err := readMem(p.cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("%-48s %s  (target < 25 MiB)\n", "astridd idle RSS", m)

	ws := filepath.Join(tmp, "ws")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return err
	}
	for i := range sessions {
		if _, err := c.CreateSession(ctx, api.CreateSessionParams{Workspace: ws, Title: "bench " + strconv.Itoa(i)}); err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
	}
	time.Sleep(settle)
	m, err = readMem(p.cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("%-48s %s  (target < 60 MiB)\n", fmt.Sprintf("astridd RSS with %d idle sessions", sessions), m)
	c.Close()
	return nil
}

// newHome makes an $ASTRID_HOME whose model is the offline replay
// provider, and the environment to run the binaries in.
func newHome(tmp string) (home.Dir, []string, error) {
	h := home.Dir(filepath.Join(tmp, "home"))
	if err := os.MkdirAll(h.Path(), 0o700); err != nil {
		return "", nil, err
	}
	script := filepath.Join(tmp, "model.jsonl")
	if err := os.WriteFile(script, []byte(`{"text": "hello"}`+"\n"), 0o600); err != nil {
		return "", nil, err
	}
	cfg := "[model]\nprovider = \"replay\"\nmodel = \"bench\"\napi_url = \"file://" + script + "\"\n"
	if err := os.WriteFile(h.ConfigFile(), []byte(cfg), 0o600); err != nil {
		return "", nil, err
	}
	return h, []string{"ASTRID_HOME=" + h.Path(), "HOME=" + tmp, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + tmp}, nil
}

// readFile reads path through, into the page cache.
func readFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// syncFile writes path's dirty pages to the disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// timeRuns runs exe n times and returns each wall time, exec to exit.
func timeRuns(n int, environ []string, exe string, args ...string) ([]time.Duration, error) {
	var ds []time.Duration
	for range n {
		cmd := exec.Command(exe, args...)
		cmd.Env = environ
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s %s: %v\n%s", exe, strings.Join(args, " "), err, out)
		}
		ds = append(ds, time.Since(t0))
	}
	return ds, nil
}

func report(what string, ds []time.Duration, target string) {
	slices.Sort(ds)
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms" }
	fmt.Printf("%-48s median %s, p90 %s, min %s  (target < %s, %d runs)\n", what, ms(ds[len(ds)/2]), ms(ds[len(ds)*9/10]), ms(ds[0]), target, len(ds))
}

type proc struct {
	cmd  *exec.Cmd
	done chan error
}

func startDaemon(h home.Dir, environ []string, astridd string) (*proc, error) {
	_ = os.Remove(h.PortFile())
	cmd := exec.Command(astridd)
	cmd.Env = environ
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	if _, err := waitPort(h, p, time.Now()); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// stop sends SIGTERM and waits for the daemon to exit (killing it after
// 10 s); stopping twice is harmless.
func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitPort waits until the daemon's port accepts a connection and returns
// the time since t0.
func waitPort(h home.Dir, p *proc, t0 time.Time) (time.Duration, error) {
	for {
		if b, err := os.ReadFile(h.PortFile()); err == nil {
			if c, err := net.Dial("tcp", "127.0.0.1:"+strings.TrimSpace(string(b))); err == nil {
				d := time.Since(t0)
				c.Close()
				return d, nil
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			return 0, fmt.Errorf("astridd exited before it was ready: %v (see %s)", err, h.LogsDir())
		default:
		}
		if time.Since(t0) > 10*time.Second {
			return 0, errors.New("astridd not ready in 10 s")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// readyOnce starts astridd and returns how long until its port answers.
func readyOnce(h home.Dir, environ []string, astridd string) (time.Duration, error) {
	_ = os.Remove(h.PortFile())
	cmd := exec.Command(astridd)
	cmd.Env = environ
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	d, err := waitPort(h, p, t0)
	p.stop()
	return d, err
}

// mem is a process's resident memory from /proc/PID/status, in KiB.
type mem struct{ rss, anon, file, shmem int }

func (m mem) String() string {
	mib := func(kb int) string { return strconv.FormatFloat(float64(kb)/1024, 'f', 1, 64) }
	return fmt.Sprintf("%s MiB (anon %s, file %s, shmem %s)", mib(m.rss), mib(m.anon), mib(m.file), mib(m.shmem))
}

func readMem(pid int) (mem, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return mem{}, err
	}
	defer f.Close()
	var m mem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmRSS":
			m.rss = n
		case "RssAnon":
			m.anon = n
		case "RssFile":
			m.file = n
		case "RssShmem":
			m.shmem = n
		}
	}
	return m, sc.Err()
}
