package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// Client-side tasks (MCP 2025-11-25, "Tasks"). A server may ask that its
// sampling/createMessage or elicitation/create request run as a task: the
// client answers at once with the task, runs the request in the background
// (the human answers it as any other, through the same handlers, limits
// and audit), and the server polls tasks/get, waits on tasks/result, lists
// with tasks/list and cancels with tasks/cancel. The SDK has no handler for
// those, so clientTasks sits in front of its request handler.
//
// Tasks belong to one connection: a server sees only the tasks it created,
// and they end with the connection. Their IDs are random. At most
// maxClientTasks are kept (an ended one makes room for a new one), and as
// many tasks/result requests may wait at once; a request beyond either is
// refused, not queued.

const (
	maxClientTasks = 32
	// clientTaskTTL bounds how long a task and its result are kept (the
	// server's ttl, when shorter, wins). A request still running then is
	// cancelled: a human who did not answer in that time is a "no".
	clientTaskTTL = 10 * time.Minute
	// clientTaskPoll is the poll interval suggested to the server.
	clientTaskPoll = 1000 * time.Millisecond
)

// Methods of the server's task requests.
const (
	methodTasksGet    = "tasks/get"
	methodTasksResult = "tasks/result"
	methodTasksList   = "tasks/list"
	methodTasksCancel = "tasks/cancel"
)

// clientTask is one task-augmented request of the server.
type clientTask struct {
	id       string
	status   mcpgo.TaskStatus
	message  string
	created  time.Time
	updated  time.Time
	ttl      time.Duration
	done     chan struct{} // closed when status is terminal
	response *transport.JSONRPCResponse
	cancel   context.CancelFunc
}

// clientTasks are a connection's tasks.
type clientTasks struct {
	life context.Context // the connection's: tasks run in it
	now  func() time.Time

	mu      sync.Mutex
	m       map[string]*clientTask // guarded by mu
	waiting int                    // guarded by mu; tasks/result requests waiting
}

func newClientTasks(life context.Context) *clientTasks {
	return &clientTasks{life: life, now: time.Now, m: map[string]*clientTask{}}
}

// capability is what the client declares: tasks/list and tasks/cancel,
// and task augmentation of the requests it has handlers for.
func clientTasksCapability(sampling, elicitation bool) *mcpgo.TasksCapability {
	if !sampling && !elicitation {
		return nil
	}
	req := &mcpgo.TaskRequestsCapability{}
	if sampling {
		req.Sampling = &struct {
			CreateMessage *struct{} `json:"createMessage,omitempty"`
		}{CreateMessage: &struct{}{}}
	}
	if elicitation {
		req.Elicitation = &struct {
			Create *struct{} `json:"create,omitempty"`
		}{Create: &struct{}{}}
	}
	return &mcpgo.TasksCapability{List: &struct{}{}, Cancel: &struct{}{}, Requests: req}
}

// handler returns the request handler to give the transport: task
// requests and task-augmented requests are served here, everything else
// by h, the SDK's.
func (ts *clientTasks) handler(h transport.RequestHandler) transport.RequestHandler {
	return func(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
		switch req.Method {
		case methodTasksGet, methodTasksResult, methodTasksList, methodTasksCancel:
			return ts.serve(ctx, req), nil
		case string(mcpgo.MethodSamplingCreateMessage), string(mcpgo.MethodElicitationCreate):
			params, task, err := taskParams(req.Params)
			if err != nil {
				return transport.NewJSONRPCErrorResponse(req.ID, mcpgo.INVALID_PARAMS, err.Error(), nil), nil
			}
			if task != nil {
				plain := req
				plain.Params = params
				return ts.start(plain, task, h), nil
			}
		}
		return h(ctx, req)
	}
}

// taskParams splits a request's params into the params without "task"
// and the task metadata (nil: not task-augmented).
func taskParams(raw any) (map[string]json.RawMessage, *mcpgo.TaskParams, error) {
	var params map[string]json.RawMessage
	if err := decodeParams(raw, &params); err != nil || params == nil {
		return nil, nil, nil // not an object: the SDK's handler says so
	}
	t, ok := params["task"]
	if !ok || string(t) == "null" {
		return nil, nil, nil
	}
	var task mcpgo.TaskParams
	if err := json.Unmarshal(t, &task); err != nil {
		return nil, nil, fmt.Errorf("params.task: %v", err)
	}
	if task.TTL != nil && *task.TTL < 0 {
		return nil, nil, errors.New("params.task.ttl is negative")
	}
	delete(params, "task")
	return params, &task, nil
}

// decodeParams decodes a request's params, as the transport decoded them,
// into v.
func decodeParams(raw any, v any) error {
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// start creates the task, runs req (its params without the task) through
// h in the background and returns the CreateTaskResult.
func (ts *clientTasks) start(req transport.JSONRPCRequest, tp *mcpgo.TaskParams, h transport.RequestHandler) *transport.JSONRPCResponse {
	ttl := clientTaskTTL
	if tp.TTL != nil && time.Duration(*tp.TTL)*time.Millisecond < ttl {
		ttl = time.Duration(*tp.TTL) * time.Millisecond
	}
	now := ts.now()
	ts.mu.Lock()
	ts.expireLocked(now)
	if len(ts.m) >= maxClientTasks {
		ts.dropOldestEndedLocked()
	}
	if len(ts.m) >= maxClientTasks {
		ts.mu.Unlock()
		return transport.NewJSONRPCErrorResponse(req.ID, mcpgo.INTERNAL_ERROR, fmt.Sprintf("the client keeps at most %d tasks per server; this request is refused", maxClientTasks), nil)
	}
	ctx, cancel := context.WithTimeout(ts.life, ttl)
	t := &clientTask{id: randomString(18), status: mcpgo.TaskStatusWorking, message: "waiting for the user",
		created: now, updated: now, ttl: ttl, done: make(chan struct{}), cancel: cancel}
	ts.m[t.id] = t
	view := t.view()
	ts.mu.Unlock()

	go func() {
		defer cancel()
		resp, err := h(ctx, req)
		if err == nil && resp == nil {
			err = errors.New("no response")
		}
		if err != nil {
			resp = transport.NewJSONRPCErrorResponse(req.ID, mcpgo.INTERNAL_ERROR, err.Error(), nil)
		}
		status, msg := mcpgo.TaskStatusCompleted, ""
		if resp.Error != nil {
			status, msg = mcpgo.TaskStatusFailed, resp.Error.Message
		}
		ts.finish(t, status, msg, resp)
	}()
	return result(req.ID, mcpgo.CreateTaskResult{Task: view})
}

// finish moves t to a terminal status with the request's response,
// unless it already is (a cancelled task stays cancelled).
func (ts *clientTasks) finish(t *clientTask, status mcpgo.TaskStatus, msg string, resp *transport.JSONRPCResponse) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if !t.status.IsTerminal() {
		t.response = resp
		ts.endLocked(t, status, msg)
	}
}

// endLocked moves t, not yet ended, to a terminal status and wakes its
// waiters; the caller holds ts.mu.
func (ts *clientTasks) endLocked(t *clientTask, status mcpgo.TaskStatus, msg string) {
	t.status, t.message, t.updated = status, clipRunes(msg, 500), ts.now()
	close(t.done)
}

// expireLocked forgets tasks older than their ttl, cancelling any still
// running.
func (ts *clientTasks) expireLocked(now time.Time) {
	for id, t := range ts.m {
		if now.Sub(t.created) >= t.ttl {
			t.cancel()
			delete(ts.m, id)
		}
	}
}

// dropOldestEndedLocked forgets the oldest task that has ended, if any,
// to make room for a new one.
func (ts *clientTasks) dropOldestEndedLocked() {
	var oldest *clientTask
	for _, t := range ts.m {
		if t.status.IsTerminal() && (oldest == nil || t.created.Before(oldest.created)) {
			oldest = t
		}
	}
	if oldest != nil {
		delete(ts.m, oldest.id)
	}
}

// view is the task as the protocol shows it. The caller holds ts.mu.
func (t *clientTask) view() mcpgo.Task {
	ttl, poll := t.ttl.Milliseconds(), clientTaskPoll.Milliseconds()
	return mcpgo.Task{TaskId: t.id, Status: t.status, StatusMessage: t.message,
		CreatedAt: t.created.UTC().Format(time.RFC3339Nano), LastUpdatedAt: t.updated.UTC().Format(time.RFC3339Nano),
		TTL: &ttl, PollInterval: &poll}
}

// serve answers tasks/get, tasks/result, tasks/list and tasks/cancel.
func (ts *clientTasks) serve(ctx context.Context, req transport.JSONRPCRequest) *transport.JSONRPCResponse {
	var p struct {
		TaskID string `json:"taskId"`
	}
	_ = decodeParams(req.Params, &p) // no taskId: no task, said below
	ts.mu.Lock()
	ts.expireLocked(ts.now())
	if req.Method == methodTasksList {
		tasks := make([]mcpgo.Task, 0, len(ts.m))
		for _, t := range ts.m {
			tasks = append(tasks, t.view())
		}
		ts.mu.Unlock()
		sort.Slice(tasks, func(i, j int) bool { return tasks[i].CreatedAt < tasks[j].CreatedAt })
		return result(req.ID, map[string]any{"tasks": tasks})
	}
	t, ok := ts.m[p.TaskID]
	if !ok {
		ts.mu.Unlock()
		return transport.NewJSONRPCErrorResponse(req.ID, mcpgo.INVALID_PARAMS, fmt.Sprintf("no task %q", clipRunes(p.TaskID, 64)), nil)
	}
	switch req.Method {
	case methodTasksGet:
		defer ts.mu.Unlock()
		return result(req.ID, t.view())
	case methodTasksCancel:
		defer ts.mu.Unlock()
		if t.status.IsTerminal() {
			return transport.NewJSONRPCErrorResponse(req.ID, mcpgo.INVALID_PARAMS, fmt.Sprintf("task %s is already %s", t.id, t.status), nil)
		}
		t.cancel()
		ts.endLocked(t, mcpgo.TaskStatusCancelled, "cancelled by the server")
		return result(req.ID, t.view())
	}
	// tasks/result: wait for a terminal status. A server may not park
	// more waits than it can have tasks.
	if ts.waiting >= maxClientTasks {
		ts.mu.Unlock()
		return transport.NewJSONRPCErrorResponse(req.ID, mcpgo.INTERNAL_ERROR, fmt.Sprintf("at most %d tasks/result requests may wait at once", maxClientTasks), nil)
	}
	ts.waiting++
	done := t.done
	ts.mu.Unlock()
	defer func() {
		ts.mu.Lock()
		ts.waiting--
		ts.mu.Unlock()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return transport.NewJSONRPCErrorResponse(req.ID, mcpgo.REQUEST_INTERRUPTED, ctx.Err().Error(), nil)
	case <-ts.life.Done():
		return transport.NewJSONRPCErrorResponse(req.ID, mcpgo.REQUEST_INTERRUPTED, "the connection is closing", nil)
	}
	ts.mu.Lock()
	status, resp, msg := t.status, t.response, t.message
	ts.mu.Unlock()
	if status == mcpgo.TaskStatusCancelled {
		return transport.NewJSONRPCErrorResponse(req.ID, mcpgo.REQUEST_INTERRUPTED, "task "+t.id+" was cancelled", nil)
	}
	if resp.Error != nil {
		return transport.NewJSONRPCErrorResponse(req.ID, resp.Error.Code, msg, nil)
	}
	return result(req.ID, withRelatedTask(resp.Result, t.id))
}

// withRelatedTask adds the related-task metadata to a result object.
func withRelatedTask(res json.RawMessage, taskID string) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(res, &obj) != nil || obj == nil {
		return res
	}
	meta := map[string]json.RawMessage{}
	if m, ok := obj["_meta"]; ok {
		_ = json.Unmarshal(m, &meta)
	}
	meta[mcpgo.RelatedTaskMetaKey], _ = json.Marshal(mcpgo.RelatedTaskMeta(taskID))
	obj["_meta"], _ = json.Marshal(meta)
	out, _ := json.Marshal(obj)
	return out
}

func result(id mcpgo.RequestId, v any) *transport.JSONRPCResponse {
	b, err := json.Marshal(v)
	if err != nil {
		return transport.NewJSONRPCErrorResponse(id, mcpgo.INTERNAL_ERROR, err.Error(), nil)
	}
	return transport.NewJSONRPCResultResponse(id, b)
}
