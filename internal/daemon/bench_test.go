package daemon

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/client"
)

// reportMedian reports the median and 90th percentile of ds in ms.
func reportMedian(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2])/1e6, "ms-median")
	b.ReportMetric(float64(ds[len(ds)*9/10])/1e6, "ms-p90")
	b.ReportMetric(0, "ns/op")
}

// readyOnce starts astridd and returns how long until its port answers.
func readyOnce(b *testing.B, h *testHome, astridd string) time.Duration {
	os.Remove(h.home.PortFile())
	cmd := exec.Command(astridd)
	cmd.Env = h.environ()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var d time.Duration
	for {
		if p, err := os.ReadFile(h.home.PortFile()); err == nil {
			if c, err := net.Dial("tcp", "127.0.0.1:"+strings.TrimSpace(string(p))); err == nil {
				d = time.Since(t0)
				c.Close()
				break
			}
		}
		if time.Since(t0) > 10*time.Second {
			cmd.Process.Kill()
			cmd.Wait()
			b.Fatal("astridd not ready in 10 s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	return d
}

// BenchmarkDaemonReady: exec astridd until its port accepts connections,
// on a home that already holds keys and a store (the first start, which
// creates them, is reported as ms-first).
func BenchmarkDaemonReady(b *testing.B) {
	astridd, _ := binaries(b)
	h := newHome(b, "")
	first := readyOnce(b, h, astridd)
	var ds []time.Duration
	for b.Loop() {
		ds = append(ds, readyOnce(b, h, astridd))
	}
	reportMedian(b, ds)
	b.ReportMetric(float64(first)/1e6, "ms-first")
}

// BenchmarkDaemonIdleRSS reports astridd's resident memory after start, one
// client's status call and a second of idleness.
func BenchmarkDaemonIdleRSS(b *testing.B) {
	astridd, _ := binaries(b)
	h := newHome(b, "")
	for b.Loop() {
		p := startProc(b, h, astridd)
		waitReady(b, h)
		time.Sleep(time.Second)
		b.ReportMetric(float64(vmRSS(b, p.cmd.Process.Pid))/1024, "MiB-RSS")
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(b, 10*time.Second)
	}
	b.ReportMetric(0, "ns/op")
}

// vmRSS returns a process's VmRSS in KiB.
func vmRSS(b *testing.B, pid int) int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func execTimes(b *testing.B, h *testHome, exe string, args ...string) {
	var ds []time.Duration
	for b.Loop() {
		cmd := exec.Command(exe, args...)
		cmd.Env = h.environ()
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		ds = append(ds, time.Since(t0))
	}
	reportMedian(b, ds)
}

// BenchmarkVersion: `astrid --version`, exec to exit.
func BenchmarkVersion(b *testing.B) {
	_, astrid := binaries(b)
	execTimes(b, newHome(b, ""), astrid, "--version")
}

// BenchmarkCLIConnected: `astrid daemon status` with a daemon running:
// exec, read the port and token, connect, authenticate, one call, print,
// exit.
func BenchmarkCLIConnected(b *testing.B) {
	astridd, astrid := binaries(b)
	h := newHome(b, "")
	startProc(b, h, astridd)
	waitReady(b, h)
	execTimes(b, h, astrid, "daemon", "status")
}

// BenchmarkFanout10Clients: one event published by the daemon until each
// of 10 WebSocket clients subscribed to the session has it.
func BenchmarkFanout10Clients(b *testing.B) {
	h := newHome(b, "")
	r := start(b, h, h.options())
	ctx := context.Background()
	var cs []*client.Client
	for range 10 {
		c := dial(b, h)
		if _, err := c.Subscribe(ctx, "s"); err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	e, _ := api.NewEvent("s", api.EventTextDelta, api.TextDelta{Turn: "t", Text: "hello"})
	for b.Loop() {
		r.d.Publish(e)
		for _, c := range cs {
			<-c.Events()
		}
	}
}
