package sdk

import "time"

// The JSON payloads of the host functions that take or return structured
// data. Byte fields are base64 in JSON, as encoding/json writes []byte.

// HTTPRequest is the a argument of FnHTTPRequest.
type HTTPRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// HTTPResponse is the payload of FnHTTPRequest.
type HTTPResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// FileInfo is the payload of FnFSStat and an entry of FnFSReadDir.
type FileInfo struct {
	Name    string    `json:"name"`
	Dir     bool      `json:"dir"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
}

// Message is an entry of FnIPCPoll's payload. Topic is as the capsule
// named it (without the host's prefix).
type Message struct {
	Topic   string `json:"topic"`
	From    string `json:"from"`
	Payload []byte `json:"payload"`
}

// ElicitRequest is the a argument of FnElicit.
type ElicitRequest struct {
	Prompt string `json:"prompt"`
	Secret bool   `json:"secret,omitempty"`
}

// HookEvent is the input of a KindHook call.
type HookEvent struct {
	Event   string `json:"event"`
	Session string `json:"session"`
	Tool    string `json:"tool,omitempty"`
	Args    []byte `json:"args,omitempty"`
	Result  string `json:"result,omitempty"`
}

// HookVerdict is the output of a KindHook call: Block stops the tool call
// (BeforeToolCall only) with Reason; Note is added to the result the model
// sees (AfterToolCall).
type HookVerdict struct {
	Block  bool   `json:"block,omitempty"`
	Reason string `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
}
