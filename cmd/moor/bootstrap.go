package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// flagCommandSpec describes a server or bootstrap command, parsed with
// the standard flag package as before the client commands came: single-
// dash flags (-database-url) and MOOR_* defaults keep working in scripts,
// systemd units and compose files.
type flagCommandSpec struct {
	name  string   // "apikey create"
	usage string   // the synopsis
	about string   // what it does, for -h
	show  []string // the flags -h lists; nil: every flag
}

// The database and log settings: what a bootstrap command uses of the
// server's configuration. Every other server flag is still accepted (and
// ignored) for compatibility, but not listed by -h.
var dbFlags = []string{"database-url", "log-format", "log-level"}

var (
	serveSpec = flagCommandSpec{name: "serve", usage: "moor serve [flags]",
		about: "Serve the API, the dashboard, the DNS server and the Traefik provider.\nEach flag has a MOOR_* variable of the same meaning (docs/configuration.md); a flag wins."}
	migrateSpec = flagCommandSpec{name: "migrate", usage: "moor migrate [-down N]",
		about: "Apply pending database migrations (idempotent), or revert the last N.",
		show:  append([]string{"down"}, dbFlags...)}
	apikeySpec = flagCommandSpec{name: "apikey create", usage: "moor apikey create --name N [--role admin|operator|viewer]",
		about: "Create an API key in the database and print it once, alone on stdout: the first\nadmin's key, before any exists (afterwards: moor keys create).",
		show:  append([]string{"name", "role"}, dbFlags...)}
	userSpec = flagCommandSpec{name: "user add", usage: "moor user add --username U [--role admin|operator|viewer] < password",
		about: "Add a dashboard user in the database; the password is the first line of stdin\n(afterwards: moor users add).",
		show:  append([]string{"username", "role"}, dbFlags...)}
)

// printUsage is -h of a flag-parsed command: its synopsis, what it does
// and its own flags.
func (s flagCommandSpec) printUsage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", s.usage, s.about)
	if s.show == nil {
		fs.PrintDefaults()
		return
	}
	// PrintDefaults' format, for the listed flags only.
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(s.show, f.Name) {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.Name != "database-url" {
			line += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintln(w, line)
	})
}

// wantsHelp reports whether args ask for -h (before a "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help", "--h":
			return true
		}
	}
	return false
}

// flagCommand wraps a flag-parsed command in cobra, leaving its
// arguments to it. -h prints to stdout and exits 0.
func (a *app) flagCommand(spec flagCommandSpec, short string, run func(args []string, usage io.Writer) error) *cobra.Command {
	use := spec.name
	if i := strings.LastIndex(use, " "); i >= 0 {
		use = use[i+1:]
	}
	cmd := &cobra.Command{
		Use:                use,
		Short:              short,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			usage := a.stderr
			if wantsHelp(args) {
				usage = a.stdout
			}
			err := run(args, usage)
			switch {
			case errors.Is(err, flag.ErrHelp):
				return nil
			case err != nil:
				// Exit 1 whatever the cause, as these commands always did.
				return &exitError{exitUsage, err.Error()}
			}
			return nil
		},
	}
	cmd.SetHelpFunc(func(*cobra.Command, []string) { run([]string{"-h"}, a.stdout) })
	return cmd
}

func (a *app) serverCommands() []*cobra.Command {
	serveCmd := a.flagCommand(serveSpec, "Serve the API, dashboard, DNS and the Traefik provider", func(args []string, usage io.Writer) error {
		return serve(args, usage, a.stderr)
	})
	migrateCmd := a.flagCommand(migrateSpec, "Apply (or revert N) database migrations", func(args []string, usage io.Writer) error {
		return migrate(args, usage, a.stdout, a.stderr)
	})
	apikeyCmd := groupCommand("apikey", "Create an API key in the database (the first admin's)",
		"moor keys ls|create|revoke manage keys through the API")
	apikeyCmd.AddCommand(a.flagCommand(apikeySpec, "Print a new API key once (admin|operator|viewer)", func(args []string, usage io.Writer) error {
		return apikeyCreate(args, usage, a.stdout, a.stderr)
	}))
	userCmd := groupCommand("user", "Add a dashboard user in the database (password on stdin)",
		"moor users ls|add|rm|passwd manage users through the API")
	userCmd.AddCommand(a.flagCommand(userSpec, "Add a user; the password is read from stdin", func(args []string, usage io.Writer) error {
		return userAdd(args, usage, a.stdin, a.stdout, a.stderr)
	}))
	uninstallCmd := a.flagCommand(uninstallSpec, "Remove what this installation created on Docker (asks first)", func(args []string, usage io.Writer) error {
		return runUninstall(args, usage, uninstallIO{stdin: a.stdin, tty: isTerminal(a.stdin), stdout: a.stdout, stderr: a.stderr})
	})
	dio := dbIO{stdin: a.stdin, stdout: a.stdout, stderr: a.stderr, getenv: a.getenv, terminal: isTerminal}
	backupCmd := a.flagCommand(backupSpec, "Dump moor's database to a file (pg_dump; the secret key is not in it)", func(args []string, usage io.Writer) error {
		return runBackup(args, usage, dio)
	})
	restoreCmd := a.flagCommand(restoreSpec, "Restore a dump of moor backup into an empty database (pg_restore)", func(args []string, usage io.Writer) error {
		return runRestore(args, usage, dio)
	})
	versionCmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version (also: moor --version)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(a.stdout, version)
			return nil
		},
	}
	return []*cobra.Command{serveCmd, migrateCmd, apikeyCmd, userCmd, backupCmd, restoreCmd, uninstallCmd, versionCmd}
}
