package security_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestInterceptorIsTheOnlyCallerOfExecutors enumerates every call of a
// method named Execute (the Executor interface) in the module's non-test
// code and fails if any is outside package security: an executor reached
// any other way would run an action that was never intercepted or audited.
func TestInterceptorIsTheOnlyCallerOfExecutors(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	var calls, files int
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && p != root) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Execute" {
				return true
			}
			calls++
			if f.Name.Name != "security" {
				t.Errorf("%s: calls .Execute outside the interceptor", fset.Position(call.Pos()))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 30 || calls == 0 {
		t.Fatalf("scanned %d files and found %d calls; the walk is not seeing the module", files, calls)
	}
}
