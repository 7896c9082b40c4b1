package backups

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/backup"
	"github.com/moorhq/moor/internal/domain"
)

// TestVerify: a restore's check of the archive tells a missing object, a
// wrong key, damage and a checksum that differs apart, each with the
// sentinel that gives its HTTP status.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	dir, err := backup.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{1}, backup.KeySize)
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, key, backup.Meta{Kind: "volume"})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("a tar stream, or as good as one "), 10000))
	res, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	put := func(b []byte) {
		if err := dir.Put(ctx, "volumes/x", bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	svc := func(k []byte) *Service {
		return &Service{cfg: Config{Target: dir, TargetName: "local", Key: k}}
	}
	b := domain.Backup{ID: "b1", Target: "local", ObjectKey: "volumes/x", SHA256: res.SHA256}

	if err := svc(key).verify(ctx, b); !errors.Is(err, domain.ErrNotFound) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing: %v", err)
	}
	put(good)
	if err := svc(key).verify(ctx, b); err != nil {
		t.Fatalf("good archive: %v", err)
	}
	if err := svc(bytes.Repeat([]byte{2}, backup.KeySize)).verify(ctx, b); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "another key") {
		t.Fatalf("wrong key: %v", err)
	}
	other := b
	other.SHA256 = strings.Repeat("0", 64)
	if err := svc(key).verify(ctx, other); !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "not the recorded") {
		t.Fatalf("checksum: %v", err)
	}
	put(good[:len(good)-10])
	if err := svc(key).verify(ctx, b); !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "damaged or truncated") {
		t.Fatalf("truncated: %v", err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0x40
	put(bad)
	if err := svc(key).verify(ctx, b); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("damaged: %v", err)
	}
	other.Target = "s3"
	if err := svc(key).verify(ctx, other); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("another target: %v", err)
	}
}

// TestObjectKey: keys are valid target keys whatever the names hold.
func TestObjectKey(t *testing.T) {
	k := objectKey("default", "Blog_1", ".Data Dir", mustTime(t), "0a-1")
	if err := backup.ValidateKey(k); err != nil {
		t.Fatalf("%s: %v", k, err)
	}
	if !strings.HasPrefix(k, "volumes/default/blog_1/-data-dir/20260102t030405z-0a-1") {
		t.Fatalf("key %s", k)
	}
}

func mustTime(t *testing.T) time.Time {
	t.Helper()
	return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
}
