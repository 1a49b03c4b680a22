package llm

import (
	"net/http"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzErrorFromResponse(f *testing.F) {
	f.Add(529, []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), "3")
	f.Add(404, []byte(`{"error":"model not found"}`), "")
	f.Add(400, []byte(`{"error":{"message":"x","code":5}}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(500, []byte("\xff\xfe"), "-1")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		e := ErrorFromResponse("p", status, http.Header{"Retry-After": {retryAfter}}, body, time.Now())
		if e.Kind == "" || !utf8.ValidString(e.Message) || len(e.Message) > maxMessage+len("…") || e.RetryAfter < 0 {
			t.Fatalf("%+v", e)
		}
		s := StreamError("p", body)
		if s.Kind == "" || !utf8.ValidString(s.Message) {
			t.Fatalf("%+v", s)
		}
	})
}
