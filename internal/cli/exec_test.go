package cli

import (
	"encoding/json"
	"testing"

	"github.com/astrid-runtime/astrid/internal/api"
)

// TestExecElicit: exec has nobody to fill in a form: it declines one (or
// leaves it to time out under --approve defer); a sampling request's form
// is an approval, accepted as asked only under --approve allow.
func TestExecElicit(t *testing.T) {
	sampling := api.ElicitationNeeded{Server: "ev", Mode: "form", Sampling: true, Schema: json.RawMessage(`{"type":"object","properties":{
		"prompt":{"type":"string","default":"say hi"},"max_tokens":{"type":"integer","minimum":1,"maximum":20,"default":20}},"required":["prompt","max_tokens"]}`)}
	form := api.ElicitationNeeded{Server: "ev", Mode: "form", Schema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string","default":"Ada"}}}`)}
	url := api.ElicitationNeeded{Server: "ev", Mode: "url", URL: "https://example.org/"}
	broken := sampling
	broken.Schema = json.RawMessage(`{"type":"object","properties":{"prompt":{"type":"object"}}}`)
	for _, tc := range []struct {
		name    string
		en      api.ElicitationNeeded
		approve string
		action  string
		content string
	}{
		{"sampling allowed", sampling, "allow", api.ElicitAccept, `{"max_tokens":20,"prompt":"say hi"}`},
		{"sampling denied", sampling, "deny", api.ElicitDecline, ""},
		{"sampling deferred", sampling, "defer", "", ""},
		{"unreadable sampling form", broken, "allow", api.ElicitDecline, ""},
		{"form", form, "allow", api.ElicitDecline, ""}, // its defaults are not the user's answer
		{"form deferred", form, "defer", "", ""},
		{"url", url, "allow", api.ElicitDecline, ""},
	} {
		action, content, note := execElicit(tc.en, tc.approve)
		if action != tc.action || string(content) != tc.content || note == "" {
			t.Errorf("%s: %q %s (%s), want %q %s", tc.name, action, content, note, tc.action, tc.content)
		}
	}
}
