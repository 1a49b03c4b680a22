package mcp

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// stubHandler is the SDK's request handler as the tasks see it: each
// request waits for its answer from the test.
type stubHandler struct {
	mu   sync.Mutex
	got  []transport.JSONRPCRequest
	ctxs []context.Context
	ans  chan stubAnswer
}

type stubAnswer struct {
	result string
	err    error
}

func newStub() *stubHandler { return &stubHandler{ans: make(chan stubAnswer, 64)} }

func (s *stubHandler) handle(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	s.mu.Lock()
	s.got = append(s.got, req)
	s.ctxs = append(s.ctxs, ctx)
	s.mu.Unlock()
	select {
	case a := <-s.ans:
		if a.err != nil {
			return nil, a.err
		}
		return transport.NewJSONRPCResultResponse(req.ID, json.RawMessage(a.result)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *stubHandler) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func (s *stubHandler) ctx(i int) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctxs[i]
}

var taskReqID atomic.Int64

func taskReq(method string, params any) transport.JSONRPCRequest {
	return transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcpgo.NewRequestId(taskReqID.Add(1)), Method: method, Params: params}
}

// samplingParams are a sampling request's params, task-augmented with
// task unless it is nil.
func samplingParams(task map[string]any) map[string]any {
	p := map[string]any{"messages": []any{map[string]any{"role": "user", "content": map[string]any{"type": "text", "text": "hi"}}}, "maxTokens": 10}
	if task != nil {
		p["task"] = task
	}
	return p
}

// call sends req through the tasks' handler and returns the result or the
// error.
func call(t *testing.T, h transport.RequestHandler, req transport.JSONRPCRequest) (map[string]any, *mcpgo.JSONRPCErrorDetails) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := h(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Method, err)
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	var out map[string]any
	if err := json.Unmarshal(resp.Result, &out); err != nil {
		t.Fatalf("%s: result %s: %v", req.Method, resp.Result, err)
	}
	return out, nil
}

func mustCall(t *testing.T, h transport.RequestHandler, req transport.JSONRPCRequest) map[string]any {
	t.Helper()
	out, e := call(t, h, req)
	if e != nil {
		t.Fatalf("%s: error %d %s", req.Method, e.Code, e.Message)
	}
	return out
}

// startTask starts a sampling task with ttl (nil: none asked for).
func startTask(t *testing.T, h transport.RequestHandler, ttl any) string {
	t.Helper()
	asked := map[string]any{}
	if ttl != nil {
		asked["ttl"] = ttl
	}
	out := mustCall(t, h, taskReq(string(mcpgo.MethodSamplingCreateMessage), samplingParams(asked)))
	task, _ := out["task"].(map[string]any)
	id, _ := task["taskId"].(string)
	if id == "" || task["status"] != "working" || task["pollInterval"] == nil || task["ttl"] == nil {
		t.Fatalf("CreateTaskResult %v", out)
	}
	return id
}

func byID(id string) map[string]any { return map[string]any{"taskId": id} }

func TestClientTasksLifecycle(t *testing.T) {
	stub := newStub()
	ts := newClientTasks(t.Context())
	h := ts.handler(stub.handle)

	// Without task metadata a request is the SDK's, answered in line.
	stub.ans <- stubAnswer{result: `{"role":"assistant","content":{"type":"text","text":"sync"},"model":"m"}`}
	if out := mustCall(t, h, taskReq(string(mcpgo.MethodSamplingCreateMessage), samplingParams(nil))); out["model"] != "m" {
		t.Fatalf("plain request: %v", out)
	}

	id := startTask(t, h, 60000)
	if len(id) < 20 {
		t.Errorf("task id %q is short: ids must not be guessable", id)
	}
	waitFor := func(n int) {
		deadline := time.Now().Add(5 * time.Second)
		for stub.calls() < n {
			if time.Now().After(deadline) {
				t.Fatalf("the request never reached the handler")
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(2)
	stub.mu.Lock()
	b, _ := json.Marshal(stub.got[1].Params)
	stub.mu.Unlock()
	if strings.Contains(string(b), `"task"`) || !strings.Contains(string(b), `"maxTokens"`) {
		t.Errorf("the handler got params %s; want them without the task", b)
	}
	if got := mustCall(t, h, taskReq(methodTasksGet, byID(id))); got["status"] != "working" || got["taskId"] != id {
		t.Errorf("tasks/get while working: %v", got)
	}
	if got := mustCall(t, h, taskReq(methodTasksList, nil)); len(got["tasks"].([]any)) != 1 {
		t.Errorf("tasks/list: %v", got)
	}
	// tasks/result waits for the answer.
	res := make(chan map[string]any, 1)
	go func() { res <- mustCall(t, h, taskReq(methodTasksResult, byID(id))) }()
	select {
	case r := <-res:
		t.Fatalf("tasks/result answered before the task ended: %v", r)
	case <-time.After(50 * time.Millisecond):
	}
	stub.ans <- stubAnswer{result: `{"role":"assistant","content":{"type":"text","text":"later"},"model":"m","_meta":{"x":1}}`}
	r := <-res
	meta, _ := r["_meta"].(map[string]any)
	related, _ := meta[mcpgo.RelatedTaskMetaKey].(map[string]any)
	if r["model"] != "m" || related["taskId"] != id || meta["x"] != float64(1) {
		t.Errorf("tasks/result: %v", r)
	}
	if got := mustCall(t, h, taskReq(methodTasksGet, byID(id))); got["status"] != "completed" {
		t.Errorf("tasks/get after: %v", got)
	}
	// A completed task cannot be cancelled.
	if _, e := call(t, h, taskReq(methodTasksCancel, byID(id))); e == nil || e.Code != mcpgo.INVALID_PARAMS {
		t.Errorf("cancel of a completed task: %v", e)
	}
}

// TestClientTasksRefused: what a server must not get from the tasks.
func TestClientTasksRefused(t *testing.T) {
	stub := newStub()
	ts := newClientTasks(t.Context())
	h := ts.handler(stub.handle)
	id := startTask(t, h, nil)

	// Another connection's tasks are not this one's.
	other := newClientTasks(t.Context()).handler(newStub().handle)
	for _, m := range []string{methodTasksGet, methodTasksResult, methodTasksCancel} {
		if _, e := call(t, other, taskReq(m, byID(id))); e == nil || e.Code != mcpgo.INVALID_PARAMS {
			t.Errorf("%s of another connection's task: %v", m, e)
		}
	}
	if got := mustCall(t, other, taskReq(methodTasksList, nil)); len(got["tasks"].([]any)) != 0 {
		t.Errorf("another connection lists %v", got)
	}
	// Unknown ids and bad task metadata.
	if _, e := call(t, h, taskReq(methodTasksGet, byID("nope"))); e == nil || e.Code != mcpgo.INVALID_PARAMS {
		t.Errorf("unknown id: %v", e)
	}
	for _, bad := range []any{-5, "soon", map[string]any{}} {
		if _, e := call(t, h, taskReq(string(mcpgo.MethodElicitationCreate), map[string]any{"message": "m", "task": map[string]any{"ttl": bad}})); e == nil || e.Code != mcpgo.INVALID_PARAMS {
			t.Errorf("ttl %v: %v", bad, e)
		}
	}
	// At most maxClientTasks waits on tasks/result at once: a server
	// cannot park goroutines without bound.
	waits := make(chan *mcpgo.JSONRPCErrorDetails, maxClientTasks+1)
	ctx, cancel := context.WithCancel(t.Context())
	for range maxClientTasks + 1 {
		go func() {
			resp, _ := h(ctx, taskReq(methodTasksResult, byID(id)))
			waits <- resp.Error
		}()
	}
	if e := <-waits; e == nil || !strings.Contains(e.Message, "may wait at once") {
		t.Errorf("wait %d: %v", maxClientTasks+1, e)
	}
	cancel()
	for range maxClientTasks {
		if e := <-waits; e == nil || e.Code != mcpgo.REQUEST_INTERRUPTED {
			t.Errorf("a wait whose request ended: %v", e)
		}
	}
	// At most maxClientTasks running: the next is refused, not queued.
	for range maxClientTasks - 1 {
		startTask(t, h, nil)
	}
	for stub.calls() < maxClientTasks {
		time.Sleep(time.Millisecond)
	}
	if _, e := call(t, h, taskReq(string(mcpgo.MethodSamplingCreateMessage), samplingParams(map[string]any{"ttl": 1000}))); e == nil || !strings.Contains(e.Message, "at most") {
		t.Errorf("task %d: %v", maxClientTasks+1, e)
	}
	time.Sleep(20 * time.Millisecond)
	if stub.calls() != maxClientTasks {
		t.Error("a refused task reached the handler")
	}
}

// TestClientTasksCancelFailExpire: a cancelled task withdraws its request
// and stays cancelled; a failed one reports its error; an expired one is
// forgotten and its request withdrawn.
func TestClientTasksCancelFailExpire(t *testing.T) {
	stub := newStub()
	life, endLife := context.WithCancel(t.Context())
	ts := newClientTasks(life)
	now := time.Now()
	var clock sync.Mutex
	ts.now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	h := ts.handler(stub.handle)

	id := startTask(t, h, nil)
	for stub.calls() < 1 {
		time.Sleep(time.Millisecond)
	}
	if got := mustCall(t, h, taskReq(methodTasksCancel, byID(id))); got["status"] != "cancelled" {
		t.Errorf("cancel: %v", got)
	}
	select {
	case <-stub.ctx(0).Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled task's request was not withdrawn")
	}
	if _, e := call(t, h, taskReq(methodTasksResult, byID(id))); e == nil || e.Code != mcpgo.REQUEST_INTERRUPTED {
		t.Errorf("result of a cancelled task: %v", e)
	}
	time.Sleep(20 * time.Millisecond) // the handler's late return
	if got := mustCall(t, h, taskReq(methodTasksGet, byID(id))); got["status"] != "cancelled" {
		t.Errorf("after the handler returned: %v", got)
	}

	id = startTask(t, h, nil)
	stub.ans <- stubAnswer{err: errTest("the user declined to be asked")}
	if _, e := call(t, h, taskReq(methodTasksResult, byID(id))); e == nil || !strings.Contains(e.Message, "declined") {
		t.Errorf("result of a failed task: %v", e)
	}
	if got := mustCall(t, h, taskReq(methodTasksGet, byID(id))); got["status"] != "failed" {
		t.Errorf("failed task: %v", got)
	}

	id = startTask(t, h, 1000)
	for stub.calls() < 3 {
		time.Sleep(time.Millisecond)
	}
	clock.Lock()
	now = now.Add(2 * time.Second)
	clock.Unlock()
	if _, e := call(t, h, taskReq(methodTasksGet, byID(id))); e == nil {
		t.Error("an expired task is still there")
	}
	select {
	case <-stub.ctx(2).Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the expired task's request was not withdrawn")
	}

	// The connection closing ends a wait on tasks/result.
	id = startTask(t, h, nil)
	endLife()
	if _, e := call(t, h, taskReq(methodTasksResult, byID(id))); e == nil {
		t.Error("tasks/result as the connection closes is not an error")
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }
