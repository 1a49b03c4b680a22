package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func doctorStatuses(t *testing.T, te *testEnv) (map[string]string, int) {
	t.Helper()
	out, _, code := te.run(t, "--format", "json", "doctor")
	var rs []checkResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("doctor output %q: %v", out, err)
	}
	m := map[string]string{}
	for _, r := range rs {
		m[r.Name] = r.Status
	}
	return m, code
}

func TestDoctorFreshHomeWarnsButPasses(t *testing.T) {
	te := newTestEnv(t)
	home := filepath.Join(te.tmp, "fresh-home")
	te.vars["ASTRID_HOME"] = home
	st, code := doctorStatuses(t, te)
	if code != 0 {
		t.Fatalf("doctor on a fresh home exited %d: %v", code, st)
	}
	for _, name := range []string{"home", "runtime key", "store"} {
		if st[name] != statusWarn {
			t.Errorf("%s = %q, want warn", name, st[name])
		}
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Error("doctor created ASTRID_HOME; it must only look")
	}
}

func TestDoctorFailsOnBadKeysAndStore(t *testing.T) {
	te := newTestEnv(t)
	if _, stderr, code := te.run(t, "keys", "generate"); code != 0 {
		t.Fatal(stderr)
	}
	st, code := doctorStatuses(t, te)
	if code != 0 || st["runtime key"] != statusOK || st["user key"] != statusOK {
		t.Fatalf("healthy home: code %d, %v", code, st)
	}
	os.Chmod(filepath.Join(te.vars["ASTRID_HOME"], "keys", "runtime.key"), 0o644)
	os.WriteFile(filepath.Join(te.vars["ASTRID_HOME"], "state.db"), []byte("this is not SQLite, just some bytes that are long enough to look like a header"), 0o600)
	st, code = doctorStatuses(t, te)
	if code != 1 || st["runtime key"] != statusFail || st["store"] != statusFail {
		t.Fatalf("broken home: code %d, %v", code, st)
	}
}

func TestDoctorConfigAndProvider(t *testing.T) {
	te := newTestEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" {
			t.Error("doctor sent credentials")
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	te.write(t, "home/config.toml", "[model]\nprovider = \"openai\"\napi_url = \""+srv.URL+"/v1\"\n")
	st, code := doctorStatuses(t, te)
	if code != 0 || st["config"] != statusOK || st["provider"] != statusOK {
		t.Fatalf("reachable provider: code %d, %v", code, st)
	}
	srv.Close()
	st, _ = doctorStatuses(t, te)
	if st["provider"] != statusWarn {
		t.Fatalf("unreachable provider: %v", st)
	}
	te.write(t, "repo/.astrid/config.toml", "[budget]\nsession_max_usd = 1e9\nbogus = 1\n")
	st, code = doctorStatuses(t, te)
	if code != 1 || st["config"] != statusFail {
		t.Fatalf("broken workspace config: code %d, %v", code, st)
	}
}
