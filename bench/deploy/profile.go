//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// The profile runs moor once more, with its Docker traffic through a logging
// proxy and PostgreSQL logging every statement with its duration, and lists
// what one deploy costs: every Docker API call and SQL statement between the
// POST and the running event. The proxy and the statement log slow things a
// little, so its totals are not the benchmark's figures.

// proxyCall is one Docker API request through the proxy.
type proxyCall struct {
	start, end time.Time
	method     string
	path       string // normalised: no API version, object names as {x}
	status     int
}

func (c proxyCall) endpoint() string { return c.method + " " + c.path }

type dockerProxy struct {
	sock  string
	ln    net.Listener
	srv   *http.Server
	mu    sync.Mutex
	calls []proxyCall
}

// engineSocket is the unix socket of the engine the docker CLI talks to.
func engineSocket() (string, error) {
	h := os.Getenv("DOCKER_HOST")
	if h == "" {
		return "/var/run/docker.sock", nil
	}
	if p, ok := strings.CutPrefix(h, "unix://"); ok {
		return p, nil
	}
	return "", fmt.Errorf("the profile needs the engine on a unix socket, DOCKER_HOST is %s", h)
}

func startDockerProxy(sock string) (*dockerProxy, error) {
	target, err := engineSocket()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	p := &dockerProxy{sock: sock, ln: ln}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "docker"
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", target)
			},
			MaxIdleConnsPerHost: 100,
		},
		FlushInterval: -1, // the events stream
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		rp.ServeHTTP(sw, r)
		p.mu.Lock()
		p.calls = append(p.calls, proxyCall{start: start, end: time.Now(), method: r.Method, path: normalisePath(r.URL.Path), status: sw.status})
		p.mu.Unlock()
	})}
	go p.srv.Serve(ln)
	return p, nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (p *dockerProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p.srv.Shutdown(ctx)
	p.srv.Close()
	os.Remove(p.sock)
}

// between returns the calls that started in [from, to], events stream excluded.
func (p *dockerProxy) between(from, to time.Time) []proxyCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []proxyCall
	for _, c := range p.calls {
		if !c.start.Before(from) && !c.start.After(to) && c.path != "/events" {
			out = append(out, c)
		}
	}
	return out
}

var versionPrefix = regexp.MustCompile(`^/v[0-9.]+`)

func normalisePath(p string) string {
	p = versionPrefix.ReplaceAllString(p, "")
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(parts) >= 2 {
		switch parts[0] {
		case "containers", "volumes", "networks", "exec":
			switch parts[1] {
			case "json", "create", "prune":
			default:
				parts[1] = "{" + strings.TrimSuffix(parts[0], "s") + "}"
			}
		case "images":
			// the name may hold slashes: everything up to the last part is it
			if len(parts) > 2 && parts[len(parts)-1] == "json" {
				parts = []string{"images", "{image}", "json"}
			}
		}
	}
	return "/" + strings.Join(parts, "/")
}

// sqlEntry is one line of PostgreSQL's statement log.
type sqlEntry struct {
	end   time.Time
	pid   int
	dur   time.Duration
	phase string // parse, bind, execute, statement
	text  string
}

// isStatement is true for an executed statement (not its parse or bind).
func (e sqlEntry) isStatement() bool { return e.phase == "execute" || e.phase == "statement" }

// The statement log's prefix is set to '%n [%p] ' (epoch with milliseconds, pid).
var (
	pgLine     = regexp.MustCompile(`^(\d+\.\d+) \[(\d+)\] (\w+):  (.*)$`)
	pgDuration = regexp.MustCompile(`^duration: ([0-9.]+) ms  (parse|bind|execute|statement)( [^:]*)?: ?(.*)$`)
	spaces     = regexp.MustCompile(`\s+`)
)

// readSQLLog parses the statement log from offset on.
func readSQLLog(path string, offset int64) ([]sqlEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, err
	}
	var out []sqlEntry
	var cur *sqlEntry
	flush := func() {
		if cur != nil {
			cur.text = strings.TrimSpace(spaces.ReplaceAllString(cur.text, " "))
			// The bench's own reads of the events it is notified of.
			if !strings.Contains(cur.text, "kind, container_name FROM events WHERE seq") {
				out = append(out, *cur)
			}
			cur = nil
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := pgLine.FindStringSubmatch(line)
		if m == nil {
			if cur != nil {
				cur.text += " " + line
			}
			continue
		}
		flush()
		d := pgDuration.FindStringSubmatch(m[4])
		if m[3] != "LOG" || d == nil {
			continue
		}
		secs, _ := strconv.ParseFloat(m[1], 64)
		pid, _ := strconv.Atoi(m[2])
		dms, _ := strconv.ParseFloat(d[1], 64)
		cur = &sqlEntry{
			end: time.UnixMilli(int64(secs*1000 + 0.5)), pid: pid,
			dur: time.Duration(dms * float64(time.Millisecond)), phase: d[2], text: d[4],
		}
	}
	flush()
	return out, sc.Err()
}

func sqlBetween(all []sqlEntry, from, to time.Time) []sqlEntry {
	var out []sqlEntry
	// The log's clock has millisecond steps: widen by one.
	from, to = from.Add(-time.Millisecond), to.Add(time.Millisecond)
	for _, e := range all {
		if !e.end.Before(from) && !e.end.After(to) {
			out = append(out, e)
		}
	}
	return out
}

// profDeploy is one profiled deploy (or docker run).
type profDeploy struct {
	name         string
	t0, tAPI, t1 time.Time
	calls        []proxyCall
	sql          []sqlEntry
}

func (d profDeploy) total() time.Duration { return d.t1.Sub(d.t0) }

type profileResult struct {
	deploys    []profDeploy
	dockerRuns []profDeploy
	sqlLogged  bool
	idleWindow time.Duration
	idleCalls  map[string]int // endpoint -> calls in the window, one container running
	idleSQL    int
	idleEvents map[string]int
	moorLog    string
}

const profileDeploys = 7

func (b *bench) profileRun(ctx context.Context) error {
	log.Printf("profile: restarting moor with its Docker traffic through a logging proxy")
	p := &profileResult{}
	b.res.profile = p
	proxy, err := startDockerProxy(filepath.Join(b.o.workDir, "docker-proxy.sock"))
	if err != nil {
		return err
	}
	defer proxy.close()

	var logOffset int64
	if b.o.pgLog != "" {
		if fi, err := os.Stat(b.o.pgLog); err == nil {
			logOffset = fi.Size()
			err = execSQL(ctx, b.o.dbURL,
				`ALTER SYSTEM SET log_min_duration_statement = 0`,
				`ALTER SYSTEM SET log_line_prefix = '%n [%p] '`,
				`SELECT pg_reload_conf()`)
			if err != nil {
				return err
			}
			p.sqlLogged = true
			defer execSQL(context.WithoutCancel(ctx), b.o.dbURL,
				`ALTER SYSTEM RESET log_min_duration_statement`,
				`ALTER SYSTEM RESET log_line_prefix`,
				`SELECT pg_reload_conf()`)
		} else {
			log.Printf("profile: no SQL trace: %v", err)
		}
	}

	b.moor.stop()
	m, err := startMoor(ctx, b.o, "moor-profile.log", []string{"DOCKER_HOST=unix://" + proxy.sock, "MOOR_LOG_LEVEL=debug"})
	if err != nil {
		return err
	}
	b.moor = m
	p.moorLog = m.logPath
	b.api = newAPIClient(m.url, b.adminKey)
	time.Sleep(500 * time.Millisecond) // let the reloaded log settings reach every backend

	deploy := func(name string) (profDeploy, error) {
		d := profDeploy{name: name}
		d.t0 = time.Now()
		if err := b.api.create(ctx, name); err != nil {
			return d, err
		}
		d.tAPI = time.Now()
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		kind, t1, err := b.hub.wait(wctx, name, "container.running", "container.failed")
		if err == nil && kind != "container.running" {
			err = errors.New(name + " failed")
		}
		d.t1 = t1
		return d, err
	}
	// The first deploy of a process also ensures the network.
	if _, err := deploy("p-" + b.o.runID + "-w"); err != nil {
		return err
	}
	if err := b.removeMoor(ctx, "p-"+b.o.runID+"-w"); err != nil {
		return err
	}
	time.Sleep(b.o.settle)
	for i := 0; i < profileDeploys; i++ {
		name := fmt.Sprintf("p-%s-%d", b.o.runID, i)
		d, err := deploy(name)
		if err != nil {
			return err
		}
		d.calls = proxy.between(d.t0, d.t1)
		p.deploys = append(p.deploys, d)
		log.Printf("profile: deploy %d: %s, %d Docker API calls", i, ms(d.total()), len(d.calls))
		if err := b.removeMoor(ctx, name); err != nil {
			return err
		}
		time.Sleep(b.o.settle)
	}
	// What the docker CLI sends for `docker run -d`.
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("bench-pdr-%s-%d", b.o.runID, i)
		d := profDeploy{name: name, t0: time.Now()}
		args := append([]string{"--host", "unix://" + proxy.sock}, b.dockerArgs(name, false)...)
		if _, err := docker(ctx, args...); err != nil {
			return err
		}
		d.t1 = time.Now()
		d.tAPI = d.t1
		d.calls = proxy.between(d.t0, d.t1)
		p.dockerRuns = append(p.dockerRuns, d)
		docker(ctx, "rm", "-f", "-v", name)
		time.Sleep(b.o.settle)
	}
	// One container running, nothing asked: what moor does meanwhile.
	idle := "p-" + b.o.runID + "-idle"
	if _, err := deploy(idle); err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	p.idleWindow = 10 * time.Second
	w0 := time.Now()
	time.Sleep(p.idleWindow)
	w1 := time.Now()
	p.idleCalls = map[string]int{}
	for _, c := range proxy.between(w0, w1) {
		p.idleCalls[c.endpoint()]++
	}
	p.idleEvents = b.dev.actions(domain.DockerName(domain.DefaultProject, idle, 0), w0, w1)
	if err := b.removeMoor(ctx, idle); err != nil {
		return err
	}

	if p.sqlLogged {
		time.Sleep(200 * time.Millisecond)
		all, err := readSQLLog(b.o.pgLog, logOffset)
		if err != nil {
			return fmt.Errorf("read the statement log: %w", err)
		}
		for i := range p.deploys {
			p.deploys[i].sql = sqlBetween(all, p.deploys[i].t0, p.deploys[i].t1)
		}
		for _, e := range sqlBetween(all, w0, w1) {
			if e.isStatement() {
				p.idleSQL++
			}
		}
	}
	return nil
}

// medianDeploy is the profiled deploy of median total.
func (p *profileResult) medianDeploy() profDeploy {
	ds := append([]profDeploy(nil), p.deploys...)
	sort.Slice(ds, func(i, j int) bool { return ds[i].total() < ds[j].total() })
	return ds[len(ds)/2]
}
