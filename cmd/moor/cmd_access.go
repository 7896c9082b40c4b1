package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/moorhq/moor/internal/client"
	"github.com/moorhq/moor/internal/domain"
)

func (a *app) accessCommands() []*cobra.Command {
	return []*cobra.Command{a.loginCommand(), a.logoutCommand(), a.whoamiCommand(), a.keysCommand(), a.usersCommand()}
}

var completeRoles = cobra.FixedCompletions([]string{"admin", "operator", "viewer"}, cobra.ShellCompDirectiveNoFileComp)

// line reads one line of stdin (without its line ending); io.EOF only
// when stdin had nothing at all.
func (a *app) line() (string, error) {
	if a.in == nil {
		a.in = bufio.NewReader(a.stdin)
	}
	s, err := a.in.ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || s == "") {
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// prompt asks a question on the terminal and reads the answer.
func (a *app) prompt(question string) (string, error) {
	fmt.Fprint(a.stderr, question)
	return a.line()
}

// readSecret reads a password or key: typed on the terminal without echo
// (twice when confirm), else the first line of stdin, as in
// `echo "$PW" | moor users add ann`.
func (a *app) readSecret(what string, confirm bool) (string, error) {
	f, ok := a.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		s, err := a.line()
		if errors.Is(err, io.EOF) {
			return "", usagef("%s: nothing on stdin (type it on a terminal, or pipe it in)", what)
		}
		return s, err
	}
	read := func(q string) (string, error) {
		fmt.Fprint(a.stderr, q)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		return string(b), err
	}
	s, err := read(strings.ToUpper(what[:1]) + what[1:] + ": ")
	if err != nil || !confirm {
		return s, err
	}
	again, err := read("Again: ")
	if err != nil {
		return "", err
	}
	if again != s {
		return "", usagef("%s: the two entries differ", what)
	}
	return s, nil
}

func (a *app) loginCommand() *cobra.Command {
	var urlFlag, key string
	cmd := &cobra.Command{
		Use:   "login [URL]",
		Short: "Save moor's URL and an API key for the other commands",
		Long: `Save moor's URL and an API key in the config file (MOOR_CONFIG, default
~/.config/moor/config.json, mode 0600), after checking them with moor.

The URL comes from the argument, --url, MOOR_URL, or a prompt (default
` + defaultURL + `). The key from --key, MOOR_API_KEY, a prompt on the
terminal (not echoed), or the first line of stdin. Login takes an API key,
not a user name and password: a session is the dashboard's (a cookie that
lasts 12 hours), while a key is what scripts and this client use. Get one
from an admin (moor keys create NAME --role operator) or, for the first
admin, from the database: moor apikey create --name me --role admin.`,
		Example: `  moor login http://127.0.0.1:8080
  MOOR_DATABASE_URL=... moor apikey create --name me --role admin | moor login --url http://127.0.0.1:8080`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := configPath(a.getenv)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				if urlFlag != "" && urlFlag != args[0] {
					return usagef("two URLs: %q and --url %q", args[0], urlFlag)
				}
				urlFlag = args[0]
			}
			u := urlFlag
			if u == "" {
				def := a.getenv("MOOR_URL")
				if def == "" {
					if old, err := readConfigFile(path); err == nil && old != nil {
						def = old.URL
					}
				}
				if def == "" {
					def = defaultURL
				}
				u = def
				if isTerminal(a.stdin) && key == "" {
					answer, err := a.prompt(fmt.Sprintf("moor URL [%s]: ", def))
					if err != nil {
						return err
					}
					if answer = strings.TrimSpace(answer); answer != "" {
						u = answer
					}
				}
			}
			if _, err := client.ParseURL(u); err != nil {
				return usagef("%v", err)
			}
			if key == "" {
				key = a.getenv("MOOR_API_KEY")
			}
			if key == "" {
				if key, err = a.readSecret("API key", false); err != nil {
					return err
				}
			}
			if key = strings.TrimSpace(key); key == "" {
				return usagef("API key: empty")
			}
			cl, err := client.New(u, key)
			if err != nil {
				return usagef("%v", err)
			}
			cl.UserAgent = "moor-cli/" + version
			who, err := cl.Whoami(a.ctx)
			if err != nil {
				return err // nothing saved: a wrong key stays out of the file
			}
			if err := saveClientConfig(path, cl.URL(), key); err != nil {
				return err
			}
			if warn := plainHTTPWarning(cl.URL()); warn != "" {
				fmt.Fprintln(a.stderr, "moor: warning:", warn)
			}
			fmt.Fprintf(a.stdout, "logged in to %s as %s (%s); saved in %s\n", cl.URL(), who, who.Role, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&urlFlag, "url", "", "moor's `URL`, http(s)://host:port")
	cmd.Flags().StringVar(&key, "key", "", "the API `KEY` (shows in ps and shell history: prefer the prompt or stdin)")
	return cmd
}

// plainHTTPWarning warns of a key sent in clear to another machine.
func plainHTTPWarning(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return ""
	}
	host := u.Hostname()
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	return "the key travels unencrypted over http:// to " + host + "; use https:// beyond this machine"
}

func (a *app) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Delete the saved URL and key (the key itself stays valid: moor keys revoke)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := configPath(a.getenv)
			if err != nil {
				return err
			}
			removed, err := removeClientConfig(path)
			if err != nil {
				return err
			}
			if removed {
				fmt.Fprintf(a.stdout, "removed %s\n", path)
			} else {
				fmt.Fprintf(a.stdout, "not logged in (no %s)\n", path)
			}
			if a.getenv("MOOR_API_KEY") != "" {
				fmt.Fprintln(a.stderr, "moor: MOOR_API_KEY is still set in this shell")
			}
			return nil
		},
	}
}

func (a *app) whoamiCommand() *cobra.Command {
	var out outputFormat
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the moor and the key this client uses",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			who, err := cl.Whoami(a.ctx)
			if err != nil {
				return err
			}
			ver, _ := cl.Health(a.ctx)
			cfg, _ := a.config()
			if out.json() {
				return writeJSON(a.stdout, map[string]any{"url": cl.URL(), "version": ver, "actor": who})
			}
			t := newTable(a.stdout, "url:", cl.URL()+" (from "+cfg.URLFrom+")")
			t.row("moor:", ver)
			t.row("as:", who.String()+" ("+string(who.Role)+")")
			t.row("key:", maskKey(cfg.APIKey)+" (from "+cfg.KeyFrom+")")
			return t.flush()
		},
	}
	addOutput(cmd, &out, "url, version and actor")
	return cmd
}

func (a *app) keysCommand() *cobra.Command {
	cmd := groupCommand("keys", "List, create and revoke API keys (admins)", "")
	cmd.Aliases = []string{"apikeys"}
	var lsOut outputFormat
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List API keys (never the keys themselves)",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			keys, err := cl.APIKeys(a.ctx)
			if err != nil {
				return err
			}
			if lsOut.json() {
				if keys == nil {
					keys = []domain.APIKey{}
				}
				return writeJSON(a.stdout, keys)
			}
			now := time.Now()
			t := newTable(a.stdout, "NAME", "ROLE", "PROJECT", "CREATED", "LAST USED", "REVOKED")
			for _, k := range keys {
				used, revoked := "never", ""
				if k.LastUsedAt != nil {
					used = ago(*k.LastUsedAt, now)
				}
				if k.RevokedAt != nil {
					revoked = ago(*k.RevokedAt, now)
				}
				project := k.Project
				if project == "" {
					project = "(all)"
				}
				t.row(k.Name, string(k.Role), project, ago(k.CreatedAt, now), used, revoked)
			}
			return t.flush()
		},
	}
	addOutput(ls, &lsOut, "an array of keys")

	var role, keyProject string
	var createOut outputFormat
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API key; it is printed once, alone on stdout",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			if keyProject != "" {
				if err := domain.ValidateProjectName("--project", keyProject); err != nil {
					return usagef("%v", err)
				}
			}
			k, err := cl.CreateAPIKey(a.ctx, args[0], domain.Role(role), keyProject)
			if err != nil {
				return err
			}
			if createOut.json() {
				return writeJSON(a.stdout, k)
			}
			fmt.Fprintln(a.stdout, k.Key)
			where := ""
			if k.Project != "" {
				where = " in project " + k.Project + " only"
			}
			fmt.Fprintf(a.stderr, "moor: API key %s (%s%s) created; it is shown only this once\n", k.Name, k.Role, where)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "viewer", "the `ROLE`: admin, operator or viewer")
	create.Flags().StringVar(&keyProject, "project", "", "limit the key to `PROJECT`: it holds its role there and nothing elsewhere (for CI)")
	create.RegisterFlagCompletionFunc("role", completeRoles)
	addOutput(create, &createOut, "id, name, role and key")

	revoke := &cobra.Command{
		Use:   "revoke NAME...",
		Short: "Revoke API keys at once",
		Args:  minArgs("NAME"),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			cl, err := a.client()
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			keys, _ := cl.APIKeys(a.ctx)
			var out []string
			for _, k := range keys {
				if k.RevokedAt == nil {
					out = append(out, k.Name+"\t"+string(k.Role))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			return a.eachName(args, func(name string) error {
				if _, err := cl.RevokeAPIKey(a.ctx, name); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s: revoked\n", name)
				return nil
			})
		},
	}
	cmd.AddCommand(ls, create, revoke)
	return cmd
}

func (a *app) usersCommand() *cobra.Command {
	cmd := groupCommand("users", "List, add and remove dashboard users, set passwords (admins)", "")
	completeUsers := func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		cl, err := a.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		users, _ := cl.Users(a.ctx)
		var out []string
		for _, u := range users {
			out = append(out, u.Username+"\t"+string(u.Role))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	var lsOut outputFormat
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List users",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			users, err := cl.Users(a.ctx)
			if err != nil {
				return err
			}
			if lsOut.json() {
				if users == nil {
					users = []domain.User{}
				}
				return writeJSON(a.stdout, users)
			}
			now := time.Now()
			t := newTable(a.stdout, "USERNAME", "ROLE", "CREATED", "SESSIONS")
			for _, u := range users {
				t.row(u.Username, string(u.Role), ago(u.CreatedAt, now), fmt.Sprint(u.Sessions))
			}
			return t.flush()
		},
	}
	addOutput(ls, &lsOut, "an array of users")

	var role string
	add := &cobra.Command{
		Use:   "add USERNAME",
		Short: "Add a user; the password is asked for (or read from stdin)",
		Args:  exactArgs("USERNAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			pw, err := a.readSecret("password", true)
			if err != nil {
				return err
			}
			u, err := cl.AddUser(a.ctx, args[0], pw, domain.Role(role))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "added user %s (%s)\n", u.Username, u.Role)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "viewer", "the `ROLE`: admin, operator or viewer")
	add.RegisterFlagCompletionFunc("role", completeRoles)

	rm := &cobra.Command{
		Use:               "rm USERNAME...",
		Aliases:           []string{"remove"},
		Short:             "Remove users; their sessions end (never the last admin)",
		Args:              minArgs("USERNAME"),
		ValidArgsFunction: completeUsers,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			return a.eachName(args, func(name string) error {
				if err := cl.RemoveUser(a.ctx, name); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s: removed\n", name)
				return nil
			})
		},
	}

	passwd := &cobra.Command{
		Use:               "passwd USERNAME",
		Short:             "Set a user's password (asked for, or read from stdin); their sessions end",
		Args:              exactArgs("USERNAME"),
		ValidArgsFunction: completeUsers,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			pw, err := a.readSecret("new password", true)
			if err != nil {
				return err
			}
			if err := cl.SetPassword(a.ctx, args[0], pw, ""); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: password changed\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(ls, add, rm, passwd)
	return cmd
}
