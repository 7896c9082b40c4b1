package main

// The command line: cobra for the command tree, because the client
// commands need what the standard flag package lacks: flags after
// positional arguments (moor deploy testapp blog --wait), repeated
// -e K=V, -f/--follow pairs, per-command help that lists only that
// command's flags, and shell completion (bash, zsh, fish, PowerShell)
// including container and type names asked of moor. The server and
// bootstrap commands keep their standard flag parsing (single-dash
// flags, MOOR_* defaults), so scripts and units that call them are
// unchanged.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moorhq/moor/internal/client"
	"github.com/moorhq/moor/internal/domain"
)

// Exit codes: what happened, for scripts (docs/cli.md).
const (
	exitOK          = 0
	exitUsage       = 1 // bad command line, or a local problem (config file)
	exitRefused     = 2 // moor refused the input: 400, 409, 410, 413, 415, 422 ... (or would: a body too large)
	exitNotFound    = 3 // 404: no such container, type, key or user
	exitAuth        = 4 // no key, a bad key (401) or a role too low (403)
	exitServer      = 5 // moor unreachable, 5xx, an unexpected answer, or 429 after retrying
	exitFailed      = 6 // --wait: the container failed (or went another way)
	exitTimeout     = 7 // --wait: not there before --timeout
	exitInterrupted = 130
)

// usageError is a command line that cannot work.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// exitError carries its own exit code (missing key, --wait outcomes).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ue *usageError
	var ee *exitError
	var ae *client.APIError
	var unreachable *client.UnreachableError
	var proto *client.ProtocolError
	var tooLarge *client.TooLargeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &tooLarge):
		return exitRefused // what moor would answer 413
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ae):
		switch {
		case ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden:
			return exitAuth
		case ae.Status == http.StatusNotFound:
			return exitNotFound
		case ae.Status == http.StatusTooManyRequests || ae.Status >= 500 || ae.Status < 400:
			return exitServer
		}
		return exitRefused
	case errors.As(err, &unreachable), errors.As(err, &proto):
		return exitServer
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitUsage
}

// app is one run of the command line: its streams, environment and the
// client made on first use.
type app struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	cfg *clientConfig
	in  *bufio.Reader // stdin, buffered once for prompts
	cl  *client.Client
	// project is --project (else MOOR_PROJECT).
	project string
}

// isTerminal reports whether f is a terminal (a TTY, not a pipe or file).
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// config loads the client configuration once.
func (a *app) config() (*clientConfig, error) {
	if a.cfg == nil {
		c, err := loadClientConfig(a.getenv)
		if err != nil {
			return nil, err
		}
		a.cfg = c
	}
	return a.cfg, nil
}

// client is the API client of the configuration; without a key it says
// how to get one (exit 4).
func (a *app) client() (*client.Client, error) {
	if a.cl != nil {
		return a.cl, nil
	}
	c, err := a.config()
	if err != nil {
		return nil, err
	}
	if c.APIKey == "" {
		return nil, &exitError{exitAuth, "no API key: run moor login, or set MOOR_API_KEY (and MOOR_URL)"}
	}
	cl, err := client.New(c.URL, c.APIKey)
	if err != nil {
		return nil, usagef("%v (from %s)", err, c.URLFrom)
	}
	cl.UserAgent = "moor-cli/" + version
	project, from := a.project, "--project"
	if project == "" {
		project, from = a.getenv("MOOR_PROJECT"), "MOOR_PROJECT"
	}
	if project != "" {
		if err := domain.ValidateProjectName(from, project); err != nil {
			return nil, usagef("%v", err)
		}
	}
	a.cl = cl.InProject(project)
	return a.cl, nil
}

// ref is how messages name a container of the client's project:
// "NAME" in the default project, "PROJECT/NAME" elsewhere.
func ref(cl *client.Client, name string) string {
	return domain.ContainerRef{Project: cl.ContainerProject(), Name: name}.String()
}

// runMain runs the command line and returns the exit code.
func runMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return a.run(args)
}

func (a *app) run(args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(a.ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	if code == exitInterrupted {
		fmt.Fprintln(a.stderr, "moor: interrupted")
		return code
	}
	fmt.Fprintln(a.stderr, "moor:", errorText(err))
	return code
}

// errorText is the message of err with a hint for the usual causes.
func errorText(err error) string {
	msg := err.Error()
	var ae *client.APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusUnauthorized:
			msg += "; check the key (moor login, MOOR_API_KEY)"
		case http.StatusTooManyRequests:
			msg += "; try again later"
		}
	}
	var ue *usageError
	if errors.As(err, &ue) && strings.HasPrefix(msg, "unknown flag") {
		msg += " (see -h)"
	}
	return msg
}

// Command groups, as moor -h lists them.
const (
	groupContainers = "containers"
	groupInfo       = "info"
	groupAccess     = "access"
	groupServer     = "server"
)

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "moor",
		Short: "moor: a self-hosted control plane for Docker",
		Long: `moor: a self-hosted control plane for Docker.

The client commands talk to a running moor over its API. They read
MOOR_URL and MOOR_API_KEY, else the file "moor login" writes
(MOOR_CONFIG, default ~/.config/moor/config.json); a variable wins
over the file. The server and bootstrap commands talk to PostgreSQL
(MOOR_DATABASE_URL) and need no key: use them to create the first admin.
Exit codes: 0 ok, 1 usage, 2 refused (4xx), 3 not found, 4 auth,
5 server or unreachable, 6 failed (--wait), 7 timed out (--wait).
See docs/cli.md.`,
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(a.stderr)
			cmd.Help()
			return usagef("a command is required")
		},
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usagef("%v", err) })
	root.AddGroup(
		&cobra.Group{ID: groupContainers, Title: "Containers, projects and stacks:"},
		&cobra.Group{ID: groupInfo, Title: "Catalog and events:"},
		&cobra.Group{ID: groupAccess, Title: "Access (API keys, users, this client's login):"},
		&cobra.Group{ID: groupServer, Title: "Server and bootstrap (talk to PostgreSQL directly, no API key):"},
	)
	for _, c := range a.containerCommands() {
		c.GroupID = groupContainers
		c.Flags().StringVarP(&a.project, "project", "P", "", "the project of the container(s) (MOOR_PROJECT; default: the default project)")
		c.RegisterFlagCompletionFunc("project", a.completeProjects)
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.projectCommand(), a.stackCommand()} {
		c.GroupID = groupContainers
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.typesCommand(), a.eventsCommand()} {
		c.GroupID = groupInfo
		root.AddCommand(c)
	}
	for _, c := range a.accessCommands() {
		c.GroupID = groupAccess
		root.AddCommand(c)
	}
	for _, c := range a.serverCommands() {
		c.GroupID = groupServer
		root.AddCommand(c)
	}
	return root
}

// noArgs refuses positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		if cmd.HasSubCommands() {
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			cmd.SuggestionsMinimumDistance = 2
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return usagef("%s", msg)
		}
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// groupCommand is a command that only holds others: run alone it shows
// its help and exits 1, like moor alone; hint follows an unknown
// subcommand's error.
func groupCommand(use, short, hint string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			err := noArgs(cmd, args)
			if err != nil && hint != "" {
				err = usagef("%v; %s", err, hint)
			}
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			cmd.Help()
			return usagef("%s needs a command", cmd.CommandPath())
		},
	}
}

// exactArgs wants exactly the named arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s needs %s, got %d argument(s); see %s -h", cmd.CommandPath(), strings.Join(names, " "), len(args), cmd.CommandPath())
		}
		return nil
	}
}

// minArgs wants at least one name.
func minArgs(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usagef("%s needs at least one %s; see %s -h", cmd.CommandPath(), name, cmd.CommandPath())
		}
		return nil
	}
}

// completeFrom completes with the names list asks of moor (in at most
// 3 s); quiet when it cannot (no key, moor away).
func (a *app) completeFrom(list func(ctx context.Context, cl *client.Client) ([]string, error)) ([]string, cobra.ShellCompDirective) {
	cl, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(a.ctx, 3*time.Second)
	defer cancel()
	out, err := list(ctx, cl)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// withTimeout is ctx ended after d (d <= 0: never), for --timeout.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
