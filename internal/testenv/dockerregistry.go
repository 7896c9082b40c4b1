package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Registry is a minimal image registry (the read side of the OCI
// distribution API) served from memory on 127.0.0.1, so tests can make the
// Docker engine really pull: progress messages, a missing tag. The engine
// allows plain HTTP to loopback registries without configuration.
type Registry struct {
	addr string
	srv  *http.Server

	requests atomic.Int64

	mu        sync.Mutex
	blobs     map[string][]byte   // digest -> content
	manifests map[string]manifest // "repo:tag" and "repo@digest"
	held      chan struct{}       // while set, blob downloads stop halfway until it closes
}

// HoldBlobs makes blob downloads stop halfway, so a pull stays in progress
// with part of its bytes in (tests of progress reporting); release lets
// them finish. Release is safe to call more than once.
func (r *Registry) HoldBlobs() (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.held = ch
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			if r.held == ch {
				r.held = nil
			}
			r.mu.Unlock()
			close(ch)
		})
	}
}

type manifest struct {
	mediaType string
	digest    string
	body      []byte
}

// StartRegistry starts a registry on a free loopback port; it stops on
// t.Cleanup.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	Deadline(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	r := &Registry{
		addr:      ln.Addr().String(),
		blobs:     map[string][]byte{},
		manifests: map[string]manifest{},
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}

// Addr is the registry's "127.0.0.1:port", the prefix of its image names.
func (r *Registry) Addr() string { return r.addr }

// Requests counts the requests the registry got, pings included.
func (r *Registry) Requests() int64 { return r.requests.Load() }

// PushImage copies the local image (for example TestImage's) into the
// registry as repoTag ("name:tag", name may have slashes) and returns the
// reference to pull: "127.0.0.1:port/name:tag". The image is read with the
// engine's save endpoint and gets one more layer, 256 KiB of random bytes,
// so that it is new to the engine and a pull really downloads; the layers
// are served as gzip streams (stored, not compressed) under a Docker schema
// 2 manifest. The pulled image keeps the source image's labels.
func (r *Registry) PushImage(t testing.TB, image, repoTag string) string {
	t.Helper()
	repo, tag, ok := strings.Cut(repoTag, ":")
	if !ok || repo == "" || tag == "" {
		t.Fatalf("registry: %q is not name:tag", repoTag)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	files, err := saveImage(ctx, image)
	if err != nil {
		t.Fatalf("registry: save %s: %v", image, err)
	}
	var saved []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(files["manifest.json"], &saved); err != nil || len(saved) != 1 {
		t.Fatalf("registry: save %s: unexpected manifest.json (%v)", image, err)
	}

	type descriptor struct {
		MediaType string `json:"mediaType"`
		Size      int    `json:"size"`
		Digest    string `json:"digest"`
	}
	m := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{SchemaVersion: 2, MediaType: "application/vnd.docker.distribution.manifest.v2+json"}

	config, ok := files[saved[0].Config]
	if !ok {
		t.Fatalf("registry: save %s: no config %s", image, saved[0].Config)
	}
	var layers [][]byte
	for _, l := range saved[0].Layers {
		data, ok := files[l]
		if !ok {
			t.Fatalf("registry: save %s: no layer %s", image, l)
		}
		layers = append(layers, data)
	}
	// A layer of random bytes on top makes the image new to the engine, so a
	// pull downloads (a known image ID would only be tagged).
	extra, err := randomLayer(256 << 10)
	if err != nil {
		t.Fatal(err)
	}
	layers = append(layers, extra)
	if config, err = addLayerToConfig(config, digest(extra)); err != nil {
		t.Fatalf("registry: config of %s: %v", image, err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	m.Config = descriptor{"application/vnd.docker.container.image.v1+json", len(config), r.addBlob(config)}
	for _, data := range layers {
		// gzip without compression: valid for the engine, and cheap (the
		// test binary may run under the race detector).
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.NoCompression)
		zw.Write(data)
		zw.Close()
		m.Layers = append(m.Layers, descriptor{"application/vnd.docker.image.rootfs.diff.tar.gzip", gz.Len(), r.addBlob(gz.Bytes())})
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	man := manifest{mediaType: m.MediaType, digest: digest(body), body: body}
	r.manifests[repo+":"+tag] = man
	r.manifests[repo+"@"+man.digest] = man
	return r.addr + "/" + repo + ":" + tag
}

// randomLayer is a layer tar holding one file of n random bytes.
func randomLayer(n int) ([]byte, error) {
	data := make([]byte, n)
	rand.Read(data)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	name := "moor-registry-" + hex.EncodeToString(data[:8])
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(n), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	tw.Write(data)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addLayerToConfig appends a layer (by the digest of its uncompressed tar)
// to an image config, with a history entry for it.
func addLayerToConfig(config []byte, diffID string) ([]byte, error) {
	var c map[string]any
	if err := json.Unmarshal(config, &c); err != nil {
		return nil, err
	}
	rootfs, _ := c["rootfs"].(map[string]any)
	if rootfs == nil {
		return nil, fmt.Errorf("no rootfs")
	}
	ids, _ := rootfs["diff_ids"].([]any)
	rootfs["diff_ids"] = append(ids, diffID)
	history, _ := c["history"].([]any)
	c["history"] = append(history, map[string]any{
		"created":    time.Now().UTC().Format(time.RFC3339Nano),
		"created_by": "moor testenv registry: random layer",
	})
	return json.Marshal(c)
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (r *Registry) addBlob(b []byte) string {
	d := digest(b)
	r.blobs[d] = b
	return d
}

// saveImage reads `docker save image` into memory: file name -> content.
func saveImage(ctx context.Context, image string) (map[string][]byte, error) {
	resp, err := newDockerAPI().do(ctx, http.MethodGet, "/images/"+image+"/get", nil, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(resp.Body)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[path.Clean(hdr.Name)] = data
	}
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		registryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "this registry is read-only")
		return
	}
	p := strings.TrimPrefix(req.URL.Path, "/v2/")
	if p == req.URL.Path {
		http.NotFound(w, req)
		return
	}
	if p == "" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
		return
	}
	if i := strings.LastIndex(p, "/manifests/"); i > 0 {
		repo, ref := p[:i], p[i+len("/manifests/"):]
		key := repo + ":" + ref
		if strings.HasPrefix(ref, "sha256:") {
			key = repo + "@" + ref
		}
		r.mu.Lock()
		m, ok := r.manifests[key]
		r.mu.Unlock()
		if !ok {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", m.digest)
		w.Header().Set("Content-Length", strconv.Itoa(len(m.body)))
		if req.Method == http.MethodGet {
			w.Write(m.body)
		}
		return
	}
	if i := strings.LastIndex(p, "/blobs/"); i > 0 {
		d := p[i+len("/blobs/"):]
		r.mu.Lock()
		b, ok := r.blobs[d]
		held := r.held
		r.mu.Unlock()
		if !ok {
			registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Docker-Content-Digest", d)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if req.Method != http.MethodGet {
			return
		}
		if held != nil && len(b) > 4096 {
			half := len(b) / 2
			w.Write(b[:half])
			http.NewResponseController(w).Flush()
			select {
			case <-held:
			case <-req.Context().Done():
				return
			}
			b = b[half:]
		}
		w.Write(b)
		return
	}
	registryError(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
}

func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}
