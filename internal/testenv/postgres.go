// Package testenv provides real dependencies (PostgreSQL, Docker) to tests.
//
// # PostgreSQL
//
// Postgres(t) returns the URL of a fresh, empty database that belongs to the calling
// test and is dropped when it ends. The server is, in order of preference:
//
//   - the one named by MOOR_TEST_DATABASE_URL: an admin URL (a superuser, or a role
//     with CREATEDB, connected to e.g. the "postgres" database) of a running server.
//     `make test` starts one cluster with scripts/pg.sh and sets it for all packages.
//   - otherwise a throwaway cluster that this test process starts once, in a
//     temporary directory, with durability turned off (fsync, full_page_writes and
//     synchronous_commit off). It needs the PostgreSQL server binaries: MOOR_PG_BIN,
//     else the newest /usr/lib/postgresql/*/bin, else initdb on PATH. PostgreSQL
//     refuses to run as root, so as root it runs as the "postgres" OS user.
//
// If no server can be had, tests that call Postgres are skipped, or fail when the CI
// environment variable is set (so CI never passes by skipping). A set but unreachable
// MOOR_TEST_DATABASE_URL always fails.
//
// Packages whose tests call Postgres must stop the throwaway cluster when the test
// binary ends, with a TestMain:
//
//	func TestMain(m *testing.M) { testenv.RunMain(m) }
//
// Without it the cluster still dies with the test process (it gets SIGINT when its
// parent exits), but its temporary directory stays behind until the next test
// process that starts a cluster sweeps it away.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDatabaseURL names the variable holding an admin URL of a running server.
const EnvDatabaseURL = "MOOR_TEST_DATABASE_URL"

// pgTempPrefix starts the name of a throwaway cluster's directory; the pid of the
// test process that owns it follows, so stale ones can be recognised and removed.
const pgTempPrefix = "moor-testpg-"

var (
	pgOnce     sync.Once
	pgAdminURL string // admin URL of the server, when pgErr is nil
	pgErr      error  // why no server is available
	pgExternal bool   // the server is MOOR_TEST_DATABASE_URL's
)

// Postgres returns a postgres:// URL of a new, empty database (moor_t_<random>,
// created from template0) for this test alone. The database is dropped, with FORCE to
// end connections the test left open, when the test and its subtests are done.
func Postgres(t testing.TB) string {
	t.Helper()
	Deadline(t)
	pgOnce.Do(pgSetup)
	if pgErr != nil {
		if pgExternal || inCI() {
			t.Fatalf("testenv: PostgreSQL unavailable: %v", pgErr)
		}
		t.Skipf("testenv: PostgreSQL unavailable, skipping: %v", pgErr)
	}

	name := "moor_t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := pgExec(ctx, pgAdminURL, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := pgExec(ctx, pgAdminURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(pgAdminURL, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return u
}

// RunMain runs the tests, then the functions registered with AtExit (the throwaway
// PostgreSQL cluster's shutdown among them), then exits with the tests' status.
// Call it from TestMain in every package whose tests use Postgres.
func RunMain(m *testing.M) {
	code := m.Run()
	runExitHooks()
	os.Exit(code)
}

var (
	exitMu    sync.Mutex
	exitHooks []func()
)

// AtExit registers f to run when RunMain returns from the tests, after the functions
// registered later (last in, first out).
func AtExit(f func()) {
	exitMu.Lock()
	defer exitMu.Unlock()
	exitHooks = append(exitHooks, f)
}

func runExitHooks() {
	exitMu.Lock()
	hooks := exitHooks
	exitHooks = nil
	exitMu.Unlock()
	for i := len(hooks) - 1; i >= 0; i-- {
		hooks[i]()
	}
}

func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

func pgSetup() {
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		pgExternal = true
		pgAdminURL = u
		if _, err := withDatabase(u, "x"); err != nil {
			pgErr = fmt.Errorf("%s: %w", EnvDatabaseURL, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := pgExec(ctx, u, "SELECT 1"); err != nil {
			pgErr = fmt.Errorf("%s: %w", EnvDatabaseURL, err)
		}
		return
	}
	c, err := startCluster()
	if err != nil {
		pgErr = err
		return
	}
	pgAdminURL = c.adminURL()
	AtExit(c.stop)
}

// pgExec runs one statement on a connection of its own.
func pgExec(ctx context.Context, connURL, sql string) error {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns connURL naming database db instead.
func withDatabase(connURL, db string) (string, error) {
	u, err := url.Parse(connURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("want a postgres:// URL")
	}
	q := u.Query()
	if q.Has("dbname") {
		q.Set("dbname", db)
		u.RawQuery = q.Encode()
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cluster is a throwaway PostgreSQL server owned by this process.
type cluster struct {
	dir  string // temporary directory: data/, postgres.log, the unix socket
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the postmaster has exited
}

func (c *cluster) adminURL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// runAs is the OS user the server runs as: nil for the current user, or postgres's
// credentials when the current user is root.
type runAs struct {
	cred *syscall.Credential
}

func (r runAs) apply(cmd *exec.Cmd) {
	if r.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	}
}

func startCluster() (*cluster, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	var as runAs
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and PostgreSQL refuses to: need an OS user 'postgres' to run it as: %v", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		as.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}

	base := os.TempDir()
	if as.cred != nil && !traversable(base, as.cred) {
		base = "/tmp"
	}
	sweepStale(base)
	dir, err := os.MkdirTemp(base, pgTempPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if as.cred != nil {
		if err := os.Chown(dir, int(as.cred.Uid), int(as.cred.Gid)); err != nil {
			return nil, err
		}
		if !traversable(dir, as.cred) {
			return nil, fmt.Errorf("the postgres OS user cannot reach %s (set TMPDIR to a directory it can reach)", dir)
		}
	}

	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-locale", "-N", "--no-instructions")
	initdb.Dir = dir
	initdb.Env = pgEnv()
	as.apply(initdb)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}

	// A free port can be taken by someone else before the server binds it: retry.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := reservePort()
		if err != nil {
			return nil, err
		}
		c, err := launch(bin, dir, port, as)
		if err == nil {
			ok = true
			return c, nil
		}
		releasePort(port)
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("port taken")

// launch starts the postmaster directly (not through pg_ctl) so that it is our child:
// it gets SIGINT (fast shutdown) if this process dies without stopping it.
func launch(bin, dir string, port int, as runAs) (*cluster, error) {
	sockDir := dir
	if len(dir)+len("/.s.PGSQL.65535") > 107 { // sun_path limit; TCP still works
		sockDir = ""
	}
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", filepath.Join(dir, "data"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+sockDir,
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit=off",
		"-c", "max_connections=300",
	)
	cmd.Dir = dir
	cmd.Env = pgEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	as.apply(cmd)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	cmd.SysProcAttr.Setpgid = true // ^C in a terminal reaches us, not the server directly

	// The parent-death signal fires when the thread that forked the child exits, so
	// fork from a locked thread that stays alive until the postmaster exits.
	started := make(chan error, 1)
	c := &cluster{dir: dir, port: port, cmd: cmd, done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := pgExec(ctx, c.adminURL(), "SELECT 1")
		cancel()
		if err == nil {
			return c, nil
		}
		select {
		case <-c.done:
			log, _ := os.ReadFile(logPath)
			if strings.Contains(string(log), "could not bind") || strings.Contains(string(log), "could not create any TCP/IP sockets") {
				return nil, fmt.Errorf("%w: %d", errPortTaken, port)
			}
			return nil, fmt.Errorf("postgres exited at start: %s\n%s", cmd.ProcessState, tail(log, 2000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, tail(log, 2000))
		}
	}
}

// stop shuts the server down (fast, then immediate, then SIGKILL) and removes its
// directory.
func (c *cluster) stop() {
	for _, s := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 15 * time.Second}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		_ = c.cmd.Process.Signal(s.sig)
		select {
		case <-c.done:
			os.RemoveAll(c.dir)
			return
		case <-time.After(s.wait):
		}
	}
	fmt.Fprintf(os.Stderr, "testenv: postgres (pid %d) did not stop; leaving %s\n", c.cmd.Process.Pid, c.dir)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// pgEnv is the environment for initdb and postgres: ours without libpq's PG*
// variables, in the C locale.
func pgEnv() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=")
	})
	return append(env, "LC_ALL=C")
}

// pgBinDir finds the directory holding initdb and postgres.
func pgBinDir() (string, error) {
	has := func(d string) bool {
		for _, f := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(d, f)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("MOOR_PG_BIN"); d != "" {
		if has(d) {
			return d, nil
		}
		return "", fmt.Errorf("MOOR_PG_BIN=%s holds no initdb and postgres", d)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	best, bestV := "", -1
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err == nil && v > bestV && has(d) {
			best, bestV = d, v
		}
	}
	if best != "" {
		return best, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("PostgreSQL server binaries not found (install postgresql-15, set MOOR_PG_BIN to their directory, or set %s)", EnvDatabaseURL)
}

// traversable reports whether the user cred can enter dir, judging by the mode bits
// of dir and its ancestors (ACLs aside).
func traversable(dir string, cred *syscall.Credential) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			return false
		}
		var bit uint32
		switch {
		case st.Uid == cred.Uid:
			bit = 0o100
		case st.Gid == cred.Gid:
			bit = 0o010
		default:
			bit = 0o001
		}
		if st.Mode&bit == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// sweepStale removes throwaway cluster directories in base left by test processes
// that are gone (killed, or timed out before RunMain could stop their cluster).
func sweepStale(base string) {
	matches, _ := filepath.Glob(filepath.Join(base, pgTempPrefix+"*"))
	for _, dir := range matches {
		rest := strings.TrimPrefix(filepath.Base(dir), pgTempPrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() || alive(pid) {
			continue
		}
		// The postmaster got SIGINT when its owner died; leave it alone if it lingers.
		if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if pm, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && alive(pm) {
				continue
			}
		}
		os.RemoveAll(dir)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
