package security

import (
	"fmt"
	"strings"
)

// Trust is how much a message entering a session is believed.
type Trust string

// The trust levels. Only VerifiedUser input can answer approvals or
// trigger actions on its own; everything a tool, MCP server, web page or
// capsule returns is Untrusted and reaches the model marked as data.
const (
	VerifiedUser         Trust = "verified_user"
	CapabilityAuthorized Trust = "capability_authorized"
	Untrusted            Trust = "untrusted"
)

// TaggedMessage is a message with its attribution.
type TaggedMessage struct {
	ID       string `json:"id"`
	Frontend string `json:"frontend"`
	// UserID is the verified platform identity for VerifiedUser input
	// (the daemon's bearer-token user, a Telegram user id, ...).
	UserID  string `json:"user_id,omitempty"`
	Trust   Trust  `json:"trust"`
	Content string `json:"content"`
	// Source names where untrusted content came from (tool name, URL).
	Source string `json:"source,omitempty"`
}

// CanAnswerApprovals reports whether this message may answer an approval
// request. NOTE: a capability token authorizes actions, not answers: only
// a verified human decides.
func (m TaggedMessage) CanAnswerApprovals() bool {
	return m.Trust == VerifiedUser && m.UserID != ""
}

// UntrustedData tags tool output for the model. The framing tells the
// model the text is data, and the fence cannot be closed from inside: any
// occurrence of the closing marker in the content is defused.
func UntrustedData(source, content string) TaggedMessage {
	return TaggedMessage{Trust: Untrusted, Source: source, Content: content}
}

const (
	dataOpen  = "<untrusted-data source=%q>"
	dataClose = "</untrusted-data>"
)

// ForModel renders the message as the model should see it: untrusted
// content inside a fence it cannot break out of, everything else as is.
func (m TaggedMessage) ForModel() string {
	if m.Trust != Untrusted {
		return m.Content
	}
	body := strings.ReplaceAll(m.Content, dataClose, "</untrusted-data\u200b>")
	body = strings.ReplaceAll(body, "<untrusted-data", "<untrusted\u200b-data")
	return fmt.Sprintf(dataOpen, m.Source) + "\n" + body + "\n" + dataClose
}
