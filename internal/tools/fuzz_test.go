package tools

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var argSeeds = []string{
	`{"file_path":"a.go"}`,
	`{"file_path":"a.go","offset":10,"limit":5}`,
	`{"file_path":"a","old_string":"x","new_string":"y","replace_all":true}`,
	`{"file_path":"a","old_string":"x","new_string":""}`,
	`{"file_path":"a","file_path":"b"}`,
	`{"file_path":null,"offset":null}`,
	`{"file_path":"\u00e9\ud800","offset":-1}`,
	`{"file_path":"a","offset":1e3}`,
	`{"x":{"y":[1,2,{"z":null}]}}`,
	`[]`, `""`, ``, `{`, `{"file_path":"a"}}`, `{"file_path":"a"} x`,
}

// checkArgErr: a refusal is always an *ArgError naming the tool.
func checkArgErr(t *testing.T, tool string, err error) {
	var ae *ArgError
	if !errors.As(err, &ae) || ae.Tool != tool || !utf8.ValidString(ae.Error()) {
		t.Fatalf("error %T %v is not an ArgError of %s", err, err, tool)
	}
}

// checkObject: accepted input is one JSON object with only known fields.
func checkObject(t *testing.T, raw []byte, known ...string) {
	var m map[string]json.RawMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("accepted %q, which encoding/json rejects: %v", raw, err)
		}
	}
	for k := range m {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			t.Fatalf("accepted unknown field %q in %q", k, raw)
		}
	}
}

func FuzzReadFileArgs(f *testing.F) {
	for _, s := range argSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := parseReadFile(raw)
		if err != nil {
			checkArgErr(t, "read_file", err)
			return
		}
		checkObject(t, raw, "file_path", "offset", "limit")
		if a.FilePath == "" || a.Offset < 0 || a.Limit < 0 || a.Limit > maxReadLimit {
			t.Fatalf("accepted out-of-range arguments %+v from %q", a, raw)
		}
		// Round trip: the canonical encoding decodes to the same values.
		again, err := json.Marshal(map[string]any{"file_path": a.FilePath, "offset": a.Offset, "limit": a.Limit})
		if err != nil {
			t.Fatal(err)
		}
		b, err := parseReadFile(again)
		if err != nil || b != a {
			t.Fatalf("round trip of %+v: %+v, %v", a, b, err)
		}
	})
}

func FuzzEditFileArgs(f *testing.F) {
	for _, s := range argSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := parseEditFile(raw)
		if err != nil {
			checkArgErr(t, "edit_file", err)
			return
		}
		checkObject(t, raw, "file_path", "old_string", "new_string", "replace_all")
		if a.FilePath == "" || a.OldString == "" || a.OldString == a.NewString {
			t.Fatalf("accepted invalid arguments %+v from %q", a, raw)
		}
		// encoding/json agrees on the values.
		var std struct {
			FilePath   string `json:"file_path"`
			OldString  string `json:"old_string"`
			NewString  string `json:"new_string"`
			ReplaceAll bool   `json:"replace_all"`
		}
		if err := json.Unmarshal(raw, &std); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(editFileArgs{std.FilePath, std.OldString, std.NewString, std.ReplaceAll}, a); diff != "" {
			t.Fatalf("decoded differently from encoding/json (-std +ours)\n%s", diff)
		}
	})
}

func FuzzGrepArgs(f *testing.F) {
	f.Add([]byte(`{"pattern":"a(b|c)*","glob":"**/*.go","context":2,"case_insensitive":true}`))
	f.Add([]byte(`{"pattern":"\\Ax$","path":"sub"}`))
	f.Add([]byte(`{"pattern":"[","glob":"[["}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := parseGrep(raw)
		if err != nil {
			checkArgErr(t, "grep", err)
			return
		}
		checkObject(t, raw, "pattern", "path", "glob", "context", "case_insensitive")
		if a.re == nil || a.Context < 0 || a.Context > maxContext {
			t.Fatalf("accepted %+v", a)
		}
		// Matching never panics, on lines or whole files.
		a.re.MatchString("some line")
		if a.whole != nil {
			a.whole.MatchString("one\ntwo\n")
		}
		if a.Glob != "" {
			globMatches(a.Glob, "dir/file.go")
		}
	})
}

// FuzzParseDirents: the getdents decoder never reads out of bounds.
func FuzzParseDirents(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 24))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, e := range parseDirents(b, nil) {
			if e.name == "" || e.name == "." || e.name == ".." {
				t.Fatalf("bad entry %q", e.name)
			}
		}
	})
}
