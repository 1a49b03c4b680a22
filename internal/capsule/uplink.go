package capsule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"unicode/utf8"

	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/sdk"
)

// maxUplinkMessage bounds uplink_send and an elicit prompt.
const maxUplinkMessage = 16 << 10

func (m *Manager) uplinkRegister(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	name := string(a)
	declared := cs.c.caps.Uplink && slices.ContainsFunc(cs.c.man.Uplinks, func(u capsulepkg.UplinkDecl) bool { return u.Name == name })
	return cs.gated(ctx, "uplink", declared, map[string]string{"op": "register", "name": name}, "register uplink "+name, func(context.Context) ([]byte, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if owner, ok := m.uplinks[name]; ok && owner != cs.c.id {
			return nil, hostErrf(sdk.StatusInvalid, "uplink %s is registered by capsule %s", name, owner)
		}
		m.uplinks[name] = cs.c.id
		return nil, nil
	})
}

// Uplinks returns the registered uplinks: frontend name -> capsule id.
func (m *Manager) Uplinks() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.uplinks))
	for k, v := range m.uplinks {
		out[k] = v
	}
	return out
}

func (m *Manager) uplinkSend(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	if len(a) > maxUplinkMessage || !utf8.Valid(a) {
		return nil, hostErrf(sdk.StatusLimit, "uplink: want at most %d bytes of UTF-8", maxUplinkMessage)
	}
	text := string(a)
	return cs.gated(ctx, "uplink", cs.c.caps.Uplink, map[string]any{"op": "send", "bytes": len(a)}, "message the user", func(ctx context.Context) ([]byte, error) {
		if m.o.Uplink == nil {
			return nil, hostErrf(sdk.StatusFailed, "uplink: no frontend")
		}
		return nil, m.o.Uplink.Send(ctx, cs.sess, cs.c.id, text)
	})
}

func (m *Manager) elicit(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	var req sdk.ElicitRequest
	if err := json.Unmarshal(a, &req); err != nil || req.Prompt == "" || len(req.Prompt) > maxUplinkMessage {
		return nil, hostErrf(sdk.StatusInvalid, "elicit: want {\"prompt\": ...} of at most %d bytes", maxUplinkMessage)
	}
	return cs.gated(ctx, "elicit", cs.c.caps.Elicit, map[string]any{"prompt": req.Prompt, "secret": req.Secret}, "ask the user: "+clipString(req.Prompt, 80), func(ctx context.Context) ([]byte, error) {
		if m.o.Elicit == nil {
			return nil, hostErrf(sdk.StatusFailed, "elicit: nobody to ask")
		}
		ans, err := m.o.Elicit.Elicit(ctx, cs.sess, cs.c.id, req)
		return []byte(ans), err
	})
}

// Hook calls the [[interceptor]] handlers of the loaded capsules for ev
// (in capsule id order) and combines their verdicts: the first block
// wins; notes are joined. A handler that fails or cannot be called
// blocks a BeforeToolCall event: an error is a "no".
func (m *Manager) Hook(ctx context.Context, s security.Session, ev sdk.HookEvent) (sdk.HookVerdict, error) {
	m.mu.Lock()
	var cs []*Capsule
	for _, c := range m.loaded {
		if c.workspace != "" && c.workspace != s.Workspace {
			continue // a workspace capsule sees its workspace's sessions only
		}
		if slices.ContainsFunc(c.man.Interceptors, func(d capsulepkg.InterceptorDecl) bool {
			return d.Event == ev.Event && (d.Tool == "" || d.Tool == ev.Tool)
		}) {
			cs = append(cs, c)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(cs, func(a, b *Capsule) int {
		if a.id < b.id {
			return -1
		}
		return 1
	})
	input, err := json.Marshal(ev)
	if err != nil {
		return sdk.HookVerdict{}, err
	}
	var out sdk.HookVerdict
	for _, c := range cs {
		b, err := c.call(ctx, s, sdk.KindHook, ev.Event, input)
		var v sdk.HookVerdict
		if err == nil {
			err = json.Unmarshal(b, &v)
		}
		if err != nil {
			if ev.Event == "BeforeToolCall" {
				return sdk.HookVerdict{Block: true, Reason: fmt.Sprintf("capsule %s could not judge the call: %v", c.id, err)}, nil
			}
			m.log.Warn("capsule hook failed", "capsule", c.id, "event", ev.Event, "err", err)
			continue
		}
		if v.Block && ev.Event == "BeforeToolCall" {
			v.Reason = "capsule " + c.id + ": " + v.Reason
			return v, nil
		}
		if v.Note != "" {
			if out.Note != "" {
				out.Note += "\n"
			}
			out.Note += "[" + c.id + "] " + v.Note
		}
	}
	return out, nil
}

// maxStaticFile bounds a context file or skill read by the static engine.
const maxStaticFile = 64 << 10

// StaticItem is a piece of static context a capsule contributes: a
// context file, a skill or a command. Text is the capsule author's, to be
// shown to the model as untrusted data.
type StaticItem struct {
	Capsule string
	// Workspace is the root of a workspace capsule, "" for a user capsule:
	// show its items only to that workspace's sessions.
	Workspace   string
	Kind        string // "context_file", "skill" or "command"
	Name        string
	Description string
	Text        string
}

// Static returns the context files, skills and commands of the loaded
// capsules, reading files from their directories (no code runs). A file
// that is missing or larger than 64 KiB is an error.
func (m *Manager) Static() ([]StaticItem, error) {
	m.mu.Lock()
	cs := make([]*Capsule, 0, len(m.loaded))
	for _, c := range m.loaded {
		cs = append(cs, c)
	}
	m.mu.Unlock()
	slices.SortFunc(cs, func(a, b *Capsule) int {
		if a.id < b.id {
			return -1
		}
		return 1
	})
	var out []StaticItem
	var errs []error
	read := func(c *Capsule, rel string) string {
		b, err := capsulepkg.ReadBounded(filepath.Join(c.dir, filepath.FromSlash(rel)), maxStaticFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("capsule %s: %w", c.id, err))
		}
		return string(b)
	}
	for _, c := range cs {
		for _, f := range c.man.ContextFiles {
			out = append(out, StaticItem{Capsule: c.id, Workspace: c.workspace, Kind: "context_file", Name: f.Path, Description: f.Description, Text: read(c, f.Path)})
		}
		for _, s := range c.man.Skills {
			out = append(out, StaticItem{Capsule: c.id, Workspace: c.workspace, Kind: "skill", Name: s.Name, Description: s.Description, Text: read(c, s.Path)})
		}
		for _, cmd := range c.man.Commands {
			out = append(out, StaticItem{Capsule: c.id, Workspace: c.workspace, Kind: "command", Name: cmd.Name, Description: cmd.Description, Text: cmd.Prompt})
		}
	}
	return out, errors.Join(errs...)
}
