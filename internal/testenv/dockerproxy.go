package testenv

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// DockerProxy is a unix-socket proxy in front of the Docker engine that a
// test controls, to make the engine unreachable for the code under test
// without touching the daemon: Cut drops every connection and refuses new
// ones, Restore lets them through again.
type DockerProxy struct {
	path string
	ln   net.Listener
	wg   sync.WaitGroup

	mu     sync.Mutex
	cut    bool
	closed bool
	conns  map[net.Conn]struct{}
}

// StartDockerProxy starts a proxy to the engine of DOCKER_HOST (default
// /var/run/docker.sock) on a unix socket in a temporary folder; it is closed
// on t.Cleanup. It calls RequireDocker first.
func StartDockerProxy(t testing.TB) *DockerProxy {
	t.Helper()
	RequireDocker(t)
	network, address, err := dockerEndpoint()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "docker.sock")
	if len(path) > 100 { // sun_path holds 108 bytes
		dir, err = os.MkdirTemp("", "dp")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		path = filepath.Join(dir, "docker.sock")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("docker proxy: %v", err)
	}
	p := &DockerProxy{path: path, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve(network, address)
	t.Cleanup(p.close)
	return p
}

// Host is the proxy's address in DOCKER_HOST form: "unix:///path".
func (p *DockerProxy) Host() string { return "unix://" + p.path }

// Cut closes every live connection through the proxy, and makes it close new
// ones as soon as they are accepted, until Restore: to a client the engine is
// gone (requests fail with EOF or a reset), yet the daemon keeps running.
func (p *DockerProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore undoes Cut: new connections reach the engine again.
func (p *DockerProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

func (p *DockerProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

// track registers c unless the proxy is cut or closed, in which case it
// closes c and reports false.
func (p *DockerProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *DockerProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *DockerProxy) serve(network, address string) {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c, network, address)
		}()
	}
}

func (p *DockerProxy) pipe(down net.Conn, network, address string) {
	defer p.untrack(down)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	up, err := (&net.Dialer{}).DialContext(ctx, network, address)
	cancel()
	if err != nil {
		return
	}
	if !p.track(up) {
		return
	}
	defer p.untrack(up)

	// When either direction ends, end both, as the engine's own
	// connection would.
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(up, down)
	go cp(down, up)
	<-done
	down.Close()
	up.Close()
	<-done
}
