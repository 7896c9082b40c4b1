package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moorhq/moor/internal/client"
	"github.com/moorhq/moor/internal/domain"
)

// defaultWaitTimeout bounds --wait: a pull of a large image on a slow link
// takes minutes, a start seconds.
const defaultWaitTimeout = 5 * time.Minute

func (a *app) containerCommands() []*cobra.Command {
	return []*cobra.Command{
		a.lsCommand(), a.inspectCommand(), a.deployCommand(),
		a.changeCommand("start", "Start stopped containers", "running"),
		a.changeCommand("stop", "Stop containers (their volumes stay)", "stopped"),
		a.changeCommand("restart", "Restart every replica, one at a time", "running"),
		a.scaleCommand(), a.updateCommand(), a.redeployCommand(), a.rmCommand(), a.logsCommand(), a.historyCommand(), a.credsCommand(),
	}
}

// completeContainers completes container names, asking moor.
func (a *app) completeContainers(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return a.completeFrom(func(ctx context.Context, cl *client.Client) (out []string, err error) {
		cs, err := cl.Containers(ctx)
		for _, c := range cs {
			if !slices.Contains(args, c.Name) {
				out = append(out, c.Name+"\t"+c.Type+", "+string(c.Status))
			}
		}
		return out, err
	})
}

// completeOneContainer completes the first argument only.
func (a *app) completeOneContainer(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.completeContainers(cmd, args, toComplete)
}

func (a *app) completeTypes(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.completeFrom(func(ctx context.Context, cl *client.Client) (out []string, err error) {
		ts, err := cl.Types(ctx, "")
		for _, t := range ts {
			out = append(out, t.ID+"\t"+t.Title)
		}
		return out, err
	})
}

func (a *app) lsCommand() *cobra.Command {
	var out outputFormat
	var quiet, all bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list", "ps"},
		Short:   "List the containers of a project (-P), or of every project (-A)",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all && cmd.Flags().Changed("project") {
				return usagef("--all-projects and --project: give one or the other")
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			var cs []domain.Container
			if all {
				cs, err = allContainers(a.ctx, cl)
			} else {
				cs, err = cl.Containers(a.ctx)
			}
			if err != nil {
				return err
			}
			switch {
			case out.json():
				if cs == nil {
					cs = []domain.Container{}
				}
				return writeJSON(a.stdout, cs)
			case quiet:
				for _, c := range cs {
					if all {
						fmt.Fprintln(a.stdout, c.Ref())
					} else {
						fmt.Fprintln(a.stdout, c.Name)
					}
				}
				return nil
			}
			header := []string{"NAME", "TYPE", "STATUS", "READY", "PUBLISHED", "URL", "CREATED"}
			if all {
				header = append([]string{"PROJECT"}, header...)
			}
			t := newTable(a.stdout, header...)
			now := time.Now()
			for _, c := range cs {
				row := []string{c.Name, c.Type, statusText(c), ready(c), strings.Join(domain.PublishedStrings(c.Published), ", "), c.URL, ago(c.CreatedAt, now)}
				if all {
					row = append([]string{c.Project}, row...)
				}
				t.row(row...)
			}
			return t.flush()
		},
	}
	addOutput(cmd, &out, "an array of containers as the API shows them")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print names only (PROJECT/NAME outside the default project with -A)")
	cmd.Flags().BoolVarP(&all, "all-projects", "A", false, "the containers of every project, with a PROJECT column")
	return cmd
}

// allContainers lists the containers of every project, project by project
// in the order moor lists the projects. A project deleted between the two
// reads is skipped.
func allContainers(ctx context.Context, cl *client.Client) ([]domain.Container, error) {
	ps, err := cl.Projects(ctx)
	if err != nil {
		return nil, err
	}
	var out []domain.Container
	for _, p := range ps {
		cs, err := cl.InProject(p.Name).Containers(ctx)
		if client.IsStatus(err, http.StatusNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("project %s: %w", p.Name, err)
		}
		for i := range cs {
			if cs[i].Project == "" {
				cs[i].Project = p.Name
			}
		}
		out = append(out, cs...)
	}
	return out, nil
}

// statusText is the status with its reason, shortened for a table.
func statusText(c domain.Container) string {
	s := string(c.Status)
	if c.StatusReason != "" && c.Status != domain.StatusRunning {
		s += " (" + truncate(c.StatusReason, 48) + ")"
	}
	return s
}

// ready counts the replicas that take traffic out of those asked for:
// "2/3".
func ready(c domain.Container) string {
	n := 0
	for _, in := range c.Instances {
		if takesTraffic(in) {
			n++
		}
	}
	return fmt.Sprintf("%d/%d", n, c.Replicas)
}

// takesTraffic is what Traefik's routes wait for (provider/build.go): a
// running replica whose health check, if any, is not failing or starting.
func takesTraffic(in domain.Instance) bool {
	return in.Status == domain.StatusRunning && in.Health != "starting" && in.Health != "unhealthy"
}

func (a *app) inspectCommand() *cobra.Command {
	return showCommand(a, showSpec[domain.Container]{
		use: "inspect NAME", aliases: []string{"show"}, short: "Show one container: status, replicas, addresses, environment",
		jsonHelp: "the container as the API shows it", complete: a.completeOneContainer,
		get: func(ctx context.Context, cl *client.Client, name string) (domain.Container, error) {
			return cl.Container(ctx, name)
		},
		print: printContainer,
	})
}

// printContainer shows a container as "key: value" lines and a table of
// its replicas.
func printContainer(w io.Writer, c domain.Container) {
	t := newTable(w, "name:", c.Name)
	t.row("type:", c.Type+" ("+c.Image+")")
	t.row("status:", string(c.Status))
	if c.StatusReason != "" {
		t.row("reason:", c.StatusReason)
	}
	t.row("desired:", string(c.DesiredState))
	t.row("replicas:", ready(c)+" ready")
	t.row("url:", c.URL)
	t.row("dns:", strings.TrimPrefix(c.DNS.Host+", "+c.DNS.Container, ", "))
	var ports []string
	for _, p := range c.Ports {
		s := fmt.Sprintf("%s %d/%s", p.Name, p.Port, p.Protocol)
		if p.HTTP {
			s += " (http)"
		}
		ports = append(ports, s)
	}
	t.row("ports:", strings.Join(ports, ", "))
	t.row("published:", strings.Join(domain.PublishedStrings(c.Published), ", "))
	var env []string
	if c.Env != nil {
		for _, k := range slices.Sorted(maps.Keys(c.Env)) {
			env = append(env, k+"="+c.Env[k])
		}
	} else {
		env = c.EnvNames // a viewer sees names only
	}
	t.row("env:", strings.Join(env, " "))
	t.row("created:", c.CreatedAt.Local().Format(time.RFC3339)+" by "+c.CreatedBy)
	t.flush()
	if len(c.Instances) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "REPLICA", "STATUS", "HEALTH", "ADDRESS", "NODE", "ID", "SINCE")
		now := time.Now()
		for _, in := range c.Instances {
			t.row(strconv.Itoa(in.Index), string(in.Status), in.Health, in.InternalIP, in.Node, truncate(in.RuntimeID, 12), ago(in.UpdatedAt, now))
		}
		t.flush()
	}
}

func (a *app) deployCommand() *cobra.Command {
	var (
		env      []string
		replicas int
		aliases  []string
		path     string
		httpPort int
		publish  []string
		wait     bool
		timeout  time.Duration
		out      outputFormat
	)
	cmd := &cobra.Command{
		Use:   "deploy TYPE NAME",
		Short: "Deploy a container of a catalog type under a name",
		Long: `Deploy a container of a catalog type (moor types) under a name (a DNS
label). With --wait, follow the image pull and the deploy steps until
the container runs (exit 0) or fails (exit 6, with moor's reason).`,
		Example: `  moor deploy testapp blog --wait
  moor deploy testapp blog -e MODE=worker -e GREETING= --replicas 2
  moor deploy postgres db -p 15432:5432          # 127.0.0.1:15432 on the host (moor's default address)
  moor deploy testapp web -p 0.0.0.0:30080:http  # every IPv4 address, the type's port named http`,
		Args:              exactArgs("TYPE", "NAME"),
		ValidArgsFunction: a.completeTypes,
		RunE: func(cmd *cobra.Command, args []string) error {
			req := domain.CreateRequest{Type: args[0], Name: args[1], Aliases: aliases, Path: path, HTTPPort: httpPort}
			var err error
			if req.Env, req.LeaveEmpty, err = parseEnvFlags(env); err != nil {
				return err
			}
			if req.Publish, err = parsePublishFlags(publish); err != nil {
				return err
			}
			if cmd.Flags().Changed("replicas") {
				req.Replicas = &replicas
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			c, err := a.change(cl, wait, timeout, func() (domain.Container, error) { return cl.Create(a.ctx, req) },
				func(w *waiter, c domain.Container) (waitGoal, bool) {
					w.progress.stepf("%s: deploying %s (%s)", ref(cl, c.Name), c.Type, c.Image)
					return waitGoal{name: c.Name, status: domain.StatusRunning, replicas: c.Replicas}, true
				})
			if err != nil {
				return err
			}
			return a.printResult(c, out, wait)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&env, "env", "e", nil, "set a variable of the type, `KEY=VALUE` (repeat it; KEY= leaves it empty: no default, nothing generated)")
	f.IntVar(&replicas, "replicas", 1, "number of replicas, `N` from 0 to 20")
	f.StringArrayVar(&aliases, "alias", nil, "another `HOST` name Traefik routes to it (repeat it)")
	f.StringVar(&path, "path", "", "route only this path `PREFIX`")
	f.IntVar(&httpPort, "http-port", 0, "the type's TCP `PORT` Traefik routes to (default: the type's choice)")
	f.StringArrayVarP(&publish, "publish", "p", nil, publishUsage)
	f.BoolVar(&wait, "wait", false, "follow the pull and deploy until the container runs or fails")
	f.DurationVar(&timeout, "timeout", defaultWaitTimeout, "with --wait: give up after this long (exit 7)")
	addOutput(cmd, &out, "the container as the API shows it")
	return cmd
}

// printResult shows the container a change left: one line, or JSON.
func (a *app) printResult(c domain.Container, out outputFormat, waited bool) error {
	if out.json() {
		return writeJSON(a.stdout, c)
	}
	line := fmt.Sprintf("%s: %s", c.Ref(), c.Status)
	if !waited && c.Status != domain.StatusRunning && c.Status != domain.StatusStopped {
		line += fmt.Sprintf(" (desired: %s)", c.DesiredState)
	}
	if c.URL != "" && c.Status == domain.StatusRunning {
		line += " " + c.URL
	}
	fmt.Fprintln(a.stdout, line)
	return nil
}

// changeCommand is start, stop or restart; want is the status --wait
// waits for ("": no --wait).
func (a *app) changeCommand(action, short string, want domain.Status) *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:               action + " NAME...",
		Short:             short,
		Args:              minArgs("NAME"),
		ValidArgsFunction: a.completeContainers,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			do := map[string]func(context.Context, string) (domain.Container, error){
				"start": cl.Start, "stop": cl.Stop, "restart": cl.Restart,
			}[action]
			return a.eachContainer(cl, args, func(name string) error {
				c, err := a.change(cl, wait, timeout, func() (domain.Container, error) { return do(a.ctx, name) },
					func(_ *waiter, c domain.Container) (waitGoal, bool) {
						goal := waitGoal{name: name, status: want, since: c.UpdatedAt, replicas: c.Replicas}
						if action == "restart" {
							// The status stays running throughout: the restart
							// is done once moor made its generation real.
							goal.generation = c.Generation
						}
						return goal, true
					})
				if err != nil {
					return err
				}
				return a.printResult(c, "table", wait)
			})
		},
	}
	if want != "" {
		cmd.Flags().BoolVar(&wait, "wait", false, "wait until the container is "+string(want))
		cmd.Flags().DurationVar(&timeout, "timeout", defaultWaitTimeout, "with --wait: give up after this long (exit 7)")
	}
	return cmd
}

// eachName runs fn for every name, going on after a failure (reported on
// stderr); the first failure decides the exit code.
func (a *app) eachName(names []string, fn func(string) error) error {
	return a.each(names, func(n string) string { return n }, fn)
}

// eachContainer is eachName for names of containers of cl's project,
// which failures name as PROJECT/NAME outside the default project.
func (a *app) eachContainer(cl *client.Client, names []string, fn func(string) error) error {
	return a.each(names, func(n string) string { return ref(cl, n) }, fn)
}

func (a *app) each(names []string, label func(string) string, fn func(string) error) error {
	var first error
	for _, n := range names {
		if err := fn(n); err != nil {
			if errors.Is(err, context.Canceled) || len(names) == 1 {
				return err
			}
			fmt.Fprintf(a.stderr, "moor: %s: %s\n", label(n), errorText(err))
			if first == nil {
				first = &exitError{exitCode(err), fmt.Sprintf("%s: %v", label(n), err)}
			}
		}
	}
	return first
}

func (a *app) scaleCommand() *cobra.Command {
	var wait bool
	var timeout time.Duration
	var out outputFormat
	cmd := &cobra.Command{
		Use:               "scale NAME REPLICAS",
		Short:             "Set the number of replicas (0 to 20)",
		Args:              exactArgs("NAME", "REPLICAS"),
		ValidArgsFunction: a.completeOneContainer,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				return usagef("REPLICAS: must be a whole number, got %q", args[1])
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			c, err := a.change(cl, wait, timeout, func() (domain.Container, error) { return cl.Scale(a.ctx, args[0], n) },
				func(_ *waiter, c domain.Container) (waitGoal, bool) {
					want := domain.StatusRunning
					if c.DesiredState == domain.DesiredStopped {
						want = domain.StatusStopped
					}
					return waitGoal{name: c.Name, status: want, since: c.UpdatedAt, replicas: n, generation: c.Generation}, true
				})
			if err != nil {
				return err
			}
			return a.printResult(c, out, wait)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every replica runs")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultWaitTimeout, "with --wait: give up after this long (exit 7)")
	addOutput(cmd, &out, "the container as the API shows it")
	return cmd
}

func (a *app) updateCommand() *cobra.Command {
	var env, publish []string
	var noPublish bool
	var image string
	var replicas int
	var wait bool
	var timeout time.Duration
	var out outputFormat
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a container's variables, image tag, replicas or published ports; its replicas are replaced one at a time",
		Example: `  moor update blog -e MODE=worker
  moor update blog --image moor-testapp:v2 --wait
  moor update db -p 15433:5432    # the published ports become exactly these
  moor update db --no-publish     # publish nothing`,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeOneContainer,
		RunE: func(cmd *cobra.Command, args []string) error {
			var p domain.Patch
			var err error
			if p.Env, p.LeaveEmpty, err = parseEnvFlags(env); err != nil {
				return err
			}
			p.Image = image
			if cmd.Flags().Changed("replicas") {
				p.Replicas = &replicas
			}
			switch {
			case noPublish && len(publish) > 0:
				return usagef("--no-publish and -p: give one or the other")
			case noPublish:
				p.Publish = &[]domain.PublishRequest{}
			case len(publish) > 0:
				reqs, err := parsePublishFlags(publish)
				if err != nil {
					return err
				}
				p.Publish = &reqs
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			c, err := a.change(cl, wait, timeout, func() (domain.Container, error) { return cl.Update(a.ctx, args[0], p) },
				func(_ *waiter, c domain.Container) (waitGoal, bool) {
					return rolledOut(c), c.DesiredState == domain.DesiredRunning
				})
			if err != nil {
				return err
			}
			return a.printResult(c, out, wait)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&env, "env", "e", nil, "set a variable, `KEY=VALUE` (repeat it; KEY= leaves it empty)")
	f.StringVar(&image, "image", "", "another tag or digest of the container's image, `IMAGE:TAG`")
	f.StringArrayVarP(&publish, "publish", "p", nil, publishUsage+"; replaces every published port")
	f.BoolVar(&noPublish, "no-publish", false, "publish no port on the host any more")
	f.IntVar(&replicas, "replicas", 1, "the number of replicas, `N`")
	f.BoolVar(&wait, "wait", false, "wait until every replica runs again")
	f.DurationVar(&timeout, "timeout", defaultWaitTimeout, "with --wait: give up after this long (exit 7)")
	addOutput(cmd, &out, "the container as the API shows it")
	return cmd
}

func (a *app) redeployCommand() *cobra.Command {
	var pull, wait bool
	var timeout time.Duration
	var out outputFormat
	cmd := &cobra.Command{
		Use:   "redeploy NAME",
		Short: "Replace every replica, one at a time; --pull pulls the image again first",
		Long: `Replace every replica of a container by a new one, one at a time as an
update does (each out of the routes until its successor is ready). With
--pull, moor pulls the image again first, even if the engine has it, so a
tag that moved (:latest) gets the new image; an image built or loaded on
the engine, from no registry, is not pulled (moor says so) and the
replicas are replaced with it. A stopped container is started.`,
		Example:           `  moor redeploy blog --pull --wait`,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeOneContainer,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			c, err := a.change(cl, wait, timeout, func() (domain.Container, error) { return cl.Redeploy(a.ctx, args[0], pull) },
				func(_ *waiter, c domain.Container) (waitGoal, bool) { return rolledOut(c), true })
			if err != nil {
				return err
			}
			return a.printResult(c, out, wait)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&pull, "pull", false, "pull the image again first, even if the engine has it")
	f.BoolVar(&wait, "wait", false, "follow the pull and wait until every replica is new and ready")
	f.DurationVar(&timeout, "timeout", defaultWaitTimeout, "with --wait: give up after this long (exit 7)")
	addOutput(cmd, &out, "the container as the API shows it")
	return cmd
}

// rolledOut is the goal of a rolling change (update, redeploy): moor has
// made its generation real and every replica runs.
func rolledOut(c domain.Container) waitGoal {
	return waitGoal{name: c.Name, status: domain.StatusRunning, since: c.UpdatedAt, replicas: c.Replicas, generation: c.Generation}
}

func (a *app) rmCommand() *cobra.Command {
	var keep, wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:               "rm NAME...",
		Aliases:           []string{"remove"},
		Short:             "Remove containers and, unless --keep-volumes, their volumes",
		Args:              minArgs("NAME"),
		ValidArgsFunction: a.completeContainers,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			return a.eachContainer(cl, args, func(name string) error {
				c, err := a.change(cl, wait, timeout, func() (domain.Container, error) { return cl.Remove(a.ctx, name, keep) },
					func(_ *waiter, c domain.Container) (waitGoal, bool) {
						return waitGoal{name: name, gone: true, since: c.UpdatedAt}, true
					})
				if err != nil {
					return err
				}
				if wait {
					fmt.Fprintf(a.stdout, "%s: removed\n", ref(cl, name))
					return nil
				}
				fmt.Fprintf(a.stdout, "%s: %s\n", ref(cl, name), c.Status)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&keep, "keep-volumes", false, "keep the container's volumes")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the container is gone")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultWaitTimeout, "with --wait: give up after this long (exit 7)")
	return cmd
}

func (a *app) logsCommand() *cobra.Command {
	var opts client.LogOptions
	cmd := &cobra.Command{
		Use:               "logs NAME",
		Short:             "Print a replica's log; -f follows it",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeOneContainer,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("tail") && opts.Tail < 1 {
				return usagef("--tail: must be at least 1, got %d", opts.Tail)
			}
			if opts.Replica < 0 {
				return usagef("--replica: must be 0 or more, got %d", opts.Replica)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			body, err := cl.Logs(a.ctx, args[0], opts)
			var ae *client.APIError
			if opts.Follow && errors.As(err, &ae) && ae.Field == "follow" {
				return &exitError{exitRefused, "this moor cannot follow logs (" + ae.Message + "): upgrade it, or run moor logs without -f"}
			}
			if err != nil {
				return err
			}
			defer body.Close()
			_, err = io.Copy(a.stdout, body)
			if err != nil && a.ctx.Err() != nil {
				return a.ctx.Err()
			}
			if err != nil {
				return &client.UnreachableError{URL: cl.URL(), Err: fmt.Errorf("log stream: %v", err)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines until the replica stops (Ctrl-C to end)")
	f.IntVar(&opts.Tail, "tail", 0, "the last `N` lines, 1 to 10000 (default: moor's, 200)")
	f.IntVar(&opts.Replica, "replica", 0, "which replica, by `INDEX`")
	return cmd
}

func (a *app) historyCommand() *cobra.Command {
	var out outputFormat
	var all bool
	cmd := &cobra.Command{
		Use:               "history NAME",
		Short:             "Show a container's deployment history (kept after removal); --all: of earlier containers of that name too",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeOneContainer,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			h, err := cl.History(a.ctx, args[0], all)
			if err != nil {
				return err
			}
			if out.json() {
				if h == nil {
					h = []domain.HistoryEntry{}
				}
				return writeJSON(a.stdout, h)
			}
			t := newTable(a.stdout, "TIME", "ACTION", "ACTOR", "DETAILS")
			for _, e := range h {
				var buf bytes.Buffer
				if json.Compact(&buf, e.Details) != nil {
					buf.Reset()
					buf.Write(e.Details)
				}
				d := buf.String()
				if d == "{}" || d == "null" {
					d = ""
				}
				t.row(e.Time.Local().Format(time.DateTime), e.Action, e.Actor, truncate(d, 80))
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also the history of earlier containers of the same name")
	addOutput(cmd, &out, "an array of history entries")
	return cmd
}

func (a *app) credsCommand() *cobra.Command {
	var out outputFormat
	cmd := &cobra.Command{
		Use:               "creds NAME",
		Aliases:           []string{"credentials"},
		Short:             "Show a container's secret values (operators and admins)",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeOneContainer,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			creds, err := cl.Credentials(a.ctx, args[0])
			if err != nil {
				return err
			}
			if out.json() {
				if creds == nil {
					creds = map[string]string{}
				}
				return writeJSON(a.stdout, creds)
			}
			t := newTable(a.stdout, "NAME", "VALUE")
			for _, k := range slices.Sorted(maps.Keys(creds)) {
				t.row(k, creds[k])
			}
			return t.flush()
		},
	}
	addOutput(cmd, &out, "an object of names and values")
	return cmd
}

const publishUsage = "publish one of the type's ports on the host, `[HOST_IP:]HOST_PORT:PORT` " +
	"(PORT: its number or name; HOST_IP: moor's default, 127.0.0.1 unless MOOR_PUBLISH_ADDR says otherwise; repeat it)"

// parsePublishFlags reads -p flags, [HOST_IP:]HOST_PORT:PORT as docker run
// takes them (an IPv6 HOST_IP in brackets); moor checks the rest.
func parsePublishFlags(flags []string) ([]domain.PublishRequest, error) {
	var out []domain.PublishRequest
	for _, f := range flags {
		rest, port, ok := cutLast(f, ":")
		if !ok || port == "" {
			return nil, usagef("-p %q: must be [HOST_IP:]HOST_PORT:PORT, e.g. 15432:5432 or 0.0.0.0:8080:http", f)
		}
		ip, hostPort, _ := cutLast(rest, ":")
		if hostPort == "" {
			hostPort, ip = rest, ""
		}
		n, err := strconv.Atoi(hostPort)
		if err != nil {
			return nil, usagef("-p %q: HOST_PORT must be a number, got %q", f, hostPort)
		}
		out = append(out, domain.PublishRequest{Port: domain.PortRef(port), HostPort: n, HostIP: strings.Trim(ip, "[]")})
	}
	return out, nil
}

// cutLast is strings.Cut at the last sep: ("", s, false) without one.
func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", s, false
	}
	return s[:i], s[i+len(sep):], true
}

// parseEnvFlags reads -e flags: KEY=VALUE sets a variable, KEY= leaves it
// empty (sent as null: no default, nothing generated).
func parseEnvFlags(flags []string) (env map[string]string, empty []string, err error) {
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, nil, usagef("-e %q: must be KEY=VALUE (KEY= leaves the variable empty)", kv)
		}
		if v == "" {
			empty = append(empty, k)
			continue
		}
		if env == nil {
			env = map[string]string{}
		}
		env[k] = v
	}
	return env, empty, nil
}
