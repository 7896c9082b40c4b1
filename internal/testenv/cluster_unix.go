//go:build unix

package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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
	setPdeathsig(cmd.SysProcAttr, syscall.SIGINT)
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
		if uint32(st.Mode)&bit == 0 { // uint16 on some systems
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
