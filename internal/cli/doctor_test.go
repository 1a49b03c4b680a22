package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func doctorStatuses(t *testing.T, te *testEnv) (map[string]string, int) {
	t.Helper()
	code := te.run(t, "--format", "json", "doctor")
	var rs []checkResult
	if err := json.Unmarshal(te.stdout.Bytes(), &rs); err != nil {
		t.Fatalf("doctor output %q: %v", te.stdout, err)
	}
	m := map[string]string{}
	for _, r := range rs {
		m[r.Name] = r.Status
	}
	return m, code
}

func TestDoctorFreshHomeWarnsButPasses(t *testing.T) {
	te := newTestEnv(t)
	st, code := doctorStatuses(t, te)
	if code != 0 {
		t.Fatalf("doctor on a fresh home exited %d: %s", code, te.stderr)
	}
	for _, name := range []string{"home", "runtime key", "store"} {
		if st[name] != statusWarn {
			t.Errorf("%s = %q, want warn", name, st[name])
		}
	}
	if _, err := os.Stat(te.home); !os.IsNotExist(err) {
		t.Error("doctor created ASTRID_HOME; it must only look")
	}
}

func TestDoctorFailsOnBadKeysAndStore(t *testing.T) {
	te := newTestEnv(t)
	if code := te.run(t, "keys", "generate"); code != 0 {
		t.Fatal(te.stderr)
	}
	st, code := doctorStatuses(t, te)
	if code != 0 || st["runtime key"] != statusOK || st["user key"] != statusOK {
		t.Fatalf("healthy home: code %d, %v", code, st)
	}
	os.Chmod(filepath.Join(te.home, "keys", "runtime.key"), 0o644)
	os.WriteFile(filepath.Join(te.home, "state.db"), []byte("this is not SQLite, just some bytes that are long enough to look like a header"), 0o600)
	st, code = doctorStatuses(t, te)
	if code != 1 || st["runtime key"] != statusFail || st["store"] != statusFail {
		t.Fatalf("broken home: code %d, %v", code, st)
	}
}
