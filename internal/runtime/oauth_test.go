package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
	"github.com/astrid-runtime/astrid/internal/mcp"
)

// fakeLogin plays the MCP manager's Login: it shows one authorization
// request, then waits for the browser (back) or the login's end.
func fakeLogin(back <-chan error, started chan<- context.Context) loginFunc {
	return func(ctx context.Context, server string, a mcp.Authorizer) error {
		if started != nil {
			started <- ctx
		}
		if server == "stdio" {
			return mcp.ErrNotOAuth
		}
		if _, err := a.Authorize(ctx, mcp.AuthorizationRequest{Server: server, URL: "https://auth.example/authorize?state=s", Domain: "auth.example", RedirectURL: "http://127.0.0.1:1/cb"}); err != nil {
			return err
		}
		select {
		case err := <-back:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func TestServerLoginShowsTheURLAndWaits(t *testing.T) {
	ctx := context.Background()
	var ls serverLogins
	back := make(chan error, 1)
	l, err := ls.begin(ctx, "web", fakeLogin(back, nil))
	if err != nil {
		t.Fatal(err)
	}
	if l.URL != "https://auth.example/authorize?state=s" || l.Domain != "auth.example" || l.Server != "web" || l.Login == "" {
		t.Fatalf("login %+v", l)
	}
	// Not finished until the browser came back.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	l2, err := ls.begin(ctx, "web2", fakeLogin(back, nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.finish(short, l2.Login); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("finish before the browser came back: %v", err)
	}
	// Leaving early abandoned it.
	if err := ls.finish(ctx, l2.Login); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("finish of an abandoned login: %v", err)
	}
	back <- nil
	if err := ls.finish(ctx, l.Login); err != nil {
		t.Fatal(err)
	}
	if err := ls.finish(ctx, l.Login); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("a login finishes once: %v", err)
	}
}

func TestServerLoginFailures(t *testing.T) {
	ctx := context.Background()
	var ls serverLogins
	// The flow fails before asking: begin says why.
	if _, err := ls.begin(ctx, "stdio", fakeLogin(nil, nil)); !errors.Is(loginError(err), api.ErrInvalidParams) {
		t.Fatalf("login of a stdio server: %v", err)
	}
	// The flow fails after asking (wrong state, refused code): finish says why.
	back := make(chan error, 1)
	l, err := ls.begin(ctx, "web", fakeLogin(back, nil))
	if err != nil {
		t.Fatal(err)
	}
	back <- errors.New("state mismatch")
	if err := ls.finish(ctx, l.Login); err == nil || err.Error() != "state mismatch" {
		t.Fatalf("finish: %v, want the flow's error", err)
	}
	// A second login of the same server cancels the first.
	started := make(chan context.Context, 2)
	first, err := ls.begin(ctx, "web", fakeLogin(make(chan error), started))
	if err != nil {
		t.Fatal(err)
	}
	firstCtx := <-started
	if _, err := ls.begin(ctx, "web", fakeLogin(make(chan error), started)); err != nil {
		t.Fatal(err)
	}
	<-started
	select {
	case <-firstCtx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first login was not cancelled")
	}
	if err := ls.finish(ctx, first.Login); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("finish of a replaced login: %v", err)
	}
	ls.closeAll()
	ls.mu.Lock()
	n := len(ls.m)
	ls.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d logins left after closeAll", n)
	}
}

// TestServerLoginWithoutTheUser: a flow that authorizes without asking
// (the client credentials grant) is done at once; nothing waits for a
// browser and nothing is left to finish.
func TestServerLoginWithoutTheUser(t *testing.T) {
	var ls serverLogins
	l, err := ls.begin(context.Background(), "machine", func(context.Context, string, mcp.Authorizer) error { return nil })
	if err != nil || !l.Done || l.Server != "machine" || l.Login != "" || l.URL != "" {
		t.Fatalf("login %+v, %v", l, err)
	}
	ls.mu.Lock()
	n := len(ls.m)
	ls.mu.Unlock()
	if n != 0 {
		t.Errorf("%d logins kept", n)
	}
}

func TestServerLoginStepUpIsRefused(t *testing.T) {
	var ls serverLogins
	twice := func(ctx context.Context, server string, a mcp.Authorizer) error {
		req := mcp.AuthorizationRequest{Server: server, URL: "https://auth.example/a", Domain: "auth.example"}
		if _, err := a.Authorize(ctx, req); err != nil {
			return err
		}
		_, err := a.Authorize(ctx, req)
		return err
	}
	l, err := ls.begin(context.Background(), "web", twice)
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.finish(context.Background(), l.Login); err == nil {
		t.Fatal("a second authorization request with nobody to show it to succeeded")
	}
}

// TestAuthorizeAsksTheCallingSession: an authorization a tool call needs
// is shown to that session's frontends as a URL to open (the model never
// gets it); accepting lets the flow wait for the browser, declining or no
// session at all fails it.
func TestAuthorizeAsksTheCallingSession(t *testing.T) {
	w := newWorld(t, `{"text": "x"}`, "[security]\napproval_timeout_secs = 5\n")
	ctx := context.Background()
	req := mcp.AuthorizationRequest{Server: "web", URL: "https://auth.example/authorize?state=S3CRET", Domain: "auth.example", Scopes: []string{"read", "write"}}
	var are *mcp.AuthorizationRequiredError
	if _, err := w.rt.Authorize(ctx, req); !errors.As(err, &are) || are.Server != "web" {
		t.Fatalf("no session: %v, want the login hint", err)
	}
	req.Session = w.session("safe")
	actx, stop := context.WithCancel(ctx)
	defer stop()
	shown := w.answerElicitations(actx, req.Session, [][2]string{{"accept", ``}, {"decline", ``}})
	if back, err := w.rt.Authorize(ctx, req); err != nil || back != "" {
		t.Fatalf("accepted: %q, %v; want \"\" (the loopback listener waits)", back, err)
	}
	e := <-shown
	if e.Mode != "url" || e.URL != req.URL || e.Domain != "auth.example" || e.Server != "web" || !strings.Contains(e.Message, "read write") {
		t.Errorf("shown %+v", e)
	}
	if _, err := w.rt.Authorize(ctx, req); err == nil || !strings.Contains(err.Error(), "did not authorize") {
		t.Fatalf("declined: %v", err)
	}
}
