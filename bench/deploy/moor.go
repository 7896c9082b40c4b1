//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// moorEnv is the environment of every moor process of the run: the
// caller's, less any MOOR_* setting, plus this run's.
func moorEnv(o options, extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MOOR_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"MOOR_DATABASE_URL="+o.dbURL,
		"MOOR_NETWORK="+o.network,
		"MOOR_DATA_DIR="+filepath.Join(o.workDir, "moor-data"),
		"MOOR_LOG_LEVEL=warn",
		"MOOR_PROVIDER_TOKEN="+randHex(16),
	)
	return append(env, extra...) // later entries win
}

func runCmd(ctx context.Context, env []string, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// moorProc is one `moor serve`.
type moorProc struct {
	cmd     *exec.Cmd
	url     string
	logPath string
	logFile *os.File
	done    chan struct{}
	once    sync.Once
}

// startMoor starts `moor serve` on free ports and waits until it is ready
// (database and Docker reachable).
func startMoor(ctx context.Context, o options, logName string, extra []string) (*moorProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dnsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	env := moorEnv(o, append([]string{
		fmt.Sprintf("MOOR_HTTP_ADDR=127.0.0.1:%d", port),
		fmt.Sprintf("MOOR_DNS_ADDR=127.0.0.1:%d", dnsPort),
	}, extra...))
	logPath := filepath.Join(o.workDir, logName)
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	m := &moorProc{url: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: logPath, logFile: f, done: make(chan struct{})}
	m.cmd = exec.Command(o.moorBin, "serve")
	m.cmd.Env = env
	m.cmd.Stdout, m.cmd.Stderr = f, f
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				log.Printf("moor is ready on %s (pid %d, log %s)", m.url, m.cmd.Process.Pid, logPath)
				return m, nil
			}
		}
		select {
		case <-m.done:
			tailFile(logPath, 30)
			return nil, fmt.Errorf("moor serve exited early (log: %s)", logPath)
		case <-ctx.Done():
			m.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.stop()
			tailFile(logPath, 30)
			return nil, fmt.Errorf("moor did not get ready in 30s (log: %s)", logPath)
		}
	}
}

func (m *moorProc) pid() int { return m.cmd.Process.Pid }

// stop sends SIGTERM, then SIGKILL after 15 s.
func (m *moorProc) stop() {
	m.once.Do(func() {
		m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(15 * time.Second):
			m.cmd.Process.Kill()
			<-m.done
		}
		m.logFile.Close()
	})
}

func tailFile(path string, n int) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		log.Printf("  | %s", l)
	}
}

// apiClient calls moor's REST API with the admin key, over kept-alive
// connections.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

func newAPIClient(base, key string) *apiClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 200, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}
	return &apiClient{base: base, key: key, http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

func (a *apiClient) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

type apiContainer struct {
	Name         string `json:"name"`
	Status       string `json:"status"`
	StatusReason string `json:"status_reason"`
	InternalIP   string `json:"internal_ip"`
}

func (a *apiClient) get(ctx context.Context, name string) (apiContainer, int, error) {
	code, body, err := a.do(ctx, "GET", "/api/v1/containers/"+name, nil)
	var c apiContainer
	if err == nil && code == 200 {
		err = json.Unmarshal(body, &c)
	}
	return c, code, err
}

// create posts a testapp container; it expects 202.
func (a *apiClient) create(ctx context.Context, name string) error {
	code, body, err := a.do(ctx, "POST", "/api/v1/containers", map[string]string{"name": name, "type": "testapp"})
	if err != nil {
		return fmt.Errorf("POST %s: %w", name, err)
	}
	if code != http.StatusAccepted {
		return fmt.Errorf("POST %s: %d %s", name, code, strings.TrimSpace(string(body)))
	}
	return nil
}

func (a *apiClient) remove(ctx context.Context, name string) error {
	code, body, err := a.do(ctx, "DELETE", "/api/v1/containers/"+name, nil)
	if err != nil {
		return fmt.Errorf("DELETE %s: %w", name, err)
	}
	if code != http.StatusAccepted {
		return fmt.Errorf("DELETE %s: %d %s", name, code, strings.TrimSpace(string(body)))
	}
	return nil
}

// eventHub follows moor's events as the dashboard would: LISTEN on
// moor_events (the payload is the event's seq), then read the event's kind
// and container from the events table. The time of an event is when its
// notification arrived.
type eventHub struct {
	mu      sync.Mutex
	seen    map[string]map[string]time.Time // container name -> kind -> first arrival
	counts  map[string]int                  // kind -> events seen
	changed map[string]chan struct{}        // container name -> closed on news
	err     error
	cancel  context.CancelFunc
	done    chan struct{}
}

type notification struct {
	seq int64
	at  time.Time
}

func newEventHub() *eventHub {
	return &eventHub{
		seen: map[string]map[string]time.Time{}, counts: map[string]int{},
		changed: map[string]chan struct{}{}, done: make(chan struct{}),
	}
}

// listen starts following; it returns once LISTEN is in place.
func (h *eventHub) listen(ctx context.Context, dbURL string) error {
	lconn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	qconn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		lconn.Close(ctx)
		return fmt.Errorf("listen: %w", err)
	}
	if _, err := lconn.Exec(ctx, "LISTEN moor_events"); err != nil {
		lconn.Close(ctx)
		qconn.Close(ctx)
		return fmt.Errorf("listen: %w", err)
	}
	ctx, h.cancel = context.WithCancel(ctx)
	ch := make(chan notification, 1<<16)
	// The receiving goroutine only stamps and queues, so no lookup delays
	// the time taken for the next notification.
	go func() {
		defer close(ch)
		for {
			n, err := lconn.WaitForNotification(ctx)
			if err != nil {
				if ctx.Err() == nil {
					h.fail(fmt.Errorf("LISTEN connection: %w", err))
				}
				return
			}
			at := time.Now()
			seq, _ := strconv.ParseInt(n.Payload, 10, 64)
			ch <- notification{seq, at}
		}
	}()
	go func() {
		defer close(h.done)
		defer lconn.Close(context.Background())
		defer qconn.Close(context.Background())
		for n := range ch {
			var kind, name string
			err := qconn.QueryRow(ctx, `SELECT kind, container_name FROM events WHERE seq = $1`, n.seq).Scan(&kind, &name)
			if err != nil {
				if ctx.Err() == nil {
					h.fail(fmt.Errorf("read event %d: %w", n.seq, err))
				}
				return
			}
			h.add(name, kind, n.at)
		}
	}()
	return nil
}

func (h *eventHub) close() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
	}
}

func (h *eventHub) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
	}
	for name, ch := range h.changed {
		close(ch)
		delete(h.changed, name)
	}
}

func (h *eventHub) add(name, kind string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[kind]++
	m := h.seen[name]
	if m == nil {
		m = map[string]time.Time{}
		h.seen[name] = m
	}
	if _, ok := m[kind]; !ok {
		m[kind] = at
	}
	if ch := h.changed[name]; ch != nil {
		close(ch)
		delete(h.changed, name)
	}
}

// total is how many events arrived so far.
func (h *eventHub) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, k := range h.counts {
		n += k
	}
	return n
}

// wait returns the first of kinds that arrives for container name, and when.
func (h *eventHub) wait(ctx context.Context, name string, kinds ...string) (string, time.Time, error) {
	for {
		h.mu.Lock()
		if h.err != nil {
			err := h.err
			h.mu.Unlock()
			return "", time.Time{}, err
		}
		for _, k := range kinds {
			if at, ok := h.seen[name][k]; ok {
				h.mu.Unlock()
				return k, at, nil
			}
		}
		ch := h.changed[name]
		if ch == nil {
			ch = make(chan struct{})
			h.changed[name] = ch
		}
		h.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return "", time.Time{}, fmt.Errorf("%s: no %s event: %w", name, strings.Join(kinds, " or "), errTimeout)
		}
	}
}

func queryString(ctx context.Context, dbURL, sql string, args ...any) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var s string
	err = conn.QueryRow(ctx, sql, args...).Scan(&s)
	return s, err
}

func queryInt(ctx context.Context, dbURL, sql string, args ...any) (int64, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int64
	err = conn.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

func execSQL(ctx context.Context, dbURL string, sqls ...string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range sqls {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}
