package main

// moor backup and moor restore: moor's own database, dumped and restored
// with PostgreSQL's client tools (pg_dump, pg_restore) in their custom
// format, so `pg_restore -l` lists a dump and pg_restore can restore
// parts of it, in parallel, by hand. The password of MOOR_DATABASE_URL
// goes to them in PGPASSWORD, never on a command line (ps shows those).

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moorhq/moor/internal/store"
)

var (
	backupSpec = flagCommandSpec{name: "backup", usage: "moor backup [-o FILE]",
		about: `Dump moor's database (MOOR_DATABASE_URL) with pg_dump, in its custom format,
to FILE or stdout (not a terminal). Everything of the installation is in it
(its id, containers, projects, users, keys, history, credentials sealed with
MOOR_SECRET_KEY) but the secret key itself: keep that apart, without it a
restored moor cannot read the credentials. moor restore FILE restores it.
Needs pg_dump: MOOR_PG_BIN, else /usr/lib/postgresql/*/bin (newest), else PATH
(Debian: apt-get install postgresql-client-15, or postgresql-client).`,
		show: append([]string{"o"}, dbFlags...)}
	restoreSpec = flagCommandSpec{name: "restore", usage: "moor restore [--force] FILE|-",
		about: `Restore a dump of moor backup (FILE, or - for stdin) into the database of
MOOR_DATABASE_URL, in one transaction: the database must be empty (createdb a
new one), or --force drops everything it holds first (refused while a moor
server runs on it). The file is read whole before anything changes: one that
is not a moor dump, or is damaged, changes nothing. Then it says the
installation id, what was restored, and whether moor migrate is needed.
Needs pg_restore, found as moor backup finds pg_dump.`,
		show: append([]string{"force"}, dbFlags...)}
)

// parseWithArgs is parseWith for a command with positional arguments:
// flags may come before or after them; "--" ends the flags.
func parseWithArgs(spec flagCommandSpec, args []string, out io.Writer, extra func(*flag.FlagSet)) (*config, []string, error) {
	var c config
	fs := flag.NewFlagSet("moor "+spec.name, flag.ContinueOnError)
	fs.SetOutput(out)
	c.register(fs)
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() { spec.printUsage(fs) }
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// Parse stops at the first argument, or after "--".
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	c.flagsSet(fs)
	return &c, positional, nil
}

// pgBinGlob is where Debian installs each PostgreSQL version's programs.
var pgBinGlob = "/usr/lib/postgresql/*/bin"

// pgTool finds a PostgreSQL client program: in MOOR_PG_BIN when set, else
// in the newest Debian version directory, else on PATH.
func pgTool(name string, getenv func(string) string) (string, error) {
	install := "install the PostgreSQL client tools (Debian, Ubuntu: apt-get install postgresql-client-15, or postgresql-client; " +
		"the server's major version or a later one)"
	if dir := getenv("MOOR_PG_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s not found in MOOR_PG_BIN=%s: set MOOR_PG_BIN to the directory that holds it, or unset it, and %s", name, dir, install)
		}
		return p, nil
	}
	dirs, _ := filepath.Glob(pgBinGlob)
	best, bestVersion := "", -1
	for _, d := range dirs {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if err != nil || v <= bestVersion {
			continue
		}
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			best, bestVersion = filepath.Join(d, name), v
		}
	}
	if best != "" {
		return best, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found (not in %s, nor on PATH): %s, or set MOOR_PG_BIN to the directory that holds it", name, pgBinGlob, install)
}

// pgxOnly are settings of MOOR_DATABASE_URL that pgx understands and
// libpq refuses ("invalid URI query parameter").
func pgxOnly(key string) bool {
	switch key {
	case "statement_cache_capacity", "description_cache_capacity", "default_query_exec_mode", "min_read_buffer_size":
		return true
	}
	return strings.HasPrefix(key, "pool_")
}

// libpqConn turns MOOR_DATABASE_URL (a URL or key=value settings) into a
// connection string for pg_dump and pg_restore without the password, and
// the password apart (for PGPASSWORD). Settings only pgx knows are left out.
func libpqConn(dsn string) (conn, password string, err error) {
	if dsn == "" {
		return "", "", errors.New("MOOR_DATABASE_URL is required")
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", "", fmt.Errorf("database url: %v", redactURLError(err))
		}
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				password = p
				u.User = url.User(u.User.Username())
			}
		}
		q := u.Query()
		if p := q.Get("password"); p != "" {
			password = p
		}
		q.Del("password")
		for k := range q {
			if pgxOnly(k) {
				q.Del(k)
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), password, nil
	}
	kvs, err := parseKeyValues(dsn)
	if err != nil {
		return "", "", fmt.Errorf("database url: %w", err)
	}
	var b strings.Builder
	for _, kv := range kvs {
		switch {
		case kv[0] == "password":
			password = kv[1]
			continue
		case pgxOnly(kv[0]):
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[0] + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(kv[1]) + "'")
	}
	return b.String(), password, nil
}

// redactURLError keeps a password out of url.Parse's error, which quotes
// the whole URL.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseKeyValues parses libpq's key=value form: spaces around "=", values
// in single quotes with backslash escapes.
func parseKeyValues(s string) ([][2]string, error) {
	var out [][2]string
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return out, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' && s[i] != '\t' {
			i++
		}
		key := s[start:i]
		skip()
		if i >= len(s) || s[i] != '=' || key == "" {
			return nil, fmt.Errorf("setting %q has no value (key=value expected)", key)
		}
		i++
		skip()
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			for ; ; i++ {
				if i >= len(s) {
					return nil, fmt.Errorf("setting %q: unterminated quoted value", key)
				}
				if s[i] == '\\' && i+1 < len(s) {
					i++
				} else if s[i] == '\'' {
					i++
					break
				}
				val.WriteByte(s[i])
			}
		} else {
			for ; i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
		}
		out = append(out, [2]string{key, val.String()})
	}
}

// pgSetup is what a command needs to run tool on the database: the
// connection string, the password apart, and the program's path.
func pgSetup(c *config, tool string, getenv func(string) string) (conn, password, path string, err error) {
	if conn, password, err = libpqConn(c.DatabaseURL); err != nil {
		return "", "", "", err
	}
	path, err = pgTool(tool, getenv)
	return conn, password, path, err
}

// pgCommand is a PostgreSQL client program run on the database: the
// password in its environment, its error output kept for the message.
type pgCommand struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func newPGCommand(ctx context.Context, tool, app, password string, args ...string) *pgCommand {
	cmd := exec.CommandContext(ctx, tool, args...)
	env := append(os.Environ(), "PGAPPNAME="+app)
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return &pgCommand{cmd: cmd, stderr: &stderr}
}

// run runs it; its error names the program and says what it printed.
func (p *pgCommand) run() error {
	if err := p.cmd.Run(); err != nil {
		msg := strings.TrimSpace(p.stderr.String())
		if len(msg) > 4000 {
			msg = msg[:4000] + " ..."
		}
		if msg == "" {
			msg = err.Error()
		}
		if tool := filepath.Base(p.cmd.Path); !strings.HasPrefix(msg, tool+":") {
			msg = tool + ": " + msg
		}
		return errors.New(msg)
	}
	return nil
}

// countingWriter counts what goes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// dbIO is what moor backup and restore talk to.
type dbIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// terminal reports whether a stream is a terminal.
	terminal func(any) bool
}

func secretKeyNote(c *config) string {
	where := "MOOR_SECRET_KEY"
	if c.SecretKey == "" {
		where = "the key file " + filepath.Join(c.DataDir, "secret.key") + " (or MOOR_SECRET_KEY)"
	}
	return "the secret key is NOT in the dump: keep " + where + " apart from it; restoring without it leaves the stored credentials unreadable"
}

func runBackup(args []string, usage io.Writer, dio dbIO) error {
	var output string
	c, rest, err := parseWithArgs(backupSpec, args, usage, func(fs *flag.FlagSet) {
		fs.StringVar(&output, "o", "", "write the dump to `FILE` (default: stdout, which must not be a terminal)")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q (the file goes after -o)", rest[0])
	}
	toStdout := output == "" || output == "-"
	if toStdout && dio.terminal(dio.stdout) {
		return errors.New("refusing to write a binary dump to a terminal: give -o FILE, or redirect stdout (moor backup > FILE)")
	}
	conn, password, pgDump, err := pgSetup(c, "pg_dump", dio.getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, c.DatabaseURL, newLogger(c, dio.stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	installation, err := st.InstallationID(ctx)
	if err != nil {
		return fmt.Errorf("no moor installation in this database (%v): nothing to back up", err)
	}
	schema, err := st.SchemaVersion(ctx)
	if err != nil {
		return err
	}

	// A file is written under a temporary name beside it and renamed once
	// whole: a failed dump leaves no half file, and the mode is 0600 (the
	// dump holds password hashes and sealed credentials).
	var out io.Writer = dio.stdout
	var tmp *os.File
	if !toStdout {
		tmp, err = os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".*.partial")
		if err != nil {
			return err
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		out = tmp
	}
	counted := &countingWriter{w: out}
	start := time.Now()
	// pg_dump takes one snapshot: the dump is consistent while moor runs.
	dump := newPGCommand(ctx, pgDump, "moor backup", password, "--format=custom", "--no-password", "--dbname="+conn)
	dump.cmd.Stdout = counted
	if err := dump.run(); err != nil {
		return fmt.Errorf("backup failed, nothing written: %w", err)
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), output); err != nil {
			os.Remove(tmp.Name())
			tmp = nil
			return err
		}
		tmp = nil
	}
	where := "stdout"
	if !toStdout {
		where = output
	}
	fmt.Fprintf(dio.stderr, "backed up moor installation %s (schema version %d) to %s: %s in %s\n",
		installation, schema, where, byteSize(counted.n), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(dio.stderr, "note: %s\n", secretKeyNote(c))
	return nil
}

// byteSize writes n for people: 512 B, 1.5 KiB, 3.2 MiB.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// archiveTables lists the tables of a pg_restore -l listing, by name
// ("schema.table").
func archiveTables(toc string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(toc, "\n") {
		if strings.HasPrefix(line, ";") {
			continue
		}
		// "215; 1259 16385 TABLE public installation postgres"
		_, entry, ok := strings.Cut(line, "; ")
		if !ok {
			continue
		}
		f := strings.Fields(entry)
		if len(f) >= 5 && f[2] == "TABLE" && f[3] != "DATA" {
			out[f[3]+"."+f[4]] = true
		}
	}
	return out
}

// checkArchive reads the whole archive before anything changes: not a
// custom-format dump, not one of moor's, or damaged (truncated, a bad
// block) is an error.
func checkArchive(ctx context.Context, pgRestore, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	magic := make([]byte, 5)
	_, err = io.ReadFull(f, magic)
	f.Close()
	if err != nil || string(magic) != "PGDMP" {
		hint := ""
		if err == nil && (bytes.HasPrefix(magic, []byte("--")) || bytes.HasPrefix(magic, []byte("\n--"))) {
			hint = " (it looks like a plain SQL dump: psql reads those)"
		}
		return fmt.Errorf("%s is not a dump of moor backup: not a pg_dump custom-format archive%s; nothing was changed", name, hint)
	}
	list := newPGCommand(ctx, pgRestore, "moor restore", "", "--list", path)
	var toc bytes.Buffer
	list.cmd.Stdout = &toc
	if err := list.run(); err != nil {
		return fmt.Errorf("%s is not a readable dump (%w); nothing was changed", name, err)
	}
	tables := archiveTables(toc.String())
	if !tables["public.installation"] || !tables["public.schema_migrations"] {
		return fmt.Errorf("%s is a pg_dump archive but not of a moor database (no installation and schema_migrations tables); nothing was changed", name)
	}
	// The data too: pg_restore writes the script it would run, to nowhere.
	read := newPGCommand(ctx, pgRestore, "moor restore", "", "--file="+os.DevNull, path)
	if err := read.run(); err != nil {
		return fmt.Errorf("%s is damaged (%w); nothing was changed", name, err)
	}
	return nil
}

// describeObjects says what a database holds: "14 tables (api_keys,
// containers, ...), 5 functions (...)".
func describeObjects(objs []store.DBObject) string {
	byKind := map[string][]string{}
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o.String())
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		return len(byKind[kinds[i]]) > len(byKind[kinds[j]]) || len(byKind[kinds[i]]) == len(byKind[kinds[j]]) && kinds[i] < kinds[j]
	})
	var parts []string
	for _, k := range kinds {
		names := byKind[k]
		plural := k + "s"
		if len(names) == 1 {
			plural = k
		}
		if len(names) > 6 {
			names = append(names[:6:6], "...")
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", len(byKind[k]), plural, strings.Join(names, ", ")))
	}
	return strings.Join(parts, ", ")
}

func runRestore(args []string, usage io.Writer, dio dbIO) error {
	var force bool
	c, rest, err := parseWithArgs(restoreSpec, args, usage, func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "drop everything the database holds first (refused while a moor server runs on it)")
	})
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 0:
		return errors.New("which dump? moor restore FILE (or - for stdin)")
	case len(rest) > 1:
		return fmt.Errorf("unexpected argument %q: moor restore takes one file", rest[1])
	}
	file := rest[0]
	if file == "-" && dio.terminal(dio.stdin) {
		return errors.New("stdin is a terminal: give the dump as FILE, or redirect stdin (moor restore - < FILE)")
	}
	conn, password, pgRestore, err := pgSetup(c, "pg_restore", dio.getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// stdin is kept in a file first: it is read whole before anything
	// changes, then restored.
	path, name := file, file
	if file == "-" {
		name = "stdin"
		tmp, err := os.CreateTemp("", "moor-restore-*.dump")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		_, err = io.Copy(tmp, dio.stdin)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("reading stdin: %w", err)
		}
		path = tmp.Name()
	}
	if err := checkArchive(ctx, pgRestore, name, path); err != nil {
		return err
	}

	st, err := store.Open(ctx, c.DatabaseURL, newLogger(c, dio.stderr))
	if err != nil {
		return err
	}
	defer st.Close()
	objs, err := st.Objects(ctx)
	if err != nil {
		return err
	}
	if len(objs) > 0 && !force {
		what := "it"
		if id, err := st.InstallationID(ctx); err == nil {
			v, _ := st.SchemaVersion(ctx)
			what = fmt.Sprintf("it holds moor installation %s (schema version %d):", id, v)
		} else {
			what += " holds"
		}
		return fmt.Errorf("the database of MOOR_DATABASE_URL is not empty: %s %s; moor restore restores into an empty database "+
			"(createdb a new one), or drops all of that first with --force; nothing was changed", what, describeObjects(objs))
	}
	// Held until the end: no moor server runs on the database while it is
	// replaced, nor starts (its lock session is refused).
	release, err := st.LockOut(ctx)
	if errors.Is(err, store.ErrServing) {
		return fmt.Errorf("%w: stop it first (Ctrl-C where it runs, systemctl stop moor, docker compose stop moor), "+
			"then run moor restore again; nothing was changed", err)
	}
	if err != nil {
		return err
	}
	defer release()
	dropped := false
	if len(objs) > 0 {
		if err := st.DropObjects(ctx); err != nil {
			return fmt.Errorf("%w; nothing was changed", err)
		}
		dropped = true
		fmt.Fprintf(dio.stderr, "dropped what the database held (--force): %s\n", describeObjects(objs))
	}

	start := time.Now()
	restore := newPGCommand(ctx, pgRestore, "moor restore", password,
		"--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", "--no-password", "--dbname="+conn, path)
	if err := restore.run(); err != nil {
		if dropped {
			return fmt.Errorf("restore failed, in one transaction: nothing of the dump was restored, and the database is empty "+
				"(--force dropped what it held); run moor restore again once the cause is fixed: %w", err)
		}
		return fmt.Errorf("restore failed, in one transaction: nothing was changed: %w", err)
	}
	took := time.Since(start)

	installation, err := st.InstallationID(ctx)
	if err != nil {
		return fmt.Errorf("restored, but the installation id cannot be read: %w", err)
	}
	schema, err := st.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	counts, err := st.Counts(ctx, "containers", "projects", "users", "api_keys")
	if err != nil {
		return err
	}
	var what []string
	for _, t := range []struct{ table, name string }{{"containers", "containers"}, {"projects", "projects"}, {"users", "users"}, {"api_keys", "API keys"}} {
		if n, ok := counts[t.table]; ok {
			what = append(what, fmt.Sprintf("%d %s", n, t.name))
		}
	}
	fmt.Fprintf(dio.stdout, "restored moor installation %s (schema version %d) from %s in %s: %s\n",
		installation, schema, name, took.Round(time.Millisecond), strings.Join(what, ", "))
	latest, err := store.LatestMigration()
	if err != nil {
		return err
	}
	switch {
	case schema < latest:
		fmt.Fprintf(dio.stdout, "the schema is older than this moor's (version %d < %d): run moor migrate (moor serve also migrates when it starts)\n", schema, latest)
	case schema > latest:
		fmt.Fprintf(dio.stdout, "the schema is newer than this moor's (version %d > %d): it was dumped by a later moor; run that version (or a later one) on it\n", schema, latest)
	}
	fmt.Fprintf(dio.stdout, "note: %s\n", secretKeyNote(c))
	return nil
}
