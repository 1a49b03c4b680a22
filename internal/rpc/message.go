package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/astrid-runtime/astrid/internal/api"
)

// Limits on a frame's parts.
const (
	// DefaultMaxFrame is the largest frame a Conn accepts unless told
	// otherwise: 4 MiB.
	DefaultMaxFrame = 4 << 20
	maxIDLen        = 128
	maxMethodLen    = 128
)

// Kind says what a decoded frame is.
type Kind int

// The kinds of frames.
const (
	KindRequest      Kind = iota + 1 // a method call, with an id
	KindNotification                 // a method call without an id
	KindResponse                     // a result or an error for an id
)

// Message is one decoded frame. ID is the raw JSON id (a string or an
// integer), kept byte for byte so replies echo it exactly.
type Message struct {
	Kind   Kind
	ID     json.RawMessage
	Method string
	// Params is nil when absent or null, else a JSON object.
	Params json.RawMessage
	Result json.RawMessage
	Error  *Error
}

// wire is a frame as it is on the wire.
type wire struct {
	JSONRPC *string         `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// DecodeFrame decodes one frame strictly: a single JSON-RPC 2.0 request,
// notification or response object, with "jsonrpc":"2.0", an id that is a
// string or an integer of at most 128 bytes, a method name of at most 128
// bytes, object params, no other members, and nothing after the object.
// Batches are refused (Astrid's clients never send them).
//
// On failure it returns the error object to answer with and, when the
// frame carried a usable id, that id (else nil: the reply's id is null);
// then the Message is zero, except that its Kind is KindResponse when the
// frame was a (malformed) response, which must not be answered.
// It does not check the frame's size; Conn does before calling it.
func DecodeFrame(b []byte) (Message, json.RawMessage, *Error) {
	b = bytes.TrimSpace(b)
	if !json.Valid(b) {
		return Message{}, nil, &Error{Code: CodeParseError, Message: "parse error: the frame is not valid JSON"}
	}
	switch {
	case len(b) > 0 && b[0] == '[':
		return Message{}, nil, invalid("batches are not supported; send one request per frame")
	case len(b) == 0 || b[0] != '{':
		return Message{}, nil, invalid("a frame must be one JSON object")
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		// Recover the id if it is well formed, so the client can match
		// the error to its call.
		var probe struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(b, &probe)
		id := probe.ID
		if checkID(id) != nil {
			id = nil
		}
		return Message{}, id, invalid("invalid request: " + jsonMessage(err))
	}
	isCall := w.Method != ""
	isResp := w.Result != nil || w.Error != nil
	if isResp && !isCall {
		// NOTE: a response is never answered, even when malformed:
		// two peers must not trade error replies forever. A null id is
		// what a peer answers to a frame whose id it could not read.
		if bytes.Equal(w.ID, []byte("null")) {
			w.ID = nil
		}
		noReply := Message{Kind: KindResponse}
		switch {
		case checkID(w.ID) != nil:
			return noReply, nil, invalid("bad id in a response")
		case w.JSONRPC == nil || *w.JSONRPC != "2.0":
			return noReply, nil, invalid(`"jsonrpc" must be "2.0"`)
		case w.Result != nil && w.Error != nil:
			return noReply, nil, invalid("a response has a result or an error, not both")
		case w.Params != nil:
			return noReply, nil, invalid("a response has no params")
		}
		return Message{Kind: KindResponse, ID: w.ID, Result: w.Result, Error: w.Error}, nil, nil
	}
	var id json.RawMessage
	if w.ID != nil {
		if err := checkID(w.ID); err != nil {
			return Message{}, nil, invalid(err.Error())
		}
		id = w.ID
	}
	if w.JSONRPC == nil || *w.JSONRPC != "2.0" {
		return Message{}, id, invalid(`"jsonrpc" must be "2.0"`)
	}
	switch {
	case isCall && isResp:
		return Message{}, id, invalid("a frame cannot be both a request and a response")
	case isCall:
		if len(w.Method) > maxMethodLen {
			return Message{}, id, invalid("method name too long")
		}
		params := w.Params
		if bytes.Equal(params, []byte("null")) {
			params = nil
		}
		if params != nil && params[0] != '{' {
			return Message{}, id, &Error{Code: CodeInvalidParams, Message: "invalid params: params must be an object"}
		}
		m := Message{Kind: KindNotification, Method: w.Method, Params: params}
		if id != nil {
			m.Kind, m.ID = KindRequest, id
		}
		return m, nil, nil
	}
	return Message{}, id, invalid(`a frame needs a "method", a "result" or an "error"`)
}

func invalid(msg string) *Error { return &Error{Code: CodeInvalidRequest, Message: msg} }

// checkID accepts a JSON string or integer of bounded length; null is
// refused because a reply could not be matched to it.
func checkID(id json.RawMessage) error {
	if id == nil {
		return nil
	}
	if len(id) > maxIDLen {
		return errors.New("id too long")
	}
	switch {
	case id[0] == '"':
		return nil
	case id[0] == '-' || (id[0] >= '0' && id[0] <= '9'):
		if bytes.ContainsAny(id, ".eE") {
			return errors.New("id must be a string or an integer")
		}
		return nil
	}
	return errors.New("id must be a string or an integer")
}

// DecodeParams decodes params (nil meaning {}) into v strictly: unknown
// fields, wrong types and trailing data are refused with an error wrapping
// api.ErrInvalidParams whose text names the field. If v implements
// api.Validator, Validate runs after decoding.
func DecodeParams(params json.RawMessage, v any) error {
	if params == nil {
		params = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s", api.ErrInvalidParams, jsonMessage(err))
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the params object", api.ErrInvalidParams)
	}
	if val, ok := v.(api.Validator); ok {
		if err := val.Validate(); err != nil {
			return fmt.Errorf("%w: %v", api.ErrInvalidParams, err)
		}
	}
	return nil
}

// jsonMessage rewords encoding/json's errors for a client: the field and
// the expected type, without Go type names.
func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := te.Type.Kind().String()
		switch want {
		case "struct", "map":
			want = "object"
		case "slice", "array":
			want = "array"
		case "int", "int64", "uint64", "int32", "float64":
			want = "number"
		}
		if te.Type.String() == "time.Time" {
			want = "RFC 3339 time string"
		}
		if te.Field == "" {
			return fmt.Sprintf("want %s, got %s", want, te.Value)
		}
		return fmt.Sprintf("field %q: want %s, got %s", te.Field, want, te.Value)
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("want an RFC 3339 time, got %q", pe.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
