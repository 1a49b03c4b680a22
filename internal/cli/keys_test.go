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
	if code := te.run(t, "keys", "show"); code != 1 || !strings.Contains(te.stdout.String(), "astrid keys generate") {
		t.Fatalf("show before generate: code %d, stdout %q", code, te.stdout)
	}
	if code := te.run(t, "keys", "generate"); code != 0 {
		t.Fatalf("generate: code %d: %s", code, te.stderr)
	}
	first := te.stdout.String()
	// A second plain generate keeps both keys.
	if code := te.run(t, "keys", "generate"); code != 0 || te.stdout.String() != first {
		t.Fatalf("second generate changed keys or failed (code %d):\n%s\nvs\n%s", code, te.stdout, first)
	}
	if code := te.run(t, "keys", "generate", "runtime"); code != 1 || !strings.Contains(te.stderr.String(), "--force") {
		t.Fatalf("generate existing runtime key: code %d, stderr %q", code, te.stderr)
	}
	if code := te.run(t, "--format", "json", "keys", "show"); code != 0 {
		t.Fatalf("show: %d %s", code, te.stderr)
	}
	var infos []keyInfo
	if err := json.Unmarshal(te.stdout.Bytes(), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "runtime" || infos[1].Name != "user" || infos[0].PublicKey == "" {
		t.Fatalf("show json = %+v", infos)
	}
	if code := te.run(t, "--format", "json", "keys", "generate", "runtime", "--force"); code != 0 {
		t.Fatalf("force: %d %s", code, te.stderr)
	}
	var forced []keyInfo
	json.Unmarshal(te.stdout.Bytes(), &forced)
	if len(forced) != 1 || forced[0].PublicKey == infos[0].PublicKey {
		t.Fatalf("--force did not replace the runtime key: %+v", forced)
	}
}

func TestKeysShowReportsUnsafePermissions(t *testing.T) {
	te := newTestEnv(t)
	if code := te.run(t, "keys", "generate"); code != 0 {
		t.Fatal(te.stderr)
	}
	if err := os.Chmod(filepath.Join(te.home, "keys", "user.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := te.run(t, "keys", "show"); code != 1 || !strings.Contains(te.stdout.String(), "must be 0600") {
		t.Fatalf("code %d, stdout %q", code, te.stdout)
	}
}

func TestKeysBadArgument(t *testing.T) {
	te := newTestEnv(t)
	if code := te.run(t, "keys", "show", "admin"); code != 1 || !strings.Contains(te.stderr.String(), `unknown key "admin"`) {
		t.Fatalf("code %d, stderr %q", code, te.stderr)
	}
}
