package daemon

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/astrid-runtime/astrid/internal/events"
)

// metrics are the daemon's counters, exposed in the Prometheus text format
// on [gateway] metrics_addr when set. What the runtime does (model calls,
// tool calls, approvals, denials, ...) is counted from the event bus by
// count, one subscriber that sees every event.
type metrics struct {
	connections atomic.Uint64 // accepted
	refused     atomic.Uint64 // 401/403 before upgrade
	streamed    atomic.Uint64 // events written to subscribers
	streamLost  atomic.Uint64 // events subscribers lost (lagged)

	mu       sync.Mutex
	requests map[string]uint64      // guarded by mu; by method ("other" for unknown)
	events   map[events.Kind]uint64 // guarded by mu; bus events by kind
	tools    map[string]uint64      // guarded by mu; finished tool calls by status
	inTok    int64                  // guarded by mu; model input tokens
	outTok   int64                  // guarded by mu; model output tokens
	costUSD  float64                // guarded by mu; model cost
	missed   uint64                 // guarded by mu; bus events the counter lost
}

// metricsBuffer is the counter's bus buffer: large, so that it rarely
// lags; when it does, astrid_metrics_missed_total says by how much.
const metricsBuffer = 8192

// count counts the events of sub until it is closed.
func (m *metrics) count(sub *events.Subscription) {
	for e := range sub.C {
		m.mu.Lock()
		if m.events == nil {
			m.events, m.tools = map[events.Kind]uint64{}, map[string]uint64{}
		}
		m.missed += e.Missed
		m.events[e.Kind]++
		switch d := e.Data.(type) {
		case events.LLM:
			if e.Kind == events.LLMUsage {
				m.inTok += d.InputTokens
				m.outTok += d.OutputTokens
				m.costUSD += d.CostUSD
			}
		case events.Tool:
			if e.Kind == events.ToolCallCompleted || e.Kind == events.ToolCallFailed {
				m.tools[d.Status]++ // NOTE: a fixed set: ok, error, denied, cancelled
			}
		}
		m.mu.Unlock()
	}
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
	fmt.Fprintf(w, "# TYPE astrid_uptime_seconds gauge\nastrid_uptime_seconds %.3f\n", time.Since(d.started).Seconds())
	fmt.Fprintf(w, "# TYPE astrid_connections_total counter\nastrid_connections_total %d\n", d.metrics.connections.Load())
	fmt.Fprintf(w, "# TYPE astrid_connections_refused_total counter\nastrid_connections_refused_total %d\n", d.metrics.refused.Load())
	fmt.Fprintf(w, "# TYPE astrid_connections_open gauge\nastrid_connections_open %d\n", d.connCount())
	fmt.Fprintf(w, "# TYPE astrid_event_subscribers gauge\nastrid_event_subscribers %d\n", d.streams.Load())
	fmt.Fprintf(w, "# TYPE astrid_events_sent_total counter\nastrid_events_sent_total %d\n", d.metrics.streamed.Load())
	fmt.Fprintf(w, "# TYPE astrid_events_dropped_total counter\nastrid_events_dropped_total %d\n", d.metrics.streamLost.Load())
	m := &d.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	labelled(w, "astrid_requests_total", "method", m.requests)
	labelled(w, "astrid_bus_events_total", "kind", m.events)
	labelled(w, "astrid_tool_calls_total", "status", m.tools)
	fmt.Fprintf(w, "# TYPE astrid_llm_input_tokens_total counter\nastrid_llm_input_tokens_total %d\n", m.inTok)
	fmt.Fprintf(w, "# TYPE astrid_llm_output_tokens_total counter\nastrid_llm_output_tokens_total %d\n", m.outTok)
	fmt.Fprintf(w, "# TYPE astrid_llm_cost_usd_total counter\nastrid_llm_cost_usd_total %g\n", m.costUSD)
	fmt.Fprintf(w, "# TYPE astrid_metrics_missed_total counter\nastrid_metrics_missed_total %d\n", m.missed)
}

// labelled writes a counter with one label, its values sorted.
func labelled[K ~string](w io.Writer, name, label string, vals map[K]uint64) {
	fmt.Fprintf(w, "# TYPE %s counter\n", name)
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, k, vals[k])
	}
}
