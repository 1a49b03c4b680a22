package daemon

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// metrics are the daemon's counters, exposed in the Prometheus text format
// on [gateway] metrics_addr when set.
type metrics struct {
	connections atomic.Uint64 // accepted
	refused     atomic.Uint64 // 401/403 before upgrade

	mu       sync.Mutex
	requests map[string]uint64 // guarded by mu; by method ("other" for unknown)
}

func (m *metrics) request(method string, known bool) {
	if !known {
		method = "other" // NOTE: client-chosen names must not grow the map
	}
	m.mu.Lock()
	if m.requests == nil {
		m.requests = map[string]uint64{}
	}
	m.requests[method]++
	m.mu.Unlock()
}

// serveMetrics starts the metrics endpoint on a loopback address.
func (d *Daemon) serveMetrics(addr string) (*http.Server, error) {
	ln, err := listen(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(d.writeMetrics), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	d.log.Info("metrics endpoint", "addr", ln.Addr().String())
	return srv, nil
}

func (d *Daemon) writeMetrics(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metrics" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	hs := d.hub.Stats()
	fmt.Fprintf(w, "# TYPE astrid_uptime_seconds gauge\nastrid_uptime_seconds %.3f\n", time.Since(d.started).Seconds())
	fmt.Fprintf(w, "# TYPE astrid_connections_total counter\nastrid_connections_total %d\n", d.metrics.connections.Load())
	fmt.Fprintf(w, "# TYPE astrid_connections_refused_total counter\nastrid_connections_refused_total %d\n", d.metrics.refused.Load())
	fmt.Fprintf(w, "# TYPE astrid_connections_open gauge\nastrid_connections_open %d\n", d.connCount())
	fmt.Fprintf(w, "# TYPE astrid_event_subscribers gauge\nastrid_event_subscribers %d\n", hs.Subscribers)
	fmt.Fprintf(w, "# TYPE astrid_events_sent_total counter\nastrid_events_sent_total %d\n", hs.Queued)
	fmt.Fprintf(w, "# TYPE astrid_events_dropped_total counter\nastrid_events_dropped_total %d\n", hs.Dropped)
	d.metrics.mu.Lock()
	names := make([]string, 0, len(d.metrics.requests))
	for k := range d.metrics.requests {
		names = append(names, k)
	}
	slices.Sort(names)
	fmt.Fprintf(w, "# TYPE astrid_requests_total counter\n")
	for _, k := range names {
		fmt.Fprintf(w, "astrid_requests_total{method=%q} %d\n", k, d.metrics.requests[k])
	}
	d.metrics.mu.Unlock()
}
