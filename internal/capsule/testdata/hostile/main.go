//go:build wasip1

// Command hostile is a capsule that tries to break out. The tests in
// package capsule build it and check that each attempt is refused and
// audited, and that the host keeps serving.
package main

import (
	"encoding/json"
	"errors"
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
}

func main() {}
