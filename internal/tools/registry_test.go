package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/astrid-runtime/astrid/internal/security"
)

func TestSpecs(t *testing.T) {
	reg := New(Options{})
	want := map[string]struct {
		readOnly bool
		props    []string
		required []string
	}{
		"read_file":      {true, []string{"file_path", "limit", "offset"}, []string{"file_path"}},
		"write_file":     {false, []string{"content", "file_path"}, []string{"file_path", "content"}},
		"edit_file":      {false, []string{"file_path", "new_string", "old_string", "replace_all"}, []string{"file_path", "old_string", "new_string"}},
		"glob":           {true, []string{"path", "pattern"}, []string{"pattern"}},
		"grep":           {true, []string{"case_insensitive", "context", "glob", "path", "pattern"}, []string{"pattern"}},
		"list_directory": {true, []string{"path"}, nil},
	}
	specs := reg.Specs()
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
		w, ok := want[s.Name]
		if !ok {
			t.Errorf("unexpected tool %q", s.Name)
			continue
		}
		if s.ReadOnly != w.readOnly {
			t.Errorf("%s: ReadOnly = %v", s.Name, s.ReadOnly)
		}
		if len(s.Description) < 100 {
			t.Errorf("%s: description too short for a model: %q", s.Name, s.Description)
		}
		var schema struct {
			Type       string                     `json:"type"`
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
			Additional *bool                      `json:"additionalProperties"`
		}
		if err := json.Unmarshal(s.InputSchema, &schema); err != nil {
			t.Fatalf("%s: schema: %v", s.Name, err)
		}
		var props []string
		for p := range schema.Properties {
			props = append(props, p)
		}
		if diff := cmp.Diff(w.props, props, cmpSorted); diff != "" || schema.Type != "object" || schema.Additional == nil || *schema.Additional {
			t.Errorf("%s: schema properties (-want +got) %s; type %q, additionalProperties %v", s.Name, diff, schema.Type, schema.Additional)
		}
		if diff := cmp.Diff(w.required, schema.Required); diff != "" {
			t.Errorf("%s: required (-want +got) %s", s.Name, diff)
		}
	}
	if diff := cmp.Diff([]string{"edit_file", "glob", "grep", "list_directory", "read_file", "write_file"}, names); diff != "" {
		t.Errorf("Specs not sorted or incomplete (-want +got)\n%s", diff)
	}
	specs[0].Name = "mutated"
	if reg.Specs()[0].Name == "mutated" {
		t.Error("Specs returned the registry's own slice")
	}
}

var cmpSorted = cmp.Transformer("sort", func(xs []string) []string {
	out := append([]string(nil), xs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// fakeTool is a plug-in tool, as bash or task will be.
type fakeTool struct{ name string }

func (f fakeTool) Spec() Spec {
	return Spec{Name: f.name, Description: "echo", InputSchema: json.RawMessage(`{"type":"object"}`)}
}

func (f fakeTool) Prepare(s security.Session, args json.RawMessage) (security.Action, security.Executor, error) {
	var line string
	if err := decodeArgs(f.name, args, field{name: "command", required: true, dst: &line}); err != nil {
		return security.Action{}, nil, err
	}
	return security.NewExecAction(s, line, args), security.ExecutorFunc(func(_ context.Context, a security.Action) ([]byte, error) {
		return []byte("ran " + a.Command), nil
	}), nil
}

func TestRegistry(t *testing.T) {
	e := newEnv(t, withLimits(Limits{ArgsBytes: 1000}))
	ctx := context.Background()

	// Unknown tool: a result the model can read.
	res := e.runRaw("rm_rf", `{}`)
	if !res.IsError || !strings.Contains(res.Text, `unknown tool "rm_rf"; the tools are: edit_file, glob, grep, list_directory, read_file, write_file`) {
		t.Errorf("unknown tool: %+v", res)
	}
	// Oversized arguments.
	res = e.runRaw("write_file", `{"file_path":"a","content":"`+strings.Repeat("x", 1000)+`"}`)
	if !res.IsError || !strings.Contains(res.Text, "write_file: arguments are 1030 bytes, more than the limit of 1000") {
		t.Errorf("oversized: %+v", res)
	}
	// No interceptor, or a cancelled context: an error, not a result.
	if _, err := e.reg.Run(ctx, nil, e.sess, "read_file", json.RawMessage(`{}`)); err == nil {
		t.Error("ran without an interceptor")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.reg.Run(cctx, e.core.Interceptor, e.sess, "read_file", json.RawMessage(`{"file_path":"x"}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	// Register: a plug-in tool goes through the interceptor like the rest.
	if err := e.reg.Register(fakeTool{"echo_cmd"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Tool{fakeTool{"echo_cmd"}, fakeTool{"bad.name"}, fakeTool{""}} {
		if err := e.reg.Register(bad); err == nil {
			t.Errorf("registered %q", bad.Spec().Name)
		}
	}
	// Commands ask (no sandbox yet); the test human allows once.
	if res := e.runRaw("echo_cmd", `{"command":"git status"}`); res.IsError || res.Text != "ran git status" {
		t.Errorf("plug-in tool: %+v", res)
	}
	if res := e.runRaw("echo_cmd", `{"command":"sudo ls"}`); !res.IsError || !strings.Contains(res.Text, "denied by policy (blocked_commands)") {
		t.Errorf("blocked command: %+v", res)
	}
}

func TestUnregister(t *testing.T) {
	reg := New(Options{})
	if reg.Unregister("nope") {
		t.Error("unregistered an unknown tool")
	}
	if err := reg.Register(fakeTool{"echo_cmd"}); err != nil {
		t.Fatal(err)
	}
	if !reg.Unregister("echo_cmd") {
		t.Fatal("Unregister = false for a registered tool")
	}
	for _, s := range reg.Specs() {
		if s.Name == "echo_cmd" {
			t.Error("spec still listed")
		}
	}
	if reg.Unregister("echo_cmd") {
		t.Error("unregistered twice")
	}
	// The name is free again, and the registry is safe for concurrent use.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			_ = reg.Specs()
		}
	}()
	for range 100 {
		if err := reg.Register(fakeTool{"echo_cmd"}); err != nil {
			t.Fatal(err)
		}
		reg.Unregister("echo_cmd")
	}
	<-done
}

// TestActions checks the action each call becomes: kind, canonical path,
// raw arguments.
func TestActions(t *testing.T) {
	e := newEnv(t)
	e.write("f.txt", "x")
	e.write("sub/x", "")
	for _, tc := range []struct {
		tool, args string
		kind       security.Kind
		path       string
	}{
		{"read_file", `{"file_path":"f.txt"}`, security.FileRead, e.ws + "/f.txt"},
		{"read_file", `{"file_path":"./sub/../f.txt"}`, security.FileRead, e.ws + "/f.txt"},
		{"write_file", `{"file_path":"new/g.txt","content":""}`, security.FileWrite, e.ws + "/new/g.txt"},
		{"edit_file", `{"file_path":"f.txt","old_string":"x","new_string":"y"}`, security.FileWrite, e.ws + "/f.txt"},
		{"glob", `{"pattern":"*"}`, security.FileList, e.ws},
		{"glob", `{"pattern":"*","path":"/tmp/../etc"}`, security.FileList, "/etc"},
		{"grep", `{"pattern":"x"}`, security.FileList, e.ws},
		{"grep", `{"pattern":"x","path":"f.txt"}`, security.FileRead, e.ws + "/f.txt"},
		{"list_directory", `{}`, security.FileList, e.ws},
		{"list_directory", ``, security.FileList, e.ws},
	} {
		a, _, err := e.reg.tools[tc.tool].Prepare(e.sess, json.RawMessage(tc.args))
		if err != nil {
			t.Errorf("%s %s: %v", tc.tool, tc.args, err)
			continue
		}
		if a.Kind != tc.kind || a.Path != tc.path || a.Resource != "file://"+tc.path || string(a.Args) != tc.args || a.Session.ID != e.sess.ID {
			t.Errorf("%s %s: action %s %s %q args %q", tc.tool, tc.args, a.Kind, a.Path, a.Resource, a.Args)
		}
	}
	// Without a workspace, a relative path or a missing path is an argument error.
	noWS := security.Session{ID: "s2", Mode: security.Autonomous}
	for tool, args := range map[string]string{
		"read_file":      `{"file_path":"f.txt"}`,
		"list_directory": `{}`,
		"glob":           `{"pattern":"*"}`,
	} {
		_, _, err := e.reg.tools[tool].Prepare(noWS, json.RawMessage(args))
		var ae *ArgError
		if !errors.As(err, &ae) {
			t.Errorf("%s without a workspace: %v", tool, err)
		}
	}
}

func TestArgumentErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ tool, args, want string }{
		{"read_file", `{"file_path": "a"`, `read_file: invalid arguments: not valid JSON: unexpected end of input`},
		{"read_file", `["a"]`, `read_file: invalid arguments: want a JSON object, got an array`},
		{"read_file", `"a"`, `read_file: invalid arguments: want a JSON object, got a string`},
		{"read_file", `{"file_path":"a"} {}`, `read_file: invalid arguments: unexpected data after the JSON object`},
		{"read_file", `{"path":"a"}`, `read_file: invalid arguments: unknown field "path" (accepted: file_path, offset, limit)`},
		{"read_file", `{"FILE_PATH":"a"}`, `unknown field "FILE_PATH"`},
		{"read_file", `{"file_path":"a","file_path":"b"}`, `read_file: argument "file_path": given more than once`},
		{"read_file", `{}`, `read_file: argument "file_path": is required`},
		{"read_file", `{"file_path":null}`, `read_file: argument "file_path": is required`},
		{"read_file", `{"file_path":""}`, `read_file: argument "file_path": is empty`},
		{"read_file", `{"file_path":7}`, `read_file: argument "file_path": want a string, got the number 7`},
		{"read_file", `{"file_path":"a","offset":1.5}`, `read_file: argument "offset": want an integer, got the number 1.5`},
		{"read_file", `{"file_path":"a","offset":1e40}`, `read_file: argument "offset": want an integer`},
		{"read_file", `{"file_path":"a","limit":true}`, `read_file: argument "limit": want an integer, got a boolean`},
		{"read_file", `{"file_path":"a\u0000b"}`, `read_file: argument "file_path": invalid path: contains a NUL byte`},
		{"edit_file", `{"file_path":"a","old_string":"x","new_string":"y","replace_all":"yes"}`, `edit_file: argument "replace_all": want true or false, got a string`},
		{"edit_file", `{"file_path":"a","old_string":["x"],"new_string":"y"}`, `edit_file: argument "old_string": want a string, got an array`},
		{"write_file", `{"file_path":"a","content":{"x":1}}`, `write_file: argument "content": want a string, got an object`},
		{"grep", `{"pattern":"x","context":"2"}`, `grep: argument "context": want an integer, got a string`},
		{"list_directory", `{"path":"a","recursive":true}`, `list_directory: invalid arguments: unknown field "recursive" (accepted: path)`},
	} {
		res := e.runRaw(tc.tool, tc.args)
		if !res.IsError || !strings.Contains(res.Text, tc.want) {
			t.Errorf("%s %s:\n got %q\nwant %q", tc.tool, tc.args, res.Text, tc.want)
		}
	}
	// An argument error is not an action: nothing was audited or asked.
	if len(e.asked) != 0 {
		t.Error("a bad call reached approval")
	}
}

type namedTool struct{ name string }

func (n namedTool) Spec() Spec {
	return Spec{Name: n.name, Description: "test", InputSchema: json.RawMessage(`{"type":"object"}`)}
}

func (n namedTool) Prepare(s security.Session, args json.RawMessage) (security.Action, security.Executor, error) {
	return security.Action{}, nil, errors.New("not callable")
}

// TestRegisterUnregister: names model APIs accept register once; others
// are refused; Unregister removes a tool from Specs and from Run.
func TestRegisterUnregister(t *testing.T) {
	reg := New(Options{})
	for _, bad := range []string{"", "a.b", "a/b", "a b", "ünï", strings.Repeat("x", MaxNameLen+1)} {
		if err := reg.Register(namedTool{bad}); err == nil {
			t.Errorf("Register(%q) succeeded", bad)
		}
	}
	name := "mcp__srv-1__Get-Sum"
	if err := reg.Register(namedTool{name}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(namedTool{name}); err == nil {
		t.Error("registered the same name twice")
	}
	if !slices.ContainsFunc(reg.Specs(), func(s Spec) bool { return s.Name == name }) {
		t.Fatal("registered tool missing from Specs")
	}
	if !reg.Unregister(name) || reg.Unregister(name) {
		t.Fatal("Unregister: want true then false")
	}
	if slices.ContainsFunc(reg.Specs(), func(s Spec) bool { return s.Name == name }) {
		t.Fatal("unregistered tool still in Specs")
	}
	if err := reg.Register(namedTool{name}); err != nil {
		t.Fatalf("re-register after Unregister: %v", err)
	}
}

// TestReplace: old names go, new tools come; one that cannot be
// registered is refused by name while the rest are added.
func TestReplace(t *testing.T) {
	reg := New(Options{})
	if err := reg.Replace(nil, []Tool{namedTool{"srv__a"}, namedTool{"srv__b"}}); err != nil {
		t.Fatal(err)
	}
	err := reg.Replace([]string{"srv__a", "srv__b"}, []Tool{namedTool{"srv__b"}, namedTool{"srv__c"}, namedTool{"bad name"}, namedTool{"read_file"}})
	if err == nil || !strings.Contains(err.Error(), `invalid tool name "bad name"`) || !strings.Contains(err.Error(), `"read_file" registered twice`) {
		t.Errorf("error %v", err)
	}
	for name, want := range map[string]bool{"srv__a": false, "srv__b": true, "srv__c": true, "bad name": false, "read_file": true} {
		if reg.Has(name) != want {
			t.Errorf("Has(%q) = %v", name, !want)
		}
	}
	var names []string
	for _, s := range reg.Specs() {
		names = append(names, s.Name)
	}
	if want := []string{"edit_file", "glob", "grep", "list_directory", "read_file", "srv__b", "srv__c", "write_file"}; !slices.Equal(names, want) {
		t.Errorf("specs %v", names)
	}
}

// TestReplaceIsOneStep: a server's tool list refreshed over and over
// (tools/list_changed) never leaves a moment in which a tool that is in
// every list is missing: the lookup of a call made meanwhile finds it.
func TestReplaceIsOneStep(t *testing.T) {
	reg := New(Options{})
	var list []Tool
	var names []string
	for i := range 40 {
		list = append(list, namedTool{fmt.Sprintf("mcp__srv__t%02d", i)})
		names = append(names, fmt.Sprintf("mcp__srv__t%02d", i))
	}
	if err := reg.Replace(nil, list); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			if err := reg.Replace(names, list); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for missing := 0; ; {
		select {
		case <-done:
			if missing > 0 {
				t.Fatalf("a tool in every list was missing %d times", missing)
			}
			return
		default:
		}
		for _, n := range []string{names[0], names[39]} {
			if !reg.Has(n) {
				missing++
			}
		}
		if len(reg.Specs()) != 6+40 {
			missing++
		}
	}
}
