package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/moorhq/moor/internal/domain"
)

// Every target passes the same contract.

func TestDirContract(t *testing.T) {
	testTarget(t, func(t *testing.T) Target { return must(NewDir(t.TempDir())) })
}

func TestS3Contract(t *testing.T) {
	testTarget(t, func(t *testing.T) Target { return newFakeS3(t, "moor/backups") })
}

func TestS3ContractNoPrefix(t *testing.T) {
	testTarget(t, func(t *testing.T) Target { return newFakeS3(t, "") })
}

// newFakeS3 serves an in-memory S3 (gofakes3) on a loopback port and returns
// an S3 target on a fresh bucket of it.
func newFakeS3(t *testing.T, prefix string) *S3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("moor"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	s, err := NewS3(S3Config{
		Endpoint:  srv.URL, // http://127.0.0.1:port
		Bucket:    "moor",
		Prefix:    prefix,
		AccessKey: "moor",
		SecretKey: "moor-secret",
		Region:    "us-east-1",
		PartSize:  5 << 20, // S3's smallest, so that 50 MiB takes several parts
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testTarget(t *testing.T, newTarget func(t *testing.T) Target) {
	ctx := context.Background()

	t.Run("put get stat list delete", func(t *testing.T) {
		tg := newTarget(t)
		start := time.Now().Add(-time.Minute)
		objects := map[string][]byte{
			"volumes/blog/2026-01-02t030405z-data.moorbk": []byte("blog data"),
			"volumes/blog/2026-01-03t030405z-data.moorbk": []byte("blog data, later"),
			"volumes/blog-2/a.moorbk":                     []byte("another container"),
			"volumes/db/x_y.moorbk":                       {},
			"moor/db.moorbk":                              []byte("moor's own"),
		}
		for k, v := range objects {
			size := int64(len(v))
			if strings.Contains(k, "later") {
				size = -1 // unknown size
			}
			if err := tg.Put(ctx, k, bytes.NewReader(v), size); err != nil {
				t.Fatalf("put %s: %v", k, err)
			}
		}
		for k, v := range objects {
			if got := get(t, tg, k); !bytes.Equal(got, v) {
				t.Fatalf("get %s: %q, want %q", k, got, v)
			}
			o, err := tg.Stat(ctx, k)
			if err != nil || o.Key != k || o.Size != int64(len(v)) || o.ModTime.Before(start) || o.ModTime.After(time.Now().Add(time.Minute)) {
				t.Fatalf("stat %s: %+v, %v", k, o, err)
			}
		}
		// Replace.
		if err := tg.Put(ctx, "moor/db.moorbk", strings.NewReader("newer"), 5); err != nil {
			t.Fatal(err)
		}
		if got := get(t, tg, "moor/db.moorbk"); string(got) != "newer" {
			t.Fatalf("after replace: %q", got)
		}

		for prefix, want := range map[string][]string{
			"":                        {"moor/db.moorbk", "volumes/blog-2/a.moorbk", "volumes/blog/2026-01-02t030405z-data.moorbk", "volumes/blog/2026-01-03t030405z-data.moorbk", "volumes/db/x_y.moorbk"},
			"volumes/blog/":           {"volumes/blog/2026-01-02t030405z-data.moorbk", "volumes/blog/2026-01-03t030405z-data.moorbk"},
			"volumes/blog":            {"volumes/blog-2/a.moorbk", "volumes/blog/2026-01-02t030405z-data.moorbk", "volumes/blog/2026-01-03t030405z-data.moorbk"},
			"volumes/b":               {"volumes/blog-2/a.moorbk", "volumes/blog/2026-01-02t030405z-data.moorbk", "volumes/blog/2026-01-03t030405z-data.moorbk"},
			"volumes/blog/2026-01-03": {"volumes/blog/2026-01-03t030405z-data.moorbk"},
			"nothing/":                nil,
			"volumes/zz":              nil,
		} {
			objs, err := tg.List(ctx, prefix)
			if err != nil {
				t.Fatalf("list %q: %v", prefix, err)
			}
			var keys []string
			for _, o := range objs {
				keys = append(keys, o.Key)
				if o.Size != int64(len(objects[o.Key])) && o.Key != "moor/db.moorbk" {
					t.Fatalf("list %q: %+v", prefix, o)
				}
			}
			if strings.Join(keys, " ") != strings.Join(want, " ") {
				t.Fatalf("list %q:\n%v\nwant\n%v", prefix, keys, want)
			}
		}

		for k := range objects {
			if err := tg.Delete(ctx, k); err != nil {
				t.Fatalf("delete %s: %v", k, err)
			}
			if _, err := tg.Stat(ctx, k); !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("stat after delete %s: %v", k, err)
			}
		}
		if objs, err := tg.List(ctx, ""); err != nil || len(objs) != 0 {
			t.Fatalf("list after deletes: %v %v", objs, err)
		}
	})

	t.Run("missing key", func(t *testing.T) {
		tg := newTarget(t)
		if err := tg.Put(ctx, "volumes/a/b.moorbk", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"missing.moorbk", "volumes/a/missing.moorbk", "volumes/a", "volumes/a/b.moorbk/c"} {
			if _, err := tg.Get(ctx, k); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("get %s: %v", k, err)
			}
			if _, err := tg.Stat(ctx, k); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("stat %s: %v", k, err)
			}
		}
		if err := tg.Delete(ctx, "missing.moorbk"); err != nil {
			t.Errorf("delete of a missing key: %v", err)
		}
	})

	t.Run("invalid keys", func(t *testing.T) {
		tg := newTarget(t)
		for _, k := range []string{"", "/abs", "a/../b", "..", "../x", "a/./b", "a//b", "a/", ".hidden", "a/.put-1.tmp", "Upper", "sp ace", "a\\b", "é", strings.Repeat("a", MaxKeyLen+1)} {
			if err := tg.Put(ctx, k, strings.NewReader("x"), 1); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("put %q: %v", k, err)
			}
			if _, err := tg.Get(ctx, k); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("get %q: %v", k, err)
			}
			if _, err := tg.Stat(ctx, k); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("stat %q: %v", k, err)
			}
			if err := tg.Delete(ctx, k); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("delete %q: %v", k, err)
			}
		}
		for _, p := range []string{"/", "../", "a/../", "A", "a//"} {
			if _, err := tg.List(ctx, p); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("list %q: %v", p, err)
			}
		}
	})

	t.Run("50 MiB", func(t *testing.T) {
		tg := newTarget(t)
		data := randomBytes(50<<20, 50)
		want := sha256.Sum256(data)
		for _, size := range []int64{int64(len(data)), -1} {
			if err := tg.Put(ctx, "big.moorbk", struct{ io.Reader }{bytes.NewReader(data)}, size); err != nil {
				t.Fatalf("put size %d: %v", size, err)
			}
			o, err := tg.Stat(ctx, "big.moorbk")
			if err != nil || o.Size != int64(len(data)) {
				t.Fatalf("stat: %+v %v", o, err)
			}
			rc, err := tg.Get(ctx, "big.moorbk")
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			n, err := io.Copy(h, rc)
			rc.Close()
			if err != nil || n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("get size %d: %d bytes, %v, content differs: %v", size, n, err, !bytes.Equal(h.Sum(nil), want[:]))
			}
		}
	})

	t.Run("cancelled put stores nothing", func(t *testing.T) {
		tg := newTarget(t)
		if err := tg.Put(ctx, "kept.moorbk", strings.NewReader("old"), 3); err != nil {
			t.Fatal(err)
		}
		for _, size := range []int64{-1, 20 << 20, 1 << 20} {
			for _, key := range []string{"new.moorbk", "kept.moorbk"} {
				cctx, cancel := context.WithCancel(ctx)
				// The source gives half its bytes, then its reader's caller gives up.
				total := size
				if total < 0 {
					total = 12 << 20
				}
				src := &cancelAfter{r: bytes.NewReader(randomBytes(int(total), 1)), n: total / 2, cancel: cancel}
				err := tg.Put(cctx, key, src, size)
				cancel()
				if err == nil {
					t.Fatalf("put of %s (size %d) cancelled half way succeeded", key, size)
				}
				if !errors.Is(err, context.Canceled) {
					t.Logf("put of %s (size %d) cancelled half way: %v", key, size, err)
				}
				if key == "new.moorbk" {
					if _, err := tg.Stat(ctx, key); !errors.Is(err, domain.ErrNotFound) {
						t.Fatalf("after a cancelled put (size %d): %v", size, err)
					}
				} else if got := get(t, tg, key); string(got) != "old" {
					t.Fatalf("a cancelled put (size %d) changed the object: %d bytes", size, len(got))
				}
			}
		}
		objs, err := tg.List(ctx, "")
		if err != nil || len(objs) != 1 || objs[0].Key != "kept.moorbk" {
			t.Fatalf("left: %+v %v", objs, err)
		}
	})

	t.Run("short or long content", func(t *testing.T) {
		tg := newTarget(t)
		if err := tg.Put(ctx, "short.moorbk", strings.NewReader("12345"), 10); err == nil {
			t.Fatal("put of 5 bytes announced as 10 succeeded")
		}
		if _, err := tg.Stat(ctx, "short.moorbk"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("after a short put: %v", err)
		}
	})
}

// cancelAfter reads n bytes of r, then calls cancel and goes on reading.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		p = p[:min(len(p), 1024)] // so that more reads are needed
	} else if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

func get(t *testing.T, tg Target, key string) []byte {
	t.Helper()
	rc, err := tg.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return b
}

func TestDirFiles(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "backups")
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "volumes/blog/a.moorbk", strings.NewReader("data"), -1); err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{
		root:                                0o700 | os.ModeDir,
		filepath.Join(root, "volumes"):      0o700 | os.ModeDir,
		filepath.Join(root, "volumes/blog"): 0o700 | os.ModeDir,
		filepath.Join(root, "volumes/blog/a.moorbk"): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v %v, want %v", path, fi.Mode(), err, mode)
		}
	}
	// A temporary file (as a crash mid-put leaves) and foreign files are not objects.
	for _, name := range []string{"volumes/blog/.put-123.tmp", "volumes/blog/README.TXT", ".trash/x.moorbk"} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := d.List(ctx, "")
	if err != nil || len(objs) != 1 || objs[0].Key != "volumes/blog/a.moorbk" {
		t.Fatalf("list: %+v %v", objs, err)
	}
	// A failed put leaves no temporary file.
	if err := d.Put(ctx, "volumes/blog/b.moorbk", errReaderAfter("abc", errors.New("docker went away")), -1); err == nil {
		t.Fatal("put from a failing reader succeeded")
	}
	entries, _ := os.ReadDir(filepath.Join(root, "volumes/blog"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".put-123.tmp README.TXT a.moorbk" {
		t.Fatalf("after a failed put: %v", names)
	}

	if _, err := NewDir(""); !errors.Is(err, domain.ErrInvalid) {
		t.Fatal(err)
	}
	if _, err := NewDir(filepath.Join(root, "volumes/blog/a.moorbk")); err == nil {
		t.Fatal("a file as the directory")
	}
}

func errReaderAfter(s string, err error) io.Reader {
	return io.MultiReader(strings.NewReader(s), errReader{err})
}

func TestNewS3Config(t *testing.T) {
	for _, c := range []S3Config{
		{Endpoint: "", Bucket: "b"},
		{Endpoint: "s3.example.com", Bucket: ""},
		{Endpoint: "ftp://s3.example.com", Bucket: "b"},
		{Endpoint: "https://s3.example.com/path", Bucket: "b"},
		{Endpoint: "s3.example.com", Bucket: "b", Prefix: "Bad Prefix"},
	} {
		if _, err := NewS3(c); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	s, err := NewS3(S3Config{Endpoint: "https://s3.example.com", Bucket: "b", Prefix: "/moor/"})
	if err != nil || s.prefix != "moor/" || s.client.EndpointURL().Scheme != "https" {
		t.Fatalf("%v %+v", err, s)
	}
}

// TestArchiveToS3 stores an archive on the S3 target with its size unknown
// (as a backup streams it) and reads it back.
func TestArchiveToS3(t *testing.T) {
	ctx := context.Background()
	s := newFakeS3(t, "moor")
	key := testKey(1)
	data := textBytes(8<<20, 2)
	pr, pw := io.Pipe()
	done := make(chan Result, 1)
	go func() {
		w, err := NewWriter(pw, key, testMeta)
		var res Result
		if err == nil {
			if _, err = w.Write(data); err == nil {
				res, err = w.Close()
			}
		}
		pw.CloseWithError(err)
		done <- res
	}()
	if err := s.Put(ctx, "volumes/blog/data.moorbk", pr, -1); err != nil {
		t.Fatal(err)
	}
	res := <-done
	o, err := s.Stat(ctx, "volumes/blog/data.moorbk")
	if err != nil || o.Size != res.StoredBytes {
		t.Fatalf("%+v %v, stored %d", o, err, res.StoredBytes)
	}
	rc, err := s.Get(ctx, "volumes/blog/data.moorbk")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r, meta, err := NewReader(rc, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out bytes.Buffer
	if _, err := io.Copy(&out, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) || r.Sum() != res.SHA256 || meta.Container != "blog" {
		t.Fatal("archive read back from S3 differs")
	}
}

// TestS3CancelledPutAborts checks that a multipart upload cut short is aborted,
// not left to occupy the bucket.
func TestS3CancelledPutAborts(t *testing.T) {
	ctx := context.Background()
	s := newFakeS3(t, "moor")
	cctx, cancel := context.WithCancel(ctx)
	src := &cancelAfter{r: bytes.NewReader(randomBytes(12<<20, 1)), n: 8 << 20, cancel: cancel} // after the first part
	if err := s.Put(cctx, "volumes/a.moorbk", src, -1); !errors.Is(err, context.Canceled) {
		t.Fatalf("put: %v", err)
	}
	for u := range s.client.ListIncompleteUploads(ctx, s.bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Fatalf("upload left: %+v", u)
	}
}
