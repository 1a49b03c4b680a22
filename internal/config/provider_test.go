package config

import "testing"

func TestModelProvider(t *testing.T) {
	for _, ok := range []string{"anthropic", "claude", "openai", "zai", "replay", "capsule:scribe/local", "capsule:scribe.ws-1a2b3c4d/gen"} {
		if err := modelProvider(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"gemini", "capsule:", "capsule:scribe", "capsule:/gen", "capsule:scribe/", "capsule:scribe/a/b", "capsule:*/gen", "capsule:scribe/*", "capsule:scribe/g\x00"} {
		if err := modelProvider(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
