package keys

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func newDir(t *testing.T) Dir {
	t.Helper()
	return Dir(filepath.Join(t.TempDir(), "keys"))
}

func TestGenerateLoadRoundTrip(t *testing.T) {
	d := newDir(t)
	k, err := d.Generate(Runtime, false)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(string(d))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %04o, want 0700", fi.Mode().Perm())
	}
	fi, err = os.Stat(d.File(Runtime))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %04o, want 0600", fi.Mode().Perm())
	}
	got, err := d.Load(Runtime)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Private.Equal(k.Private) || !got.Created.Equal(k.Created) {
		t.Error("loaded key differs from generated key")
	}
	msg := []byte("hello")
	if !ed25519.Verify(got.Public(), msg, k.Sign(msg)) {
		t.Error("signature does not verify")
	}
	if len(k.ID()) != 32 || !strings.HasPrefix(k.Fingerprint(), "SHA256:") {
		t.Errorf("ID %q fingerprint %q", k.ID(), k.Fingerprint())
	}
}

func TestGenerateRefusesOverwriteWithoutForce(t *testing.T) {
	d := newDir(t)
	k1, err := d.Generate(User, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Generate(User, false); !errors.Is(err, ErrExists) {
		t.Fatalf("second Generate = %v, want ErrExists", err)
	}
	k2, err := d.Generate(User, true)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Private.Equal(k2.Private) {
		t.Error("--force did not make a new key")
	}
	got, _ := d.Load(User)
	if !got.Private.Equal(k2.Private) {
		t.Error("forced key not on disk")
	}
	left, _ := filepath.Glob(filepath.Join(string(d), ".tmp-key-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestLoadOrGenerateRace(t *testing.T) {
	d := newDir(t)
	var wg sync.WaitGroup
	keys := make([]*Key, 8)
	errs := make([]error, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], _, errs[i] = d.LoadOrGenerate(Runtime)
		}()
	}
	wg.Wait()
	onDisk, err := d.Load(Runtime)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: %v", i, errs[i])
		}
		if !k.Private.Equal(onDisk.Private) {
			t.Errorf("goroutine %d holds a key that is not the one on disk", i)
		}
	}
}

func TestLoadRefusesUnsafeFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, d Dir)
		want  string
	}{
		{"missing", func(t *testing.T, d Dir) {}, "not found"},
		{"group readable file", func(t *testing.T, d Dir) {
			mustGen(t, d)
			os.Chmod(d.File(Runtime), 0o640)
		}, "must be 0600"},
		{"world readable dir", func(t *testing.T, d Dir) {
			mustGen(t, d)
			os.Chmod(string(d), 0o755)
		}, "must be 0700"},
		{"symlinked file", func(t *testing.T, d Dir) {
			mustGen(t, d)
			other := filepath.Join(filepath.Dir(string(d)), "elsewhere.key")
			os.Rename(d.File(Runtime), other)
			os.Symlink(other, d.File(Runtime))
		}, "symlink"},
		{"symlinked dir", func(t *testing.T, d Dir) {
			real := string(d) + ".real"
			Dir(real).Generate(Runtime, false)
			os.Symlink(real, string(d))
		}, "symlink"},
		{"garbage", func(t *testing.T, d Dir) {
			os.MkdirAll(string(d), 0o700)
			os.WriteFile(d.File(Runtime), []byte("not a key"), 0o600)
		}, "no PEM block"},
		{"wrong key type", func(t *testing.T, d Dir) {
			os.MkdirAll(string(d), 0o700)
			os.WriteFile(d.File(Runtime), []byte("-----BEGIN PRIVATE KEY-----\nCreated: 2026-01-01T00:00:00Z\n\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"), 0o600)
		}, "key file"},
		{"huge", func(t *testing.T, d Dir) {
			os.MkdirAll(string(d), 0o700)
			os.WriteFile(d.File(Runtime), make([]byte, 1<<20), 0o600)
		}, "not a key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDir(t)
			tc.setup(t, d)
			_, err := d.Load(Runtime)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func mustGen(t *testing.T, d Dir) {
	t.Helper()
	if _, err := d.Generate(Runtime, false); err != nil {
		t.Fatal(err)
	}
}

func TestPublicFormat(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	s := FormatPublic(pub)
	got, err := ParsePublic(s)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("ParsePublic(FormatPublic) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "ed25519:", "rsa:AAAA", "ed25519:!!!", "ed25519:AAAA"} {
		if _, err := ParsePublic(bad); err == nil {
			t.Errorf("ParsePublic(%q) succeeded", bad)
		}
	}
	tr, err := NewTrusted(pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.Lookup(ID(pub)); !ok {
		t.Error("runtime key not trusted")
	}
	if _, err := NewTrusted(pub, []string{"garbage"}); err == nil {
		t.Error("NewTrusted accepted garbage")
	}
}

func FuzzDecode(f *testing.F) {
	d := Dir(filepath.Join(f.TempDir(), "keys"))
	k, err := d.Generate(Runtime, false)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := encode(k)
	f.Add(b)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := decode(b)
		if err == nil && len(k.Private) != ed25519.PrivateKeySize {
			t.Fatalf("decoded a key of %d bytes", len(k.Private))
		}
	})
}
