//go:build wasip1

// Command hostile is a capsule that tries to break out. The tests in
// package capsule build it and check that each attempt is refused and
// audited, and that the host keeps serving.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/astrid-runtime/astrid/sdk"
)

type pathArgs struct {
	Path string `json:"path"`
}

type urlArgs struct {
	URL string `json:"url"`
}

type countArgs struct {
	N int `json:"n"`
}

type empty struct{}

var sink []byte

func init() {
	sdk.HandleTool("echo", func(a struct {
		Text string `json:"text"`
	}) (string, error) {
		return a.Text, nil
	})
	sdk.HandleTool("spin", func(empty) (string, error) {
		for i := 0; ; i++ {
			if i < 0 {
				return "", nil
			}
		}
	})
	sdk.HandleTool("alloc", func(a countArgs) (string, error) {
		sink = make([]byte, a.N<<20)
		for i := range sink {
			sink[i] = byte(i)
		}
		return "allocated " + strconv.Itoa(len(sink)), nil
	})
	sdk.HandleTool("write", func(a pathArgs) (string, error) {
		return "wrote", sdk.WriteFile(a.Path, []byte("pwned"))
	})
	sdk.HandleTool("write_once", func(a pathArgs) (string, error) {
		err := sdk.WriteFile(a.Path, []byte("once"))
		if id, ok := sdk.DeferredID(err); ok {
			return "deferred " + id, nil
		}
		return "wrote", err
	})
	sdk.HandleTool("deferred_result", func(a struct {
		ID string `json:"id"`
	}) (string, error) {
		b, err := sdk.DeferredResult(a.ID)
		return "result " + string(b), err
	})
	sdk.HandleTool("read", func(a pathArgs) (string, error) {
		b, err := sdk.ReadFile(a.Path)
		return string(b), err
	})
	sdk.HandleTool("http", func(a urlArgs) (string, error) {
		resp, err := sdk.HTTP(sdk.HTTPRequest{URL: a.URL})
		if err != nil {
			return "", err
		}
		return strconv.Itoa(resp.Status) + " " + string(resp.Body), nil
	})
	sdk.HandleTool("flood", func(a countArgs) (string, error) {
		for i := 0; i < a.N; i++ {
			if err := sdk.Publish("events", []byte("spam")); err != nil {
				return "stopped at " + strconv.Itoa(i), err
			}
		}
		return "published " + strconv.Itoa(a.N), nil
	})
	sdk.HandleTool("bigkv", func(a countArgs) (string, error) {
		return "stored", sdk.KVSet("big", make([]byte, a.N))
	})
	sdk.HandleTool("undeclared", func(empty) (string, error) {
		var errs []string
		if err := sdk.Subscribe("not-declared"); err != nil {
			errs = append(errs, err.Error())
		}
		if err := sdk.SendToUser("hello"); err != nil {
			errs = append(errs, err.Error())
		}
		if err := sdk.CronSchedule("sneaky", "* * * * *"); err != nil {
			errs = append(errs, err.Error())
		}
		return strings.Join(errs, "\n"), nil
	})
	sdk.HandleTool("config_loop", func(a countArgs) (string, error) {
		for i := 0; i < a.N; i++ {
			if _, err := sdk.Config("GREETING"); err != nil {
				return "", err
			}
		}
		return "ok", nil
	})
	sdk.HandleTool("kv_loop", func(a countArgs) (string, error) {
		for i := 0; i < a.N; i++ {
			if err := sdk.KVSet("k", []byte("v")); err != nil {
				return "", err
			}
		}
		return "ok", nil
	})
	sdk.HandleTool("big_result", func(a countArgs) (string, error) {
		// A result larger than the SDK's 64 KiB buffer takes the
		// FnResult path.
		if err := sdk.KVSet("big", []byte(strings.Repeat("x", a.N))); err != nil {
			return "", err
		}
		b, err := sdk.KVGet("big")
		return strconv.Itoa(len(b)), err
	})
	sdk.HandleTool("panic", func(empty) (string, error) {
		panic("boom")
	})
	sdk.HandleTool("fail", func(empty) (string, error) {
		return "", errors.New("it went wrong")
	})
	sdk.HandleTool("json", func(a json.RawMessage) (string, error) { return string(a), nil })
	sdk.HandleTool("config", func(a struct {
		Name string `json:"name"`
	}) (string, error) {
		return sdk.Config(a.Name)
	})
	// A model: on a user turn it proposes a write of the user's text to
	// the file the user names with the tool "write"; once the tool result
	// comes back it answers with it.
	sdk.RegisterProvider("scripted", func(req sdk.CompletionRequest) (sdk.CompletionResponse, error) {
		last := req.Messages[len(req.Messages)-1]
		if len(last.ToolResults) > 0 {
			r := last.ToolResults[0]
			return sdk.CompletionResponse{Text: fmt.Sprintf("tool said %q (error %v)", r.Content, r.IsError), InputTokens: 7, OutputTokens: 3}, nil
		}
		args, _ := json.Marshal(map[string]string{"path": last.Text})
		return sdk.CompletionResponse{Text: "writing", ToolCalls: []sdk.CompletionToolCall{{ID: "c1", Name: "write", Arguments: args}}, InputTokens: 5, OutputTokens: 2}, nil
	})

	// Well-behaved uses of the other host functions, for a capsule that
	// declares them.
	type topicArgs struct {
		Topic   string `json:"topic"`
		Payload string `json:"payload"`
	}
	sdk.HandleTool("listen", func(a topicArgs) (string, error) { return "subscribed", sdk.Subscribe(a.Topic) })
	sdk.HandleTool("publish", func(a topicArgs) (string, error) { return "published", sdk.Publish(a.Topic, []byte(a.Payload)) })
	sdk.HandleTool("poll", func(a topicArgs) (string, error) {
		msgs, err := sdk.Poll(a.Topic)
		if err != nil {
			return "", err
		}
		var out []string
		for _, m := range msgs {
			out = append(out, m.From+":"+m.Topic+":"+string(m.Payload))
		}
		return strings.Join(out, ","), nil
	})
	sdk.HandleTool("ask", func(empty) (string, error) { return sdk.Elicit(sdk.ElicitRequest{Prompt: "favourite colour?"}) })
	sdk.HandleTool("tell", func(empty) (string, error) {
		if err := sdk.RegisterUplink("feed"); err != nil {
			return "", err
		}
		return "told", sdk.SendToUser("hello from a capsule")
	})
	sdk.HandleTool("sched", func(empty) (string, error) { return "scheduled", sdk.CronSchedule("tick", "* * * * *") })
	sdk.HandleTool("unsched", func(empty) (string, error) { return "cancelled", sdk.CronCancel("tick") })
	sdk.RegisterCron("tick", func(string) error {
		n := 0
		if b, err := sdk.KVGet("ticks"); err == nil {
			n, _ = strconv.Atoi(string(b))
		}
		return sdk.KVSet("ticks", []byte(strconv.Itoa(n+1)))
	})
	sdk.HandleTool("fs_tour", func(a pathArgs) (string, error) {
		if err := sdk.Mkdir(a.Path + "/sub"); err != nil {
			return "", err
		}
		if err := sdk.WriteFile(a.Path+"/sub/f.txt", []byte("12345")); err != nil {
			return "", err
		}
		ok, err := sdk.Exists(a.Path + "/sub/f.txt")
		if err != nil || !ok {
			return "", errors.New("exists failed")
		}
		fi, err := sdk.Stat(a.Path + "/sub/f.txt")
		if err != nil {
			return "", err
		}
		ents, err := sdk.ReadDir(a.Path + "/sub")
		if err != nil {
			return "", err
		}
		if err := sdk.Remove(a.Path + "/sub/f.txt"); err != nil {
			return "", err
		}
		gone, err := sdk.Exists(a.Path + "/sub/f.txt")
		if err != nil {
			return "", err
		}
		return fi.Name + " " + strconv.FormatInt(fi.Size, 10) + " " + strconv.Itoa(len(ents)) + " " + strconv.FormatBool(gone), nil
	})
	sdk.RegisterHook("BeforeToolCall", func(ev sdk.HookEvent) (sdk.HookVerdict, error) {
		if strings.Contains(string(ev.Args), "forbidden") {
			return sdk.HookVerdict{Block: true, Reason: "no forbidden words"}, nil
		}
		if strings.Contains(string(ev.Args), "crash") {
			panic("hook crashed")
		}
		return sdk.HookVerdict{}, nil
	})
	sdk.RegisterHook("AfterToolCall", func(ev sdk.HookEvent) (sdk.HookVerdict, error) {
		return sdk.HookVerdict{Note: "seen " + ev.Tool}, nil
	})
}

func main() {}
