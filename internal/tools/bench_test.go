package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkReadFile reads a 2,000-line file through the whole path:
// argument decoding, resolution, the interceptor's five steps (with two
// audit appends to SQLite) and the read.
func BenchmarkReadFile(b *testing.B) {
	e := newEnv(b)
	e.write("big.go", lines(2000, func(i int) string { return fmt.Sprintf("\tx := compute(%d) // a typical line of code", i) }))
	args := json.RawMessage(`{"file_path":"big.go"}`)
	ctx := context.Background()
	b.Run("interceptor", func(b *testing.B) {
		for b.Loop() {
			res, err := e.reg.Run(ctx, e.core.Interceptor, e.sess, "read_file", args)
			if err != nil || res.IsError || !strings.HasSuffix(res.Text, "of 2000 · UTF-8]") {
				b.Fatalf("%v %.200s", err, res.Text)
			}
		}
	})
	// The executor alone, for comparison.
	b.Run("executor", func(b *testing.B) {
		t := readFile{DefaultLimits()}
		for b.Loop() {
			if _, err := t.run(e.ws+"/big.go", readFileArgs{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGrep searches a tree of 1,000 files (100 directories of 10
// files of 50 lines) through the whole path.
func BenchmarkGrep(b *testing.B) {
	e := newEnv(b)
	body := lines(50, func(i int) string { return fmt.Sprintf("line %d of some source text", i) })
	for d := range 100 {
		for f := range 10 {
			extra := ""
			if f == 0 {
				extra = "func NeedleFunction() {}\n"
			}
			e.write(fmt.Sprintf("pkg%02d/file%d.go", d, f), body+extra)
		}
	}
	args := json.RawMessage(`{"pattern":"Needle\\w+"}`)
	ctx := context.Background()
	for b.Loop() {
		res, err := e.reg.Run(ctx, e.core.Interceptor, e.sess, "grep", args)
		if err != nil || res.IsError || strings.Count(res.Text, "NeedleFunction") != 100 {
			b.Fatalf("%v %.300s", err, res.Text)
		}
	}
}
