// Package testenv holds helpers for tests that need real outside services:
// the Docker engine and moor's own test image.
//
// It talks to the Docker engine through its HTTP API with the standard
// library only (the Docker SDK stays inside internal/engine).
//
// Rule for every helper here: when the service is missing, a test is skipped
// on a developer's machine but fails when the CI environment variable is set,
// so CI can never go green by skipping.
package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestImageName is the image TestImage builds: a FROM scratch image around
// the static binary of testdata/images/testapp.
const TestImageName = "moor-testapp:latest"

// TestImageGreeting starts the line the test image logs to stdout when it
// starts; it logs "testapp: ready" to stderr.
const TestImageGreeting = "testapp: hello from moor's test image"

// TestLabel is the label every Docker object a test creates carries, so a
// leftover can be found and removed: docker ps -af label=moor.test=1.
const TestLabel = "moor.test"

// hashLabel holds the hash of the test image's sources on the image, so an
// up-to-date image is not rebuilt.
const hashLabel = "moor.test.hash"

// testappDir is the test image's source folder, relative to the module root.
const testappDir = "testdata/images/testapp"

// InCI reports whether the tests run under CI (the CI environment variable is
// set and not "false" or "0"): there a missing service fails a test.
func InCI() bool {
	v := strings.TrimSpace(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}

// Unavailable stops t because a service it needs is missing: a failure under
// CI, a skip elsewhere.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI is set, so this is a failure, not a skip)", msg)
	}
	t.Skip(msg)
}

var dockerPing = sync.OnceValue(func() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return newDockerAPI().ping(ctx)
})

// RequireDocker skips t (fails it under CI) when the Docker engine named by
// DOCKER_HOST (default /var/run/docker.sock) does not answer a ping. The
// answer is cached for the test process.
func RequireDocker(t testing.TB) {
	t.Helper()
	Deadline(t)
	if err := dockerPing(); err != nil {
		Unavailable(t, "Docker engine unreachable: %v", err)
	}
}

var testImage struct {
	once sync.Once
	err  error
}

// TestImage returns TestImageName after making sure the image exists and is
// built from the current sources of testdata/images/testapp: it is built at
// most once per test process, and not at all when the image already carries
// the hash of those sources. It calls RequireDocker first; a failed build
// fails t.
func TestImage(t testing.TB) string {
	t.Helper()
	RequireDocker(t)
	testImage.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, testImage.err = BuildTestImage(ctx, false)
	})
	if testImage.err != nil {
		t.Fatalf("test image: %v", testImage.err)
	}
	return TestImageName
}

// BuildTestImage builds TestImageName from testdata/images/testapp: a static
// Go binary (go build, CGO_ENABLED=0, for the engine's architecture) copied
// into a FROM scratch image labelled moor.test=1. Unless force is set it does
// nothing when the image exists with the hash of the current sources. It
// reports whether it built. Concurrent callers, in this process or others on
// the machine, are serialised by a lock file.
func BuildTestImage(ctx context.Context, force bool) (built bool, err error) {
	root, err := moduleRoot()
	if err != nil {
		return false, err
	}
	api := newDockerAPI()
	if err := api.ping(ctx); err != nil {
		return false, fmt.Errorf("docker engine unreachable: %w", err)
	}
	arch, err := api.arch(ctx)
	if err != nil {
		return false, err
	}
	src := filepath.Join(root, testappDir)
	hash, err := sourceHash(src, arch)
	if err != nil {
		return false, err
	}

	unlock, err := lockFile(filepath.Join(os.TempDir(), "moor-testimage.lock"))
	if err != nil {
		return false, err
	}
	defer unlock()

	oldID, labels, found, err := api.imageLabels(ctx, TestImageName)
	if err != nil {
		return false, err
	}
	if !force && found && labels[hashLabel] == hash {
		return false, nil
	}

	dir, err := os.MkdirTemp("", "moor-testapp-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "testapp")
	goCmd := goTool()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./"+testappDir)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return false, fmt.Errorf("go build %s: %v\n%s", testappDir, err, out)
	}

	dockerfile, err := os.ReadFile(filepath.Join(src, "Dockerfile"))
	if err != nil {
		return false, err
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return false, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, dockerfile}, {"testapp", 0o755, binary}} {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return false, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return false, err
		}
	}
	if err := tw.Close(); err != nil {
		return false, err
	}
	if err := api.build(ctx, &buf, TestImageName, map[string]string{TestLabel: "1", hashLabel: hash}); err != nil {
		return false, fmt.Errorf("docker build %s: %w", TestImageName, err)
	}
	if found {
		// The previous build is left untagged: remove it unless a container
		// still uses it (or it is the same image).
		if newID, _, _, err := api.imageLabels(ctx, TestImageName); err == nil && newID != oldID {
			api.removeImage(ctx, oldID)
		}
	}
	return true, nil
}

// sourceHash hashes the test image's sources with what else shapes the
// binary: the Go version and the target architecture.
func sourceHash(dir, arch string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "go=%s arch=%s\n", runtime.Version(), arch)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", n, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// moduleRoot finds the root of the moor module: from this file's path when
// the build kept it, else from `go env GOMOD` in the working directory.
func moduleRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if _, err := os.Stat(filepath.Join(root, testappDir, "main.go")); err == nil {
			return filepath.Clean(root), nil
		}
	}
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("cannot find the moor module root: run from inside the module")
	}
	return filepath.Dir(mod), nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := runtime.GOROOT(); root != "" { //nolint:staticcheck // a fallback only
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// dockerEndpoint is where the engine listens: DOCKER_HOST (unix:// or
// tcp://) or /var/run/docker.sock.
func dockerEndpoint() (network, address string, err error) {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		return "unix", "/var/run/docker.sock", nil
	}
	u, err := url.Parse(host)
	if err != nil {
		return "", "", fmt.Errorf("DOCKER_HOST: %w", err)
	}
	switch u.Scheme {
	case "unix":
		return "unix", u.Path, nil
	case "tcp", "http":
		return "tcp", u.Host, nil
	}
	return "", "", fmt.Errorf("DOCKER_HOST %q: only unix:// and tcp:// (without TLS) are supported by testenv", host)
}

// dockerAPI is a minimal client of the engine's HTTP API.
type dockerAPI struct {
	http *http.Client
	err  error // from dockerEndpoint
}

func newDockerAPI() *dockerAPI {
	network, address, err := dockerEndpoint()
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &dockerAPI{
		err: err,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, address)
			},
			MaxIdleConns:    2,
			IdleConnTimeout: 10 * time.Second,
		}},
	}
}

// apiVersion is the API version testenv asks for: Docker Engine 20.10's, so
// any engine from 20.10 on answers it.
const apiVersion = "/v1.41"

func (a *dockerAPI) do(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	if a.err != nil {
		return nil, a.err
	}
	u := "http://docker" + path
	if path != "/_ping" {
		u = "http://docker" + apiVersion + path
	}
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct{ Message string }
		if json.Unmarshal(msg, &e) == nil && e.Message != "" {
			msg = []byte(e.Message)
		}
		return nil, &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(msg))}
	}
	return resp, nil
}

type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("docker: %d: %s", e.Status, e.Message) }

func isStatus(err error, status int) bool {
	var e *apiError
	return errors.As(err, &e) && e.Status == status
}

// getJSON GETs path and decodes the JSON answer into v.
func (a *dockerAPI) getJSON(ctx context.Context, path string, v any) error {
	resp, err := a.do(ctx, http.MethodGet, path, nil, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func (a *dockerAPI) ping(ctx context.Context) error {
	resp, err := a.do(ctx, http.MethodGet, "/_ping", nil, nil, "")
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// arch is the engine's architecture in GOARCH terms ("amd64", "arm64").
func (a *dockerAPI) arch(ctx context.Context) (string, error) {
	var v struct{ Os, Arch string }
	if err := a.getJSON(ctx, "/version", &v); err != nil {
		return "", fmt.Errorf("docker version: %w", err)
	}
	if v.Os != "" && v.Os != "linux" {
		return "", fmt.Errorf("docker engine runs %s containers; the test image needs linux", v.Os)
	}
	if v.Arch == "" {
		return runtime.GOARCH, nil
	}
	return v.Arch, nil
}

// imageLabels returns the ID and labels of a local image, and whether it
// exists.
func (a *dockerAPI) imageLabels(ctx context.Context, name string) (id string, labels map[string]string, found bool, err error) {
	var v struct {
		ID     string `json:"Id"`
		Config struct{ Labels map[string]string }
	}
	err = a.getJSON(ctx, "/images/"+name+"/json", &v)
	if isStatus(err, http.StatusNotFound) {
		return "", nil, false, nil
	}
	if err != nil {
		return "", nil, false, err
	}
	return v.ID, v.Config.Labels, true, nil
}

// removeImage removes an image, best effort (not forced: an image a
// container uses stays).
func (a *dockerAPI) removeImage(ctx context.Context, id string) {
	resp, err := a.do(ctx, http.MethodDelete, "/images/"+id, nil, nil, "")
	if err == nil {
		resp.Body.Close()
	}
}

// build runs the classic builder on a tar context and tags the result.
func (a *dockerAPI) build(ctx context.Context, tarContext io.Reader, tag string, labels map[string]string) error {
	lb, err := json.Marshal(labels)
	if err != nil {
		return err
	}
	q := url.Values{"t": {tag}, "labels": {string(lb)}, "rm": {"1"}, "forcerm": {"1"}}
	resp, err := a.do(ctx, http.MethodPost, "/build", q, tarContext, "application/x-tar")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readJSONStream(resp.Body, nil)
}

// readJSONStream reads a JSON message stream (build, pull, push, load) to its
// end and returns the error it reports, if any. Each "stream" text goes to
// out when out is not nil.
func readJSONStream(r io.Reader, out io.Writer) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		if out != nil && m.Stream != "" {
			io.WriteString(out, m.Stream)
		}
	}
}
