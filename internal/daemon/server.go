package daemon

import (
	"context"
	"crypto/subtle"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/astrid-runtime/astrid/internal/rpc"
)

// RPCPath is the WebSocket endpoint.
const RPCPath = "/rpc"

// FrontendHeader names the frontend in the upgrade request.
const FrontendHeader = "Astrid-Frontend"

// clientConn is one authenticated client connection.
type clientConn struct {
	caller Caller
	rpc    *rpc.Conn
	done   chan struct{} // closed when the connection and its writers ended

	mu     sync.Mutex
	subs   map[string]*subscription // guarded by mu; by subscription id
	closed bool                     // guarded by mu
	wg     sync.WaitGroup           // subscription writers
}

// ServeHTTP authenticates and upgrades a client connection, then serves it.
func (d *Daemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != RPCPath {
		http.NotFound(w, r)
		return
	}
	if code, why := d.authorize(r); code != 0 {
		// NOTE: refused before any upgrade; the reason is generic on
		// purpose and the log has the detail.
		d.metrics.refused.Add(1)
		d.log.Warn("connection refused", "status", code, "why", why, "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"))
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="astrid"`)
		}
		http.Error(w, http.StatusText(code)+": "+why, code)
		return
	}
	d.mu.Lock()
	full := len(d.conns) >= maxConns
	d.mu.Unlock()
	if full || d.ctx.Err() != nil {
		http.Error(w, "too many connections or shutting down", http.StatusServiceUnavailable)
		return
	}
	// Origin was checked above, more strictly than Accept would.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		d.log.Warn("websocket upgrade failed", "err", err)
		return
	}
	c := &clientConn{
		caller: Caller{Conn: d.connSeq.Add(1), Frontend: clip(r.Header.Get(FrontendHeader), 32), User: localUser()},
		done:   make(chan struct{}),
		subs:   map[string]*subscription{},
	}
	c.rpc = rpc.NewConn(ws, rpc.Options{Handler: d.handler(c), Logger: d.log})
	if !d.addConn(c) {
		c.rpc.Close()
		return
	}
	d.metrics.connections.Add(1)
	d.log.Info("client connected", "conn", c.caller.Conn, "frontend", c.caller.Frontend)
	// NOTE: not d.ctx: at shutdown, drainConns lets the calls in flight
	// (astrid.shutdown's own reply among them) finish before closing.
	err = c.rpc.Run(context.Background())
	c.closeSubs()
	d.removeConn(c)
	close(c.done)
	d.log.Info("client left", "conn", c.caller.Conn, "err", err)
}

// authorize returns 0 for an acceptable upgrade request, else the HTTP
// status to refuse it with and why.
func (d *Daemon) authorize(r *http.Request) (int, string) {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return http.StatusUnauthorized, "missing bearer token"
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), d.token) != 1 {
		return http.StatusUnauthorized, "wrong token"
	}
	own := []string{"127.0.0.1:" + strconv.Itoa(d.port), "localhost:" + strconv.Itoa(d.port)}
	if host := r.Host; host != own[0] && host != own[1] {
		return http.StatusForbidden, "wrong Host header"
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "http://"+own[0] && origin != "http://"+own[1] {
		return http.StatusForbidden, "cross-origin requests are refused"
	}
	return 0, ""
}

func (d *Daemon) addConn(c *clientConn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return false
	}
	d.conns[c] = struct{}{}
	d.seen = true
	d.signalIdleLocked()
	return true
}

func (d *Daemon) removeConn(c *clientConn) {
	d.mu.Lock()
	delete(d.conns, c)
	d.signalIdleLocked()
	d.mu.Unlock()
}

func (d *Daemon) signalIdleLocked() {
	select {
	case d.idle <- struct{}{}:
	default:
	}
}

func (d *Daemon) connCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// localUser names the verified user: whoever could read the 0600 token.
func localUser() string {
	if u, err := user.Current(); err == nil {
		return "local:" + u.Username
	}
	return "local:uid=" + strconv.Itoa(os.Getuid())
}
