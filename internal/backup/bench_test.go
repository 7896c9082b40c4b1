package backup

import (
	"bytes"
	"io"
	"runtime"
	"sync"
	"testing"
)

const benchSize = 256 << 20

var benchData = struct {
	sync.Mutex
	m map[string][]byte
}{m: map[string][]byte{}}

// benchInput returns 256 MiB of random or text data, made once per process.
func benchInput(kind string) []byte {
	benchData.Lock()
	defer benchData.Unlock()
	if b, ok := benchData.m[kind]; ok {
		return b
	}
	var b []byte
	if kind == "random" {
		b = randomBytes(benchSize, 42)
	} else {
		b = textBytes(benchSize, 42)
	}
	benchData.m[kind] = b
	return b
}

// BenchmarkWrite measures tar stream -> archive (hash, zstd, AES-GCM) into io.Discard.
func BenchmarkWrite(b *testing.B) {
	for _, kind := range []string{"random", "text"} {
		b.Run(kind, func(b *testing.B) {
			data := benchInput(kind)
			key := testKey(1)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var stored int64
			base := heapInuse()
			stop := peakHeap()
			for b.Loop() {
				w, err := NewWriter(io.Discard, key, testMeta)
				if err != nil {
					b.Fatal(err)
				}
				// 32 KiB writes, as io.Copy makes them from an HTTP response body.
				if _, err := io.CopyBuffer(w, struct{ io.Reader }{bytes.NewReader(data)}, make([]byte, 32<<10)); err != nil {
					b.Fatal(err)
				}
				res, err := w.Close()
				if err != nil {
					b.Fatal(err)
				}
				stored = res.StoredBytes
			}
			b.ReportMetric(float64(stored)/float64(len(data)), "stored/in")
			b.ReportMetric(float64(stop()-base)/(1<<20), "peak-heap-MiB")
		})
	}
}

// BenchmarkRead measures archive -> tar stream (AES-GCM, zstd, hash) into io.Discard.
func BenchmarkRead(b *testing.B) {
	for _, kind := range []string{"random", "text"} {
		b.Run(kind, func(b *testing.B) {
			data := benchInput(kind)
			key := testKey(1)
			archive, res := seal(b, key, testMeta, data)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			base := heapInuse()
			stop := peakHeap()
			for b.Loop() {
				r, _, err := NewReader(bytes.NewReader(archive), key)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
				r.Close()
				if r.Sum() != res.SHA256 {
					b.Fatal("sum")
				}
			}
			b.ReportMetric(float64(stop()-base)/(1<<20), "peak-heap-MiB")
		})
	}
}

// heapInuse returns the heap in use after a collection: the benchmark's input
// and, for reads, the archive, which stay in the heap throughout.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
