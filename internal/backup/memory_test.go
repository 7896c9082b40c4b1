package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// source is an endless stream of tar-like data made on the fly: runs of
// random bytes (incompressible) and of text, so that neither the test's input
// nor its output occupies memory.
type source struct {
	rnd  *rand.ChaCha8
	text []byte
	left int64
	i    int
}

func newSource(n int64) *source {
	return &source{rnd: rand.NewChaCha8([32]byte{1}), text: textBytes(1<<20, 1), left: n}
}

func (s *source) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.left, 32<<10)]
	if s.i++; s.i%2 == 0 {
		_, _ = s.rnd.Read(p)
	} else {
		off := s.rnd.Uint64() % uint64(len(s.text)-len(p))
		copy(p, s.text[off:])
	}
	s.left -= int64(len(p))
	return len(p), nil
}

// peakHeap samples the heap in use until stop is called and returns the peak.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// TestBoundedMemory streams 200 MiB through a Writer into a Reader (over a
// pipe, so nothing is held whole) and checks the heap stays bounded by the
// chunk and zstd buffers, not the stream's size.
func TestBoundedMemory(t *testing.T) {
	size := int64(200 << 20)
	if raceEnabled || testing.Short() {
		size = 24 << 20 // the race detector makes this slow; the bound is the same
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := peakHeap()

	key := testKey(1)
	pr, pw := io.Pipe()
	type wres struct {
		res Result
		err error
	}
	wc := make(chan wres, 1)
	go func() {
		w, err := NewWriter(pw, key, testMeta)
		if err == nil {
			_, err = io.Copy(w, newSource(size))
		}
		var res Result
		if err == nil {
			res, err = w.Close()
		}
		pw.CloseWithError(err)
		wc <- wres{res, err}
	}()
	r, _, err := NewReader(pr, key)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	w := <-wc
	if w.err != nil {
		t.Fatal(w.err)
	}
	peak := stop()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	if n != size || w.res.TarBytes != size || r.Sum() != w.res.SHA256 || hex.EncodeToString(h.Sum(nil)) != w.res.SHA256 {
		t.Fatalf("read %d of %d bytes; sums %s %s", n, size, r.Sum(), w.res.SHA256)
	}
	grown := int64(peak) - int64(before.HeapInuse)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MiB through writer and reader (stored %d MiB): peak heap %.1f MiB above the start, %.1f MiB allocated in all",
		size>>20, w.res.StoredBytes>>20, float64(grown)/(1<<20), float64(allocated)/(1<<20))
	if grown > 48<<20 {
		t.Fatalf("peak heap grew by %d MiB", grown>>20)
	}
	if !raceEnabled && allocated > uint64(size)/4+64<<20 {
		t.Fatalf("allocated %d MiB for a %d MiB stream: buffers are not reused", allocated>>20, size>>20)
	}
}
