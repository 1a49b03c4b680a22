package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/astrid-runtime/astrid/internal/security"
)

// Spec describes a tool to the model.
type Spec struct {
	// Name is the tool's name in tool calls (read_file, grep, ...).
	Name string
	// Description is written for the model: what the tool does, what it
	// returns, and its limits.
	Description string
	// InputSchema is the JSON Schema of the tool's arguments object.
	InputSchema json.RawMessage
	// ReadOnly tools change nothing; the runtime may run the read-only
	// calls of one turn in parallel.
	ReadOnly bool
}

// Result is what a tool call gives back to the model. Text is untrusted
// data (file contents, names chosen by whoever wrote the files): the
// runtime wraps it with security.UntrustedData before the model sees it.
// IsError says the call did not do what was asked (bad arguments, refused
// by the interceptor, deferred for approval, or failed); Text then says
// why, in terms the model can act on.
type Result struct {
	Text    string
	IsError bool
	// Refused says nothing ran: the interceptor refused or deferred the
	// call, or (RunDeferred) it no longer matched what was approved.
	Refused bool
}

// Tool is one tool the registry offers. The built-in file tools implement
// it; bash, task and spark plug in the same way through Register.
type Tool interface {
	// Spec describes the tool. It is called once, by Register.
	Spec() Spec
	// Prepare decodes the call's arguments strictly (an *ArgError for
	// anything wrong with them) and returns the action the interceptor
	// judges and the executor that performs it. The action's Args are the
	// raw arguments. Prepare may resolve paths but changes nothing; the
	// executor must act only on the action it is handed (its resolved
	// Path or Command), never on the raw arguments.
	Prepare(s security.Session, args json.RawMessage) (security.Action, security.Executor, error)
}

// Limits bound what one tool call reads and returns. A zero field takes
// its default (see DefaultLimits).
type Limits struct {
	// ArgsBytes bounds the raw JSON arguments of a call.
	ArgsBytes int
	// ReadLines and LineChars are read_file's defaults: lines returned
	// when no limit is given, and characters kept of each line.
	ReadLines int
	LineChars int
	// ReadBytes bounds the bytes read_file reads from one file.
	ReadBytes int64
	// EditBytes bounds the size of a file edit_file will change, and of
	// an old file write_file reads to show a diff.
	EditBytes int64
	// DiffBytes bounds a diff shown to the model.
	DiffBytes int
	// Results bounds glob and grep matches.
	Results int
	// ListEntries bounds the entries list_directory shows.
	ListEntries int
	// OutputBytes bounds the text of a glob, grep or list_directory result.
	OutputBytes int
	// WalkEntries bounds the directory entries a glob or grep visits.
	WalkEntries int
	// GrepFileBytes: grep skips larger files.
	GrepFileBytes int64
}

// DefaultLimits returns the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{
		ArgsBytes:     4 << 20,
		ReadLines:     2000,
		LineChars:     2000,
		ReadBytes:     16 << 20,
		EditBytes:     8 << 20,
		DiffBytes:     32 << 10,
		Results:       200,
		ListEntries:   1000,
		OutputBytes:   64 << 10,
		WalkEntries:   200_000,
		GrepFileBytes: 8 << 20,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pick64 := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&l.ArgsBytes, d.ArgsBytes)
	pick(&l.ReadLines, d.ReadLines)
	pick(&l.LineChars, d.LineChars)
	pick64(&l.ReadBytes, d.ReadBytes)
	pick64(&l.EditBytes, d.EditBytes)
	pick(&l.DiffBytes, d.DiffBytes)
	pick(&l.Results, d.Results)
	pick(&l.ListEntries, d.ListEntries)
	pick(&l.OutputBytes, d.OutputBytes)
	pick(&l.WalkEntries, d.WalkEntries)
	pick64(&l.GrepFileBytes, d.GrepFileBytes)
	return l
}

// Options configure a Registry.
type Options struct {
	// PathFilter reports whether a walking tool (glob, grep) may descend
	// into, list or read a canonical absolute path. Build it from the
	// workspace's policy: p -> rules.Path(p, false) == nil. The policy
	// rules differ per workspace, so a Registry serves the sessions of one
	// workspace profile (New is cheap). Nil disables glob and grep: they
	// fail closed rather than walk unfiltered.
	PathFilter func(path string) bool
	// Limits bound each call; zero fields take DefaultLimits().
	Limits Limits
}

// Registry holds the tools offered to the model and runs their calls
// through the interceptor. It is safe for concurrent use: tools may be
// registered and unregistered (MCP servers come and go) while calls run; a
// call keeps the tool it found.
type Registry struct {
	limits Limits

	mu    sync.RWMutex
	tools map[string]Tool // guarded by mu
	specs []Spec          // guarded by mu; sorted by name
}

// New returns a registry with the built-in file tools: read_file,
// write_file, edit_file, glob, grep and list_directory.
func New(o Options) *Registry {
	r := &Registry{tools: map[string]Tool{}, limits: o.Limits.withDefaults()}
	w := walkConfig{filter: o.PathFilter, limits: r.limits}
	for _, t := range []Tool{
		readFile{r.limits},
		writeFile{r.limits},
		editFile{r.limits},
		globTool{w},
		grepTool{w},
		listDirectory{w},
	} {
		if err := r.Register(t); err != nil {
			panic(err) // the built-in names are distinct
		}
	}
	return r
}

// Register adds a tool. A name already taken, or one that is not made of
// 1 to MaxNameLen ASCII letters, digits, '_' and '-' (what model APIs
// accept as a tool name), is an error.
func (r *Registry) Register(t Tool) error {
	return r.Replace(nil, []Tool{t})
}

// Unregister removes the tool called name and reports whether there was
// one. Calls already running keep their tool.
func (r *Registry) Unregister(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removeLocked([]string{name}) == 1
}

// removeLocked removes the tools named names and returns how many there
// were; the caller holds r.mu.
func (r *Registry) removeLocked(names []string) int {
	n := 0
	for _, name := range names {
		if _, ok := r.tools[name]; ok {
			delete(r.tools, name)
			n++
		}
	}
	if n > 0 {
		r.specs = slices.DeleteFunc(r.specs, func(s Spec) bool { return slices.Contains(names, s.Name) })
	}
	return n
}

// Names returns the names of ts, in order.
func Names(ts []Tool) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Spec().Name
	}
	return out
}

// Has reports whether a tool called name is registered.
func (r *Registry) Has(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.tools[name]
	return ok
}

// Replace removes the tools named old and adds the tools new in one step:
// no lookup sees the registry in between, so a tool in both (a server's
// refreshed list) stays offered throughout. A tool of new that Register
// would refuse is left out, and the error says why; the others are added.
// Calls already running keep their tool.
func (r *Registry) Replace(old []string, new []Tool) error {
	var errs []error
	add := make([]Tool, 0, len(new))
	specs := make([]Spec, 0, len(new))
	for _, t := range new {
		s := t.Spec()
		switch {
		case !ValidName(s.Name):
			errs = append(errs, fmt.Errorf("tools: invalid tool name %q", s.Name))
		case !json.Valid(s.InputSchema):
			errs = append(errs, fmt.Errorf("tools: %s: input schema is not valid JSON", s.Name))
		default:
			add, specs = append(add, t), append(specs, s)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(old)
	for i, t := range add {
		if _, dup := r.tools[specs[i].Name]; dup {
			errs = append(errs, fmt.Errorf("tools: %q registered twice", specs[i].Name))
			continue
		}
		r.tools[specs[i].Name] = t
		r.specs = append(r.specs, specs[i])
	}
	sort.Slice(r.specs, func(i, j int) bool { return r.specs[i].Name < r.specs[j].Name })
	return errors.Join(errs...)
}

// MaxNameLen bounds a tool name (Anthropic's limit; OpenAI's is 64).
const MaxNameLen = 128

// ValidName reports whether s can name a tool: 1 to MaxNameLen ASCII
// letters, digits, '_' or '-'.
func ValidName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Specs returns the tools' specs, sorted by name. The slice is a copy.
func (r *Registry) Specs() []Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.specs)
}

// Run performs one tool call for session s: it decodes args, builds the
// action, and runs it through ic (policy, authority, budget, approval,
// audit), which alone calls the tool's executor.
//
// Everything the model can react to comes back as a Result with IsError
// set: an unknown tool, bad arguments (the message names the field), a
// denial (the step and rule that refused it), a deferral (the approval
// request to wait for), or the tool's own failure. The error is non-nil
// only when the call could not be attempted: ic is nil or ctx is done.
func (r *Registry) Run(ctx context.Context, ic *security.Interceptor, s security.Session, name string, args json.RawMessage) (Result, error) {
	if ic == nil {
		return Result{}, errors.New("tools: no interceptor")
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	r.mu.RLock()
	t, ok := r.tools[name]
	r.mu.RUnlock()
	if !ok {
		specs := r.Specs()
		known := make([]string, len(specs))
		for i, s := range specs {
			known[i] = s.Name
		}
		return Result{IsError: true, Text: fmt.Sprintf("unknown tool %q; the tools are: %s", clipText(name, 64), strings.Join(known, ", "))}, nil
	}
	if len(args) > r.limits.ArgsBytes {
		return Result{IsError: true, Text: fmt.Sprintf("%s: arguments are %d bytes, more than the limit of %d", name, len(args), r.limits.ArgsBytes)}, nil
	}
	a, ex, err := t.Prepare(s, args)
	if err != nil {
		return Result{IsError: true, Text: prepareErr(name, err)}, nil
	}
	a.Tool = name
	out, err := ic.Run(ctx, a, ex)
	return result(ctx, name, out, err)
}

// result turns an interceptor run's outcome into a Result (see Run).
func result(ctx context.Context, name string, out []byte, err error) (Result, error) {
	if err == nil {
		return Result{Text: string(out)}, nil
	}
	if ctx.Err() != nil && !isRefusal(err) {
		return Result{}, ctx.Err()
	}
	return Result{IsError: true, Refused: isRefusal(err), Text: runErr(name, err)}, nil
}

// RunDeferred runs deferred approval id: a call of one of this
// registry's tools that nobody answered in time and that a human has since
// approved. Once ic has claimed it, the tool named in the stored action
// prepares the call again from the approved arguments in session s; only
// if that gives exactly the approved action (same session and workspace,
// kind, resource and arguments) does it run, once, under the policy and
// budget in force now, and unless s.HookBlock says a PreToolCall hook
// refuses it now. Otherwise, or when the tool is gone, the approval is
// refused: audited, nothing runs (security.Interceptor.ReplayDeferred).
// The Result says what became of it, as Run's does; the error is non-nil
// only when this call claimed nothing: approval.ErrAlreadyResolved
// (another runner has it, or it was not approved), approval.ErrNotFound,
// or a store failure.
func (r *Registry) RunDeferred(ctx context.Context, ic *security.Interceptor, s security.Session, id string) (Result, error) {
	if ic == nil {
		return Result{}, errors.New("tools: no interceptor")
	}
	var name string
	out, err := ic.ReplayDeferred(ctx, id, func(approved security.Action) (security.Executor, error) {
		name = approved.Tool
		return r.prepareAgain(s, approved)
	})
	if name == "" {
		// Nothing was claimed (or the record names no tool, refused).
		if isRefusal(err) {
			return Result{IsError: true, Refused: true, Text: runErr("the deferred call", err)}, nil
		}
		return Result{}, err
	}
	return result(ctx, name, out, err)
}

// prepareAgain prepares the approved call of a deferred approval again in
// session s and returns its executor, or why it cannot run as approved.
func (r *Registry) prepareAgain(s security.Session, approved security.Action) (security.Executor, error) {
	name := approved.Tool
	r.mu.RLock()
	t, ok := r.tools[name]
	r.mu.RUnlock()
	switch {
	case name == "":
		return nil, errors.New("the approved action is not a tool call")
	case !ok:
		return nil, fmt.Errorf("the tool %q is no longer available", clipText(name, 64))
	case approved.Session.ID != s.ID || approved.Session.Workspace != s.Workspace:
		return nil, errors.New("the approved call belongs to another session or workspace")
	case len(approved.Args) > r.limits.ArgsBytes:
		return nil, fmt.Errorf("the arguments are %d bytes, more than the limit of %d", len(approved.Args), r.limits.ArgsBytes)
	case s.HookBlock != "":
		// A PreToolCall hook refuses the call now, as the interceptor
		// would refuse a fresh one.
		return nil, security.HookDenial(s.HookBlock)
	}
	a, ex, err := t.Prepare(s, json.RawMessage(approved.Args))
	if err != nil {
		return nil, errors.New("the approved arguments are no longer valid: " + prepareErr(name, err))
	}
	if a.Kind != approved.Kind || a.Resource != approved.Resource || !bytes.Equal(a.Args, approved.Args) {
		return nil, fmt.Errorf("the call would now be %s %s, not the approved %s %s", a.Kind, clipText(a.Resource, 200), approved.Kind, clipText(approved.Resource, 200))
	}
	return ex, nil
}

func isRefusal(err error) bool {
	var de *security.DeniedError
	var fe *security.DeferredError
	return errors.As(err, &de) || errors.As(err, &fe)
}

func prepareErr(name string, err error) string {
	var ae *ArgError
	if errors.As(err, &ae) {
		return ae.Error()
	}
	return name + ": " + describeErr(err)
}

// runErr renders the interceptor's refusal or the tool's failure.
func runErr(name string, err error) string {
	var de *security.DeniedError
	var fe *security.DeferredError
	switch {
	case errors.As(err, &de):
		return fmt.Sprintf("%s was not run: %s", name, de.Error())
	case errors.As(err, &fe):
		return fmt.Sprintf("%s was not run yet: it needs a human's approval (request %s: %s). Continue with other work; it runs only once approved.", name, fe.ID, fe.Reason)
	}
	var te *toolError
	if errors.As(err, &te) {
		return name + ": " + te.msg
	}
	return name + ": " + describeErr(err)
}

// toolError is a failure an executor describes for the model itself.
type toolError struct{ msg string }

func (e *toolError) Error() string { return e.msg }

func failf(format string, args ...any) error {
	return &toolError{msg: fmt.Sprintf(format, args...)}
}

// fileAction builds the action for a path argument, turning a resolution
// failure into an argument error.
func fileAction(tool, fieldName string, kind security.Kind, s security.Session, path string, args json.RawMessage) (security.Action, error) {
	a, err := security.NewFileAction(kind, s, path, append([]byte(nil), args...))
	if err != nil {
		return security.Action{}, &ArgError{Tool: tool, Field: fieldName, Msg: err.Error()}
	}
	return a, nil
}
