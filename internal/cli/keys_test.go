package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeysGenerateShow(t *testing.T) {
	te := newTestEnv(t)
	if out, _, code := te.run(t, "keys", "show"); code != 1 || !strings.Contains(out, "astrid keys generate") {
		t.Fatalf("show before generate: code %d, stdout %q", code, out)
	}
	first, stderr, code := te.run(t, "keys", "generate")
	if code != 0 {
		t.Fatalf("generate: code %d: %s", code, stderr)
	}
	// A second plain generate keeps both keys.
	if out, _, code := te.run(t, "keys", "generate"); code != 0 || out != first {
		t.Fatalf("second generate changed keys or failed (code %d):\n%s\nvs\n%s", code, out, first)
	}
	if _, stderr, code := te.run(t, "keys", "generate", "runtime"); code != 1 || !strings.Contains(stderr, "--force") {
		t.Fatalf("generate existing runtime key: code %d, stderr %q", code, stderr)
	}
	out, stderr, code := te.run(t, "--format", "json", "keys", "show")
	if code != 0 {
		t.Fatalf("show: %d %s", code, stderr)
	}
	var infos []keyInfo
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "runtime" || infos[1].Name != "user" || infos[0].PublicKey == "" {
		t.Fatalf("show json = %+v", infos)
	}
	out, stderr, code = te.run(t, "--format", "json", "keys", "generate", "runtime", "--force")
	if code != 0 {
		t.Fatalf("force: %d %s", code, stderr)
	}
	var forced []keyInfo
	json.Unmarshal([]byte(out), &forced)
	if len(forced) != 1 || forced[0].PublicKey == infos[0].PublicKey {
		t.Fatalf("--force did not replace the runtime key: %+v", forced)
	}
}

func TestKeysShowReportsUnsafePermissions(t *testing.T) {
	te := newTestEnv(t)
	if _, stderr, code := te.run(t, "keys", "generate"); code != 0 {
		t.Fatal(stderr)
	}
	if err := os.Chmod(filepath.Join(te.vars["ASTRID_HOME"], "keys", "user.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _, code := te.run(t, "keys", "show"); code != 1 || !strings.Contains(out, "must be 0600") {
		t.Fatalf("code %d, stdout %q", code, out)
	}
}

func TestKeysBadArgument(t *testing.T) {
	te := newTestEnv(t)
	if _, stderr, code := te.run(t, "keys", "show", "admin"); code != 1 || !strings.Contains(stderr, `unknown key "admin"`) {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
}
