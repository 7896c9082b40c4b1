package secretbox

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testBox(t *testing.T) *Box {
	t.Helper()
	b, err := New(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	b := testBox(t)
	for _, tc := range []struct{ pt, ad []byte }{
		{[]byte("hunter2"), []byte("container-1")},
		{nil, nil},
		{[]byte{}, []byte("x")},
		{bytes.Repeat([]byte("long secret "), 1000), nil},
	} {
		ct, err := b.Seal(tc.pt, tc.ad)
		if err != nil {
			t.Fatal(err)
		}
		if len(tc.pt) > 0 && bytes.Contains(ct, tc.pt) {
			t.Error("ciphertext contains the plaintext")
		}
		pt, err := b.Open(ct, tc.ad)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(pt, tc.pt) {
			t.Errorf("Open = %q, want %q", pt, tc.pt)
		}
	}
}

func TestNonceIsRandom(t *testing.T) {
	b := testBox(t)
	x, _ := b.Seal([]byte("same"), nil)
	y, _ := b.Seal([]byte("same"), nil)
	if bytes.Equal(x, y) {
		t.Fatal("two seals of the same plaintext are equal")
	}
}

func TestTamperDetected(t *testing.T) {
	b := testBox(t)
	ad := []byte("container-1")
	ct, _ := b.Seal([]byte("a secret value"), ad)
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		if _, err := b.Open(bad, ad); !errors.Is(err, ErrOpen) {
			t.Errorf("flipped byte %d: Open error = %v, want ErrOpen", i, err)
		}
	}
	for n := range len(ct) {
		if _, err := b.Open(ct[:n], ad); !errors.Is(err, ErrOpen) {
			t.Errorf("truncated to %d: Open error = %v, want ErrOpen", n, err)
		}
	}
	if _, err := b.Open(append(bytes.Clone(ct), 0), ad); !errors.Is(err, ErrOpen) {
		t.Errorf("extended: Open error = %v, want ErrOpen", err)
	}
}

func TestWrongAdditionalDataFails(t *testing.T) {
	b := testBox(t)
	ct, _ := b.Seal([]byte("pw"), []byte("container-1"))
	for _, ad := range [][]byte{[]byte("container-2"), nil, []byte("container-1 ")} {
		if _, err := b.Open(ct, ad); !errors.Is(err, ErrOpen) {
			t.Errorf("AD %q: Open error = %v, want ErrOpen", ad, err)
		}
	}
}

func TestWrongKeyFails(t *testing.T) {
	ct, _ := testBox(t).Seal([]byte("pw"), nil)
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	if _, err := other.Open(ct, nil); !errors.Is(err, ErrOpen) {
		t.Errorf("Open with another key: %v, want ErrOpen", err)
	}
}

func TestNewKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New accepted a %d-byte key", n)
		}
	}
}

func TestLoadKeyFromEnv(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	ct, _ := testBox(t).Seal([]byte("pw"), nil)
	for _, enc := range []string{
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		" " + base64.StdEncoding.EncodeToString(key) + "\n",
	} {
		// The key file must not be touched when the variable is set.
		file := filepath.Join(t.TempDir(), "sub", "key")
		b, err := LoadKey(enc, file, quiet)
		if err != nil {
			t.Fatalf("LoadKey(%q): %v", enc, err)
		}
		if pt, err := b.Open(ct, nil); err != nil || string(pt) != "pw" {
			t.Errorf("LoadKey(%q): box does not open: %v", enc, err)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Errorf("key file created although MOOR_SECRET_KEY is set: %v", err)
		}
	}
}

func TestLoadKeyBadEnv(t *testing.T) {
	for _, bad := range []string{
		"not base64!!",
		base64.StdEncoding.EncodeToString(make([]byte, 16)),
		base64.StdEncoding.EncodeToString(make([]byte, 33)),
		"AAAA",
	} {
		_, err := LoadKey(bad, filepath.Join(t.TempDir(), "key"), quiet)
		if err == nil {
			t.Errorf("LoadKey(%q) accepted", bad)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "MOOR_SECRET_KEY") || !strings.Contains(msg, "32") {
			t.Errorf("LoadKey(%q) error %q should name MOOR_SECRET_KEY and the 32-byte rule", bad, msg)
		}
		if strings.Contains(err.Error(), bad) {
			t.Errorf("error %q echoes the key", err)
		}
	}
}

func TestKeyFileCreatedAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "moor")
	file := filepath.Join(dir, "secret.key")
	var logs bytes.Buffer
	b1, err := LoadKey("", file, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %04o, want 0600", perm)
	}
	di, _ := os.Stat(dir)
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("key directory mode %04o, want 0700", perm)
	}
	if !strings.Contains(logs.String(), file) {
		t.Errorf("creation not logged: %q", logs.String())
	}
	raw, _ := os.ReadFile(file)
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw))); err != nil || len(k) != KeySize {
		t.Errorf("key file content %q: %v", raw, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("key directory holds %d entries, want only the key file", len(entries))
	}

	ct, _ := b1.Seal([]byte("pw"), []byte("c1"))
	b2, err := LoadKey("", file, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b2.Open(ct, []byte("c1")); err != nil || string(pt) != "pw" {
		t.Errorf("reloaded key does not open: %v", err)
	}
	raw2, _ := os.ReadFile(file)
	if !bytes.Equal(raw, raw2) {
		t.Error("key file rewritten on reuse")
	}
}

func TestKeyFileConcurrentCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "key")
	boxes := make([]*Box, 8)
	var wg sync.WaitGroup
	for i := range boxes {
		wg.Go(func() {
			b, err := LoadKey("", file, quiet)
			if err != nil {
				t.Error(err)
			}
			boxes[i] = b
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ct, _ := boxes[0].Seal([]byte("pw"), nil)
	for i, b := range boxes {
		if _, err := b.Open(ct, nil); err != nil {
			t.Errorf("box %d has another key", i)
		}
	}
}

func TestKeyFilePermissionsRefused(t *testing.T) {
	for _, perm := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o602} {
		file := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(file, []byte(GenerateKey()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, perm); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKey("", file, quiet)
		if err == nil || !strings.Contains(err.Error(), "group or others") || !strings.Contains(err.Error(), file) {
			t.Errorf("mode %04o: error %v, want a refusal naming the file", perm, err)
		}
	}
	// 0400 is fine.
	file := filepath.Join(t.TempDir(), "key")
	os.WriteFile(file, []byte(GenerateKey()), 0o400)
	if _, err := LoadKey("", file, quiet); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestKeyFileBadContent(t *testing.T) {
	for _, content := range []string{"", "garbage!", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		file := filepath.Join(t.TempDir(), "key")
		os.WriteFile(file, []byte(content), 0o600)
		_, err := LoadKey("", file, quiet)
		if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "32") {
			t.Errorf("content %q: error %v, want one naming the file and the rule", content, err)
		}
	}
	if _, err := LoadKey("", t.TempDir(), quiet); err == nil {
		t.Error("a directory accepted as key file")
	}
	if _, err := LoadKey("", "", quiet); err == nil {
		t.Error("no key and no key file accepted")
	}
}
