package mcp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/astrid-runtime/astrid/internal/audit"
)

// URL elicitation (MCP 2025-11-25): a server asks the user to open a URL
// (a sign-in, a payment) out of band. The URL goes to the frontend only,
// with its domain; it may carry secrets in its query, so the model never
// sees it: every URL elicitation of a connection is remembered, and any
// text from that server that reaches the model (tool results, errors) has
// those URLs replaced by "[URL shown to the user: <domain>]". The audit
// log records the elicitation with the URL's hash and its domain only.
//
// A tool call that fails with -32042 (URL elicitation required) carries
// the elicitations the server needs first. Each is shown to the user;
// once every one is accepted and the server has said it completed
// (notifications/elicitation/complete, within Options.URLElicitationWait),
// the call is retried once. A decline, a cancel, or no completion in time
// fails the call with a clear error.

// maxURLElicitations bounds the elicitations one -32042 error may ask for,
// and the URLs a connection remembers for redaction.
const maxURLElicitations = 4

const maxRememberedURLs = 64

// parseElicitURL checks a URL-mode elicitation's URL and returns its
// domain.
func parseElicitURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New("url elicitation needs an http(s) URL")
	}
	return u.Hostname(), nil
}

// rememberURL records a URL the model must not see.
func (c *conn) rememberURL(raw, domain string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.secretURLs == nil {
		c.secretURLs = map[string]string{}
	}
	if _, ok := c.secretURLs[raw]; !ok && len(c.secretURLs) >= maxRememberedURLs {
		for k := range c.secretURLs {
			delete(c.secretURLs, k)
			break
		}
	}
	c.secretURLs[raw] = domain
}

// redact replaces the URLs of this connection's URL elicitations in text
// meant for the model.
func (c *conn) redact(text string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for raw, domain := range c.secretURLs {
		if strings.Contains(text, raw) {
			text = strings.ReplaceAll(text, raw, "[URL shown to the user: "+domain+"]")
		}
	}
	return text
}

// expectCompletion registers interest in notifications/elicitation/complete
// for id; the channel is closed when it arrives (or had arrived).
func (c *conn) expectCompletion(id string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.completions == nil {
		c.completions = map[string]chan struct{}{}
	}
	ch, ok := c.completions[id]
	if !ok {
		ch = make(chan struct{})
		c.completions[id] = ch
	}
	return ch
}

// completed handles notifications/elicitation/complete. Ids nobody waits
// for are kept (bounded) in case the notification beats the waiter.
func (c *conn) completed(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.completions == nil {
		c.completions = map[string]chan struct{}{}
	}
	ch, ok := c.completions[id]
	if !ok {
		if len(c.completions) >= maxRememberedURLs {
			return
		}
		ch = make(chan struct{})
		c.completions[id] = ch
	}
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// forgetCompletion drops the waiter for id.
func (c *conn) forgetCompletion(id string) {
	c.mu.Lock()
	delete(c.completions, id)
	c.mu.Unlock()
}

// elicitURL shows a URL elicitation to the user and returns the answer.
// It is audited with the URL's hash and domain.
func (c *conn) elicitURL(ctx context.Context, er ElicitRequest) (ElicitResult, error) {
	m := c.srv.m
	c.rememberURL(er.URL, er.Domain)
	ans, err := m.o.Elicitor.Elicit(ctx, er)
	action := ans.Action
	if err != nil {
		action = "cancel"
	}
	m.auditURLElicitation(c.srv.name, er, action)
	return ElicitResult{Action: action}, err
}

func (m *Manager) auditURLElicitation(server string, er ElicitRequest, action string) {
	if m.o.Audit == nil {
		return
	}
	session := er.Session
	if session == "" {
		session = "daemon"
	}
	d := audit.Allowed
	if action != "accept" {
		d = audit.Denied
	}
	e := audit.Entry{Type: audit.TypeDecision, Session: session, Principal: "mcp:" + server, Frontend: "daemon",
		Action:   audit.Action{Kind: "mcp_url_elicitation", Resource: clip("mcp://"+server+"/elicitation:url", audit.MaxResource), ArgsHash: audit.HashBytes([]byte(er.URL))},
		Decision: d, Proof: audit.Proof{Rule: "url_elicitation", Approval: action},
		Text: audit.ClipText(fmt.Sprintf("URL elicitation to %s (URL kept as its hash only): %s", er.Domain, action))}
	if _, err := m.o.Audit.Append(context.Background(), e); err != nil {
		m.log.Error("audit append failed for a URL elicitation", "server", server, "err", err)
	}
}

// satisfyURLElicitations handles a -32042 error: every elicitation it
// carries is shown to the user and must be accepted and then completed by
// the server within URLElicitationWait. It returns nil when the call may
// be retried.
func (c *conn) satisfyURLElicitations(ctx context.Context, session string, ue mcpgo.URLElicitationRequiredError) error {
	s := c.srv
	if s.m.o.Elicitor == nil {
		return fmt.Errorf("MCP server %s needs the user to open a URL first, and this client cannot ask", s.name)
	}
	if len(ue.Elicitations) == 0 || len(ue.Elicitations) > maxURLElicitations {
		return fmt.Errorf("MCP server %s asked for %d URL elicitations; 1 to %d are handled", s.name, len(ue.Elicitations), maxURLElicitations)
	}
	for _, p := range ue.Elicitations {
		if p.Mode != mcpgo.ElicitationModeURL || p.ElicitationID == "" {
			return fmt.Errorf("MCP server %s: a URL-elicitation-required error must carry URL elicitations with an id", s.name)
		}
		if _, err := parseElicitURL(p.URL); err != nil {
			return fmt.Errorf("MCP server %s: %w", s.name, err)
		}
	}
	for _, p := range ue.Elicitations {
		if err := c.admit(c.elicitLimit, "elicitation"); err != nil {
			return fmt.Errorf("MCP server %s: %w", s.name, err)
		}
		domain, _ := parseElicitURL(p.URL)
		id := clipRunes(p.ElicitationID, 256)
		done := c.expectCompletion(id)
		er := ElicitRequest{ID: newID(), Server: s.name, Session: session, Mode: mcpgo.ElicitationModeURL,
			Message: clipRunes(p.Message, 4000), URL: p.URL, Domain: domain, ElicitationID: id}
		ans, err := c.elicitURL(ctx, er)
		if err != nil || ans.Action != "accept" {
			c.forgetCompletion(id)
			what := "declined"
			if ans.Action != "decline" {
				what = "cancelled"
			}
			return fmt.Errorf("MCP server %s needs the user to complete a step in the browser at %s first; the user %s it", s.name, domain, what)
		}
		t := time.NewTimer(s.m.o.URLElicitationWait)
		select {
		case <-done:
			t.Stop()
		case <-t.C:
			c.forgetCompletion(id)
			return fmt.Errorf("MCP server %s did not confirm within %s that the user completed the step at %s", s.name, s.m.o.URLElicitationWait, domain)
		case <-ctx.Done():
			t.Stop()
			c.forgetCompletion(id)
			return ctx.Err()
		case <-c.dead:
			t.Stop()
			return fmt.Errorf("MCP server %s: %w", s.name, errClosed)
		}
		c.forgetCompletion(id)
	}
	return nil
}
