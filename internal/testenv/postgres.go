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
	"strings"
	"sync"
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
