package backup

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/moorhq/moor/internal/domain"
)

func testKey(seed byte) []byte {
	secret := bytes.Repeat([]byte{seed}, 32)
	k, err := DeriveKey(secret)
	if err != nil {
		panic(err)
	}
	return k
}

var testMeta = Meta{
	Kind:      "volume",
	Container: "blog",
	Volume:    "data",
	Created:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	Labels:    map[string]string{"type": "postgres"},
}

// randomBytes returns n incompressible bytes, the same for the same seed.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// textBytes returns n bytes of log-like text (compresses about 4-6x).
func textBytes(n int, seed uint64) []byte {
	words := strings.Fields(`the a container volume backup restore moor started stopped
		request GET POST /api/v1/containers 200 404 500 ms user admin operator blog db
		postgres redis nginx listening port connection closed accepted error warning info`)
	r := rand.New(rand.NewPCG(seed, seed+1))
	var b bytes.Buffer
	b.Grow(n + 256)
	for b.Len() < n {
		fmt.Fprintf(&b, "2026-01-%02dT%02d:%02d:%02d.%03dZ ", 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000))
		for i, k := 0, 4+r.IntN(10); i < k; i++ {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "id=%d\n", r.Uint32())
	}
	return b.Bytes()[:n]
}

func seal(t testing.TB, key []byte, meta Meta, data []byte) ([]byte, Result) {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(&out, key, meta)
	if err != nil {
		t.Fatal(err)
	}
	// Write in odd sizes to cross chunk and block boundaries unevenly.
	for p := data; len(p) > 0; {
		n := min(len(p), 12345)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	res, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), res
}

// open reads an archive to its end with Read (io.ReadAll) and again with
// WriteTo (io.Copy), which must agree; it returns what was read before any error.
func open(archive, key []byte) ([]byte, Meta, string, error) {
	got, meta, s, err := openWith(archive, key, func(r *Reader) ([]byte, error) { return io.ReadAll(r) })
	got2, _, s2, err2 := openWith(archive, key, func(r *Reader) ([]byte, error) {
		var b bytes.Buffer
		_, err := io.Copy(&b, r)
		return b.Bytes(), err
	})
	if !bytes.Equal(got, got2) || s != s2 || fmt.Sprint(err) != fmt.Sprint(err2) {
		panic(fmt.Sprintf("Read and WriteTo disagree: %d/%d bytes, sums %q/%q, errors %v / %v", len(got), len(got2), s, s2, err, err2))
	}
	return got, meta, s, err
}

func openWith(archive, key []byte, read func(*Reader) ([]byte, error)) ([]byte, Meta, string, error) {
	r, meta, err := NewReader(bytes.NewReader(archive), key)
	if err != nil {
		return nil, Meta{}, "", err
	}
	defer r.Close()
	got, err := read(r)
	return got, meta, r.Sum(), err
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestRoundTrip(t *testing.T) {
	key := testKey(1)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{42}},
		{"chunk-1 random", randomBytes(ChunkSize-1, 1)},
		{"chunk random", randomBytes(ChunkSize, 2)},
		{"3 MiB random", randomBytes(3<<20+17, 3)},
		{"5 MiB text", textBytes(5<<20, 4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			archive, res := seal(t, key, testMeta, tc.data)
			if res.SHA256 != sum(tc.data) || res.TarBytes != int64(len(tc.data)) || res.StoredBytes != int64(len(archive)) {
				t.Fatalf("result %+v; want sum %s, %d tar bytes, %d stored", res, sum(tc.data), len(tc.data), len(archive))
			}
			got, meta, s, err := open(archive, key)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Fatalf("read %d bytes, they differ from the %d written", len(got), len(tc.data))
			}
			if s != res.SHA256 {
				t.Fatalf("Sum %s, want %s", s, res.SHA256)
			}
			if mj, _ := json.Marshal(meta); string(mj) != string(must(json.Marshal(testMeta))) {
				t.Fatalf("meta %s", mj)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestTextIsCompressed(t *testing.T) {
	data := textBytes(4<<20, 9)
	archive, _ := seal(t, testKey(1), testMeta, data)
	if len(archive) > len(data)/3 {
		t.Fatalf("4 MiB of text stored in %d bytes: not compressed", len(archive))
	}
	// Random data grows by the format's overhead only.
	data = randomBytes(4<<20, 9)
	archive, _ = seal(t, testKey(1), testMeta, data)
	if over := len(archive) - len(data); over > 4<<10+len(data)/ChunkSize*tagSize+1024 {
		t.Fatalf("4 MiB of random data stored with %d bytes of overhead", over)
	}
}

func TestSumBeforeEOF(t *testing.T) {
	archive, _ := seal(t, testKey(1), testMeta, randomBytes(1<<20, 1))
	r, _, err := NewReader(bytes.NewReader(archive), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if r.Sum() != "" {
		t.Fatal("Sum before EOF")
	}
}

func TestWrongKey(t *testing.T) {
	archive, _ := seal(t, testKey(1), testMeta, textBytes(100000, 1))
	_, _, err := NewReader(bytes.NewReader(archive), testKey(2))
	if !errors.Is(err, ErrWrongKey) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong key: %v", err)
	}
	t.Log(err)
	if _, _, err := NewReader(bytes.NewReader(archive), []byte("short")); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := NewWriter(io.Discard, []byte("short"), testMeta); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
}

func TestDeriveKey(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	k := must(DeriveKey(secret))
	want := must(hkdf.Key(sha256.New, secret, nil, "moor backup v1", 32))
	if !bytes.Equal(k, want) || bytes.Equal(k, secret) {
		t.Fatal("backup key is not HKDF-SHA256(secret, info \"moor backup v1\")")
	}
	if _, err := DeriveKey(secret[:31]); !errors.Is(err, domain.ErrInvalid) {
		t.Fatal(err)
	}
}

// layout of an archive made by seal, for the tamper tests.
type layout struct {
	headerEnd int   // first byte of chunk 0
	chunks    []int // offset of each chunk
}

func parseLayout(t *testing.T, archive []byte) layout {
	t.Helper()
	mlen := int(binary.BigEndian.Uint32(archive[84:88]))
	l := layout{headerEnd: 88 + mlen + 32}
	for off := l.headerEnd; off < len(archive); off += ChunkSize + tagSize {
		l.chunks = append(l.chunks, off)
	}
	return l
}

func TestTamper(t *testing.T) {
	key := testKey(1)
	data := randomBytes(5*ChunkSize+1000, 5) // stored raw by zstd: 6 chunks
	archive, _ := seal(t, key, testMeta, data)
	l := parseLayout(t, archive)
	if len(l.chunks) < 5 {
		t.Fatalf("%d chunks", len(l.chunks))
	}
	mlen := l.headerEnd - 120
	cases := []struct {
		name string
		at   int
		want error
	}{
		{"magic", 0, ErrCorrupt},
		{"version", 7, ErrCorrupt},
		{"chunk size", 10, ErrCorrupt},
		{"salt", 20, ErrWrongKey},
		{"nonce prefix", 47, ErrCorrupt},
		{"key check", 60, ErrWrongKey},
		{"meta length", 87, ErrCorrupt},
		{"meta", 88 + mlen/2, ErrCorrupt},
		{"header mac", 88 + mlen + 5, ErrCorrupt},
		{"chunk 0 first byte", l.chunks[0], ErrCorrupt},
		{"chunk 2 middle", l.chunks[2] + ChunkSize/2, ErrCorrupt},
		{"chunk 3 tag", l.chunks[4] - 1, ErrCorrupt},
		{"last chunk", len(archive) - 20, ErrCorrupt},
		{"last byte", len(archive) - 1, ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Clone(archive)
			bad[tc.at] ^= 0x01
			err := openBad(t, bad, key, data, tc.want)
			if tc.want == ErrWrongKey && errors.Is(err, ErrCorrupt) {
				t.Fatalf("both wrong key and corrupt: %v", err)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	key := testKey(1)
	data := randomBytes(5*ChunkSize+1000, 6)
	archive, _ := seal(t, key, testMeta, data)
	l := parseLayout(t, archive)
	for _, cut := range []int{0, 5, 60, 100, l.headerEnd - 1, l.headerEnd, l.headerEnd + 10,
		l.chunks[1], l.chunks[1] + 1, l.chunks[3] - 1, l.chunks[len(l.chunks)-1], len(archive) - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			err := openBad(t, archive[:cut], key, data, ErrCorrupt)
			if !strings.Contains(err.Error(), "truncated") {
				t.Errorf("cut at %d of %d, not said truncated: %v", cut, len(archive), err)
			}
		})
	}
}

func TestReorderDropRepeatAppend(t *testing.T) {
	key := testKey(1)
	data := randomBytes(5*ChunkSize+1000, 7)
	archive, _ := seal(t, key, testMeta, data)
	l := parseLayout(t, archive)
	c := func(i int) []byte { return archive[l.chunks[i] : l.chunks[i]+ChunkSize+tagSize] }
	head := archive[:l.headerEnd]
	tail := archive[l.chunks[3]:]
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, bad := range map[string][]byte{
		"swap 1 and 2":      join(head, c(0), c(2), c(1), tail),
		"drop 1":            join(head, c(0), c(2), tail),
		"repeat 1":          join(head, c(0), c(1), c(1), c(2), tail),
		"append a byte":     join(archive, []byte{0}),
		"append a chunk":    join(archive, c(1)),
		"header of another": join(must2(seal(t, key, testMeta, data))[:l.headerEnd], archive[l.headerEnd:]),
	} {
		t.Run(name, func(t *testing.T) {
			openBad(t, bad, key, data, ErrCorrupt)
		})
	}
}

// openBad reads a damaged archive, whose original content is data: it must
// fail with want, having returned only bytes of data.
func openBad(t *testing.T, bad, key, data []byte, want error) error {
	t.Helper()
	got, _, _, err := open(bad, key)
	if !errors.Is(err, want) {
		t.Fatalf("%v, want %v", err, want)
	}
	if !bytes.HasPrefix(data, got) {
		t.Fatal("bytes returned before the error are not the archive's")
	}
	t.Log(err)
	return err
}

func must2(b []byte, _ Result) []byte { return b }

// TestChunkLayerReleasesNoBadChunk checks at the chunk layer that the
// plaintext handed on stops exactly where the first bad chunk begins, and that
// a stream ending exactly on a chunk boundary works.
func TestChunkLayerReleasesNoBadChunk(t *testing.T) {
	aeadKey := bytes.Repeat([]byte{3}, 32)
	payload := randomBytes(4*ChunkSize, 8) // a multiple of the chunk size: the last chunk is full
	mk := func() []byte {
		var out bytes.Buffer
		cw := newChunkWriter(&out, must(newGCM(aeadKey)), make([]byte, prefixSize))
		if _, err := cw.Write(payload); err != nil {
			t.Fatal(err)
		}
		if err := cw.seal(true); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	read := func(stream []byte) ([]byte, error) {
		return io.ReadAll(newChunkReader(bytes.NewReader(stream), must(newGCM(aeadKey)), make([]byte, prefixSize)))
	}
	stream := mk()
	if len(stream) != 4*(ChunkSize+tagSize) {
		t.Fatalf("%d bytes: the full last chunk was not sealed as final", len(stream))
	}
	got, err := read(stream)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	for bad := range 4 {
		s := bytes.Clone(stream)
		s[bad*(ChunkSize+tagSize)+100] ^= 0x80
		got, err := read(s)
		if !errors.Is(err, ErrCorrupt) || len(got) != bad*ChunkSize {
			t.Fatalf("chunk %d damaged: released %d bytes (want %d), %v", bad, len(got), bad*ChunkSize, err)
		}
	}
	got, err = read(stream[:3*(ChunkSize+tagSize)])
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") || len(got) != 2*ChunkSize {
		t.Fatalf("cut at a boundary: released %d bytes, %v", len(got), err)
	}
}

// TestSpec decrypts an archive with nothing but the package documentation's
// description, independently of Reader.
func TestSpec(t *testing.T) {
	secret := bytes.Repeat([]byte{9}, 32)
	data := textBytes(300000, 3)
	archive, res := seal(t, must(DeriveKey(secret)), testMeta, data)

	K := must(hkdf.Key(sha256.New, secret, nil, "moor backup v1", 32))
	if string(archive[:7]) != "MOORBK1" || archive[7] != 1 || binary.BigEndian.Uint32(archive[8:12]) != 65536 {
		t.Fatal("magic, version or chunk size")
	}
	salt, prefix, check := archive[12:44], archive[44:52], archive[52:84]
	prk := must(hkdf.Extract(sha256.New, K, salt))
	C := must(hkdf.Expand(sha256.New, prk, "moor backup v1 key check", 32))
	H := must(hkdf.Expand(sha256.New, prk, "moor backup v1 header", 32))
	P := must(hkdf.Expand(sha256.New, prk, "moor backup v1 payload", 32))
	if !bytes.Equal(C, check) {
		t.Fatal("key check")
	}
	n := int(binary.BigEndian.Uint32(archive[84:88]))
	mac := hmac.New(sha256.New, H)
	mac.Write(archive[:88+n])
	if !bytes.Equal(mac.Sum(nil), archive[88+n:120+n]) {
		t.Fatal("header mac")
	}
	var meta Meta
	if err := json.Unmarshal(archive[88:88+n], &meta); err != nil || meta.Container != "blog" {
		t.Fatalf("meta %v %+v", err, meta)
	}
	block := must(aes.NewCipher(P))
	gcm := must(cipher.NewGCM(block))
	var payload []byte
	rest := archive[120+n:]
	for i := uint32(0); len(rest) > 0; i++ {
		size := min(len(rest), 65536+16)
		last := size == len(rest)
		nonce := binary.BigEndian.AppendUint32(bytes.Clone(prefix), i)
		f := []byte{0}
		if last {
			f[0] = 1
		}
		pt, err := gcm.Open(nil, nonce, rest[:size], f)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		payload = append(payload, pt...)
		rest = rest[size:]
	}
	dec := must(zstd.NewReader(nil))
	defer dec.Close()
	tarStream, err := dec.DecodeAll(payload, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tarStream, data) || sum(tarStream) != res.SHA256 {
		t.Fatal("content differs")
	}
}

func TestWriterErrors(t *testing.T) {
	// A failing destination: the error is the destination's, sticky, and Close reports it.
	boom := errors.New("disk full")
	w, err := NewWriter(&failAfter{n: 100000, err: boom}, testKey(1), testMeta)
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(1<<20, 1)
	var werr error
	for p := data; len(p) > 0 && werr == nil; p = p[min(len(p), 4096):] {
		_, werr = w.Write(p[:min(len(p), 4096)])
	}
	_, cerr := w.Close()
	if !errors.Is(cerr, boom) {
		t.Fatalf("write %v, close %v", werr, cerr)
	}
	if _, err := NewWriter(&failAfter{n: 10, err: boom}, testKey(1), testMeta); !errors.Is(err, boom) {
		t.Fatalf("header write: %v", err)
	}
	big := testMeta
	big.Labels = map[string]string{"x": strings.Repeat("x", 70000)}
	if _, err := NewWriter(io.Discard, testKey(1), big); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("big meta: %v", err)
	}
}

type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

func TestReaderPassesReadErrors(t *testing.T) {
	archive, _ := seal(t, testKey(1), testMeta, randomBytes(1<<20, 1))
	boom := errors.New("connection reset")
	r, _, err := NewReader(io.MultiReader(bytes.NewReader(archive[:300000]), errReader{boom}), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = io.ReadAll(r)
	if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("%v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
