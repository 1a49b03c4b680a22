package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// conn is one live connection to a server: a process or an HTTP session,
// the SDK client over it, and what the server told us.
type conn struct {
	srv     *server
	client  *client.Client
	tap     *tap
	proc    *process // stdio only
	started time.Time

	life    context.Context // server requests run in it; ends at close
	endLife context.CancelFunc

	protocol   string
	caps       mcpgo.ServerCapabilities
	serverInfo mcpgo.Implementation
	tools      []*Tool // as listed at connect; later lists go to srv.tools

	elicitLimit *limiter
	sampleLimit *limiter

	dead      chan struct{} // closed once: the connection is unusable
	deadOnce  sync.Once
	closeOnce sync.Once

	mu       sync.Mutex
	err      error                  // guarded by mu; why it died (nil: clean exit)
	inflight map[string]int         // guarded by mu; running tool calls by session
	progress map[string]progressRef // guarded by mu; by progress token
	refresh  bool                   // guarded by mu; a tools/list refresh is running
	again    bool                   // guarded by mu; another was asked for meanwhile

	secretURLs  map[string]string        // guarded by mu; URLs of URL elicitations → domain
	completions map[string]chan struct{} // guarded by mu; URL elicitations by id, closed when complete
	subs        map[string][]string      // guarded by mu; resource URI → the sessions subscribed to it
}

type progressRef struct {
	session string
	tool    string
}

// die marks the connection dead with err (nil: the server exited
// cleanly). The first reason wins.
func (c *conn) die(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.deadOnce.Do(func() { close(c.dead) })
}

func (c *conn) why() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// violation records a protocol violation; the supervisor stops the server
// for good.
func (c *conn) violation(reason string) {
	c.die(&ViolationError{Server: c.srv.name, Reason: reason})
}

// explain prefers the recorded reason (a violation, the process's exit and
// stderr) to the SDK's error about a closed transport.
func (c *conn) explain(err error) error {
	select {
	case <-c.dead:
		if w := c.why(); w != nil {
			return w
		}
	default:
	}
	return err
}

// close ends the connection: the SDK client, then the process (stdin
// closed, grace, SIGTERM, SIGKILL).
func (c *conn) close(grace time.Duration) {
	c.closeOnce.Do(func() {
		if c.endLife != nil {
			c.endLife()
		}
		if c.client != nil {
			if c.proc != nil {
				// Closing the SDK's stdio transport closes the process's
				// stdin; the process is ours to wait for.
				c.proc.stdin.Close()
			} else {
				_ = c.client.Close()
			}
		}
		if c.proc != nil {
			if grace <= 0 {
				grace = time.Millisecond
			}
			_ = c.proc.stop(grace)
			if c.client != nil {
				_ = c.client.Close()
			}
		}
		c.die(nil)
	})
}

// startStdio resolves, checks and launches the server's command through
// the sandbox.
func (c *conn) startStdio(ctx context.Context) (transport.Interface, error) {
	s, m := c.srv, c.srv.m
	bin, err := resolveCommand(s.cfg.Command, s.cfg.Cwd, m.o.PATH)
	if err != nil {
		return nil, fmt.Errorf("mcp server %s: %w", s.name, err)
	}
	// NOTE: the binary is hashed and then executed by path; a writer who
	// can replace it between the two wins the race. Pinned binaries
	// belong in directories only their owner can write.
	if err := checkHash(s.name, bin, s.cfg.BinaryHash); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(m.o.TempRoot, 0o700); err != nil {
		return nil, fmt.Errorf("mcp server %s: temp root: %w", s.name, err)
	}
	prof, err := s.profile(bin, filepath.Join(m.o.TempRoot, s.name))
	if err != nil {
		return nil, fmt.Errorf("mcp server %s: %w", s.name, err)
	}
	// The process outlives ctx (the start request); it ends at close.
	p, err := startProcess(context.WithoutCancel(ctx), m.o.Sandbox, prof, bin, s.cfg.Args)
	if err != nil {
		return nil, fmt.Errorf("mcp server %s: %w", s.name, err)
	}
	c.proc = p
	go func() {
		<-p.exited
		err := p.err
		if err != nil {
			if tail := strings.TrimSpace(p.stderr.String()); tail != "" {
				err = fmt.Errorf("%w; stderr: %s", err, lastLines(tail, 5))
			}
			err = fmt.Errorf("the server process ended: %w", err)
		}
		c.die(err)
	}()
	lr := newLineReader(p.stdout, m.limits.MessageBytes, c.violation, c.dead)
	c.tap = &tap{inner: transport.NewIO(lr, p.stdin, nil)}
	return c.tap, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// startHTTP builds the Streamable HTTP transport with bounded responses.
func (c *conn) startHTTP() (transport.Interface, error) {
	s, m := c.srv, c.srv.m
	base, err := c.oauthTransport(m.baseTransport())
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &limitTransport{base: base, max: int64(m.limits.MessageBytes), onViolation: c.violation}}
	// The standalone GET stream carries server requests and notifications
	// outside a call on the 2025 revisions Astrid pins.
	//lint:ignore SA1019 Astrid speaks 2025-11-25 and earlier, which have the GET stream.
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPBasicClient(hc), transport.WithHTTPLogger(m.log), transport.WithContinuousListening()}
	if len(s.cfg.Env) > 0 {
		// NOTE: for HTTP servers, env entries named HEADER_<Name> become
		// request headers (an API key for the server), with each '_' of
		// the name a '-' (HEADER_X_Api_Key sends X-Api-Key: environment
		// names have no '-'); nothing else of the configuration is sent.
		h := map[string]string{}
		for k, v := range s.cfg.Env {
			if name, ok := strings.CutPrefix(k, "HEADER_"); ok && name != "" {
				h[strings.ReplaceAll(name, "_", "-")] = v
			}
		}
		if len(h) > 0 {
			opts = append(opts, transport.WithHTTPHeaders(h))
		}
	}
	tr, err := transport.NewStreamableHTTP(s.cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("mcp server %s: %w", s.name, err)
	}
	c.tap = &tap{inner: tr, isHTTP: true}
	return httpTap{c.tap}, nil
}

// onNotification handles what a server tells us unasked.
func (c *conn) onNotification(n mcpgo.JSONRPCNotification) {
	s := c.srv
	switch n.Method {
	case mcpgo.MethodNotificationToolsListChanged:
		go c.refreshTools()
	case string(mcpgo.MethodNotificationProgress):
		f := n.Params.AdditionalFields
		tok := fmt.Sprint(f["progressToken"])
		c.mu.Lock()
		ref, ok := c.progress[tok]
		c.mu.Unlock()
		if !ok {
			return // not a call of ours: ignore rather than relay
		}
		ev := Event{Kind: "progress", Server: s.name, Session: ref.session, Tool: ref.tool}
		ev.Progress, _ = f["progress"].(float64)
		ev.Total, _ = f["total"].(float64)
		msg, _ := f["message"].(string)
		ev.Message = clipRunes(msg, 500)
		s.m.o.Notify(ev)
	case string(mcpgo.MethodNotificationMessage):
		data, _ := json.Marshal(n.Params.AdditionalFields["data"])
		level, _ := n.Params.AdditionalFields["level"].(string)
		s.m.o.Notify(Event{Kind: "log", Server: s.name, Message: clipRunes(level+": "+string(data), 2000)})
	case string(mcpgo.MethodNotificationElicitationComplete):
		id, _ := n.Params.AdditionalFields["elicitationId"].(string)
		id = clipRunes(id, 256)
		c.completed(id)
		s.m.o.Notify(Event{Kind: "elicitation_complete", Server: s.name, Session: c.session(), ID: id})
	case mcpgo.MethodNotificationResourceUpdated:
		uri, _ := n.Params.AdditionalFields["uri"].(string)
		c.mu.Lock()
		sessions := slices.Clone(c.subs[uri])
		c.mu.Unlock()
		// NOTE: an update goes to the sessions that subscribed to the URI
		// only; one nobody asked for is dropped.
		for _, session := range sessions {
			s.m.o.Notify(Event{Kind: "resource_updated", Server: s.name, Workspace: s.workspace, Session: session, ID: clipRunes(uri, 2048)})
		}
	}
}

// subscribe records that session subscribed to uri and reports whether it
// is the first (the server must be asked).
func (c *conn) subscribe(uri, session string) (first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs == nil {
		c.subs = map[string][]string{}
	}
	if slices.Contains(c.subs[uri], session) {
		return false
	}
	c.subs[uri] = append(c.subs[uri], session)
	return len(c.subs[uri]) == 1
}

// unsubscribe drops session's subscriptions (of uri only, when uri is
// set) and returns the URIs nobody is subscribed to any more.
func (c *conn) unsubscribe(session, uri string) (last []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for u, sessions := range c.subs {
		if uri != "" && u != uri || !slices.Contains(sessions, session) {
			continue
		}
		if sessions = slices.DeleteFunc(sessions, func(x string) bool { return x == session }); len(sessions) == 0 {
			delete(c.subs, u)
			last = append(last, u)
		} else {
			c.subs[u] = sessions
		}
	}
	slices.Sort(last)
	return last
}

// refreshTools lists the tools again after tools/list_changed. Refreshes
// do not pile up: one runs at a time, and one more follows if asked.
func (c *conn) refreshTools() {
	c.mu.Lock()
	if c.refresh {
		c.again = true
		c.mu.Unlock()
		return
	}
	c.refresh = true
	c.mu.Unlock()
	for {
		ctx, cancel := context.WithTimeout(c.life, c.srv.m.o.RequestTimeout)
		list, err := c.listTools(ctx)
		cancel()
		s := c.srv
		if err != nil {
			s.m.log.Warn("mcp tools refresh failed", "server", s.name, "err", err)
		} else {
			s.mu.Lock()
			if s.conn != c {
				s.mu.Unlock()
				return
			}
			old := s.tools
			s.tools = list
			s.mu.Unlock()
			s.swap(old, list)
			s.m.o.Notify(Event{Kind: "tools_changed", Server: s.name})
		}
		c.mu.Lock()
		if !c.again {
			c.refresh = false
			c.mu.Unlock()
			return
		}
		c.again = false
		c.mu.Unlock()
	}
}

// listTools lists and checks the server's tools. Tools that cannot be
// offered safely are left out and logged (see newTool).
func (c *conn) listTools(ctx context.Context) ([]*Tool, error) {
	res, err := c.client.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil {
		return nil, err
	}
	s := c.srv
	if len(res.Tools) > s.m.limits.Tools {
		return nil, fmt.Errorf("the server lists %d tools, more than the limit of %d", len(res.Tools), s.m.limits.Tools)
	}
	var out []*Tool
	seen := map[string]bool{}
	for _, t := range res.Tools {
		tool, err := newTool(s, t)
		if err != nil {
			s.m.log.Warn("mcp tool left out", "server", s.name, "tool", clipRunes(t.Name, 80), "err", err)
			continue
		}
		if seen[tool.name] {
			s.m.log.Warn("mcp tool listed twice; both left out", "server", s.name, "tool", tool.name)
			out = removeTool(out, tool.name)
			continue
		}
		seen[tool.name] = true
		out = append(out, tool)
	}
	return out, nil
}

func removeTool(list []*Tool, name string) []*Tool {
	var out []*Tool
	for _, t := range list {
		if t.name != name {
			out = append(out, t)
		}
	}
	return out
}

// begin registers a running tool call of session and returns its progress
// token and the function that ends the registration.
func (c *conn) begin(session, tool string) (string, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight[session]++
	tok := "astrid-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(len(c.progress))
	c.progress[tok] = progressRef{session: session, tool: tool}
	return tok, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.inflight[session]--; c.inflight[session] <= 0 {
			delete(c.inflight, session)
		}
		delete(c.progress, tok)
	}
}

// session returns the one session with a tool call running on this
// server, or "" when there are none or several.
func (c *conn) session() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.inflight) != 1 {
		return ""
	}
	for s := range c.inflight {
		return s
	}
	return ""
}

// errClosed is reported when the connection ended under a call.
var errClosed = errors.New("the connection to the server ended")
