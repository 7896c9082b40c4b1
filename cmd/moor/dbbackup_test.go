package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/store"
)

// TestLibpqConn: the password leaves the connection string (ps would show
// it) for PGPASSWORD; settings only pgx knows are dropped.
func TestLibpqConn(t *testing.T) {
	for _, c := range []struct{ in, conn, password string }{
		{"postgres://moor:s3cr%40t@db:5432/moor?sslmode=disable", "postgres://moor@db:5432/moor?sslmode=disable", "s3cr@t"},
		{"postgresql://moor@db/moor?password=pw&pool_max_conns=4&statement_cache_capacity=0", "postgresql://moor@db/moor", "pw"},
		{"postgres://127.0.0.1:5432/moor", "postgres://127.0.0.1:5432/moor", ""},
		{`host=db  user = moor password='a \'b\' c' dbname=moor pool_max_conns=3`, `host='db' user='moor' dbname='moor'`, "a 'b' c"},
		{`host=/run/postgresql password=x\ y`, `host='/run/postgresql'`, "x y"},
	} {
		conn, password, err := libpqConn(c.in)
		if err != nil || conn != c.conn || password != c.password {
			t.Errorf("%q: %q %q %v, want %q %q", c.in, conn, password, err, c.conn, c.password)
		}
	}
	for _, bad := range []string{"", "host", "host=db password='open", "postgres://u:pw@[::1/x"} {
		_, _, err := libpqConn(bad)
		if err == nil {
			t.Errorf("%q: no error", bad)
		} else if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "open") {
			t.Errorf("%q: the error shows the password: %v", bad, err)
		}
	}
}

// TestParseWithArgs: flags before and after the file, "--", and what the
// commands refuse.
func TestParseWithArgs(t *testing.T) {
	var force bool
	for _, c := range []struct {
		args  []string
		force bool
		rest  []string
	}{
		{[]string{"f.dump"}, false, []string{"f.dump"}},
		{[]string{"f.dump", "--force"}, true, []string{"f.dump"}},
		{[]string{"-force", "-"}, true, []string{"-"}},
		{[]string{"--", "--force"}, false, []string{"--force"}},
		{[]string{"a", "-database-url", "postgres://x/y", "b"}, false, []string{"a", "b"}},
	} {
		force = false
		cfg, rest, err := parseWithArgs(restoreSpec, c.args, io.Discard, func(fs *flag.FlagSet) { fs.BoolVar(&force, "force", false, "") })
		if err != nil || force != c.force || !slices.Equal(rest, c.rest) {
			t.Errorf("%q: force %v rest %q %v", c.args, force, rest, err)
		}
		if slices.Contains(c.args, "-database-url") && cfg.DatabaseURL != "postgres://x/y" {
			t.Errorf("%q: database url %q", c.args, cfg.DatabaseURL)
		}
	}
	if _, err := parseWith(migrateSpec, []string{"extra"}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), `unexpected argument "extra"`) {
		t.Errorf("parseWith: %v", err)
	}

	dio := func(tty bool) (dbIO, *bytes.Buffer) {
		var out bytes.Buffer
		return dbIO{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: func(string) string { return "" },
			terminal: func(any) bool { return tty }}, &out
	}
	for _, c := range []struct {
		run  func([]string, io.Writer, dbIO) error
		args []string
		tty  bool
		want string
	}{
		{runBackup, nil, true, "terminal"},
		{runBackup, []string{"-o", "-"}, true, "terminal"},
		{runBackup, []string{"file"}, false, "goes after -o"},
		{runBackup, nil, false, "MOOR_DATABASE_URL is required"},
		{runRestore, nil, false, "moor restore FILE"},
		{runRestore, []string{"a", "b"}, false, `unexpected argument "b"`},
		{runRestore, []string{"-"}, true, "stdin is a terminal"},
		{runRestore, []string{"f.dump"}, false, "MOOR_DATABASE_URL is required"},
	} {
		t.Setenv("MOOR_DATABASE_URL", "")
		d, _ := dio(c.tty)
		if err := c.run(c.args, io.Discard, d); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q (tty %v): %v, want %q", c.args, c.tty, err, c.want)
		}
	}
	// -h lists the command's own flags.
	d, out := dio(false)
	if err := runRestore([]string{"-h"}, out, d); err == nil || !strings.Contains(out.String(), "-force") || strings.Contains(out.String(), "-http-addr") {
		t.Errorf("-h: %v\n%s", err, out)
	}
}

// TestPGTool: MOOR_PG_BIN first, else the newest Debian version, else
// PATH; missing, the message names the Debian package and MOOR_PG_BIN.
func TestPGTool(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9", "13", "15", "notaversion"} {
		dir := filepath.Join(root, v, "bin")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "pg_dump"), []byte("#!/bin/sh\n"), 0o755)
	}
	os.MkdirAll(filepath.Join(root, "16", "bin"), 0o755) // no pg_dump there
	defer func(g string) { pgBinGlob = g }(pgBinGlob)
	pgBinGlob = filepath.Join(root, "*", "bin")
	t.Setenv("PATH", t.TempDir())
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	if p, err := pgTool("pg_dump", getenv); err != nil || p != filepath.Join(root, "15", "bin", "pg_dump") {
		t.Errorf("newest: %q %v", p, err)
	}
	env["MOOR_PG_BIN"] = filepath.Join(root, "13", "bin")
	if p, err := pgTool("pg_dump", getenv); err != nil || p != filepath.Join(root, "13", "bin", "pg_dump") {
		t.Errorf("MOOR_PG_BIN: %q %v", p, err)
	}
	env["MOOR_PG_BIN"] = filepath.Join(root, "16", "bin")
	if _, err := pgTool("pg_dump", getenv); err == nil || !strings.Contains(err.Error(), "MOOR_PG_BIN="+env["MOOR_PG_BIN"]) ||
		!strings.Contains(err.Error(), "postgresql-client-15") {
		t.Errorf("not in MOOR_PG_BIN: %v", err)
	}
	delete(env, "MOOR_PG_BIN")
	_, err := pgTool("pg_restore", getenv)
	if err == nil || !strings.Contains(err.Error(), "pg_restore not found") || !strings.Contains(err.Error(), "postgresql-client") ||
		!strings.Contains(err.Error(), "MOOR_PG_BIN") {
		t.Errorf("missing: %v", err)
	}
}

func TestArchiveTables(t *testing.T) {
	toc := `;
; Archive created at 2026-01-01 00:00:00 UTC
;     dbname: moor
236; 1255 16575 FUNCTION public moor_bind_scope(inet) postgres
215; 1259 16393 TABLE public installation postgres
216; 1259 16385 TABLE public schema_migrations postgres
3500; 0 16393 TABLE DATA public installation postgres
`
	got := archiveTables(toc)
	if len(got) != 2 || !got["public.installation"] || !got["public.schema_migrations"] {
		t.Errorf("%v", got)
	}
}

func TestDescribe(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
	objs := []store.DBObject{
		{Kind: "table", Schema: "public", Name: "a"}, {Kind: "function", Schema: "public", Name: "f()"}, {Kind: "table", Schema: "public", Name: "b"},
		{Kind: "schema", Schema: "river", Name: "river"}, {Kind: "table", Schema: "river", Name: "jobs"},
	}
	if got, want := describeObjects(objs), "3 tables (a, b, river.jobs), 1 function (f()), 1 schema (river)"; got != want {
		t.Errorf("describeObjects: %q, want %q", got, want)
	}
}
