package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moorhq/moor/internal/client"
	"github.com/moorhq/moor/internal/domain"
)

// stackCommand is `moor stack`: compose files deployed into a project
// (docs/stacks.md).
func (a *app) stackCommand() *cobra.Command {
	cmd := groupCommand("stack", "Deploy, list, show and remove compose stacks (a compose file, one container per service)", "")
	cmd.Aliases = []string{"stacks"}
	cmd.Long = `A stack is a compose file deployed into a project: one container per
service, named STACK-SERVICE, reaching the others by service name.
"moor stack deploy" creates it, or updates it when it exists: only the
services whose definition changed are replaced. The stack commands act on
one project: --project/-P, else MOOR_PROJECT, else the default project.
See docs/stacks.md.`
	cmd.PersistentFlags().StringVarP(&a.project, "project", "P", "", "the project of the stack (MOOR_PROJECT; default: the default project)")
	cmd.RegisterFlagCompletionFunc("project", a.completeProjects)
	cmd.AddCommand(a.stackLsCommand(), a.stackDeployCommand(), a.stackShowCommand(), a.stackRmCommand())
	return cmd
}

// stackArg checks a stack name given on the command line.
func stackArg(name string) error {
	if err := domain.ValidateName(name); err != nil {
		return usagef("NAME %q: %s", name, strings.TrimPrefix(err.Error(), "name: "))
	}
	return nil
}

// stackRef names a stack of cl's project as messages do: "stack shop", or
// "stack p/shop" outside the default project.
func stackRef(cl *client.Client, name string) string { return "stack " + ref(cl, name) }

// completeStacks completes the first argument with the project's stacks.
func (a *app) completeStacks(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.completeFrom(func(ctx context.Context, cl *client.Client) (out []string, err error) {
		sts, err := cl.Stacks(ctx)
		for _, st := range sts {
			out = append(out, fmt.Sprintf("%s\t%d services", st.Name, len(st.Services)))
		}
		return out, err
	})
}

func (a *app) stackLsCommand() *cobra.Command {
	var out outputFormat
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the stacks of a project: their services, how many run, when last deployed",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			sts, err := cl.Stacks(a.ctx)
			if err != nil {
				return err
			}
			switch {
			case out.json():
				if sts == nil {
					sts = []domain.Stack{}
				}
				return writeJSON(a.stdout, sts)
			case quiet:
				for _, st := range sts {
					fmt.Fprintln(a.stdout, st.Name)
				}
				return nil
			}
			t := newTable(a.stdout, "NAME", "SERVICES", "RUNNING/TOTAL", "UPDATED")
			now := time.Now()
			for _, st := range sts {
				var names []string
				running := 0
				for _, s := range st.Services {
					names = append(names, s.Name)
					if s.Status == domain.StatusRunning {
						running++
					}
				}
				count := fmt.Sprintf("%d/%d", running, len(st.Services))
				if st.Removing {
					count += " (removing)"
				}
				t.row(st.Name, truncate(strings.Join(names, ","), 48), count, ago(st.UpdatedAt, now))
			}
			return t.flush()
		},
	}
	addOutput(cmd, &out, "an array of stacks as the API shows them")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print names only")
	return cmd
}

// readCompose reads the compose file -f names ("-": stdin), refusing
// locally what cannot work.
func (a *app) readCompose(path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(a.stdin)
		path = "(stdin)"
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", usagef("-f %s: cannot read the compose file: %v", path, err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", usagef("-f %s: the compose file is empty", path)
	}
	return string(b), nil
}

func (a *app) stackDeployCommand() *cobra.Command {
	var (
		file          string
		wait          bool
		timeout       time.Duration
		removeVolumes bool
		out           outputFormat
	)
	cmd := &cobra.Command{
		Use:   "deploy NAME -f FILE",
		Short: "Deploy a compose file as a stack, or re-deploy it: only the services that changed are replaced",
		Long: `Deploy a compose file as the stack NAME (a DNS label): created when the
project has no stack of that name, updated otherwise (as "docker compose
up" after editing the file): a service whose definition changed is
replaced one replica at a time, one unchanged is left running, a new one
is created and one gone from the file is removed (its volumes kept unless
--remove-volumes). It prints what happened to each service. With --wait,
it follows every service's container until it runs (exit 0) or one fails
(exit 6, with moor's reason).`,
		Example: `  moor stack deploy shop -f compose.yml --wait
  moor stack deploy shop -f compose.yml -P lab
  cat compose.yml | moor stack deploy shop -f -`,
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeStacks,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := stackArg(name); err != nil {
				return err
			}
			if file == "" {
				return usagef("%s needs the compose file: -f FILE (- for stdin)", cmd.CommandPath())
			}
			compose, err := a.readCompose(file)
			if err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			before, err := cl.Stack(a.ctx, name)
			exists := err == nil
			if err != nil && !client.IsStatus(err, 404) {
				return err
			}
			if !exists && removeVolumes {
				return usagef("--remove-volumes: %s does not exist yet, so no service is removed", stackRef(cl, name))
			}
			var st domain.Stack
			var changes []serviceChange
			_, err = a.following(cl, wait, timeout, func() error {
				if exists {
					st, err = cl.UpdateStack(a.ctx, name, compose, removeVolumes)
				} else {
					st, err = cl.CreateStack(a.ctx, name, compose)
				}
				changes = stackChanges(before, st)
				return err
			}, func(w *waiter) []waitGoal {
				if !out.json() { // JSON: the stack once there, below
					a.printChanges(cl, st, changes, out)
				}
				var goals []waitGoal
				for _, ch := range changes {
					if ch.goal != nil {
						goals = append(goals, *ch.goal)
					}
				}
				return goals
			})
			var tl *client.TooLargeError
			if errors.As(err, &tl) {
				return fmt.Errorf("-f %s: the compose file is too large for moor (%w); make it smaller, or split it into several stacks", file, err)
			}
			switch {
			case err != nil:
				return err
			case !wait:
				a.printChanges(cl, st, changes, out)
			case out.json():
				if st, err = cl.Stack(a.ctx, name); err != nil {
					return err
				}
				return writeJSON(a.stdout, st)
			default:
				fmt.Fprintf(a.stdout, "%s: running\n", stackRef(cl, name))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "the compose `FILE` (- reads it from stdin)")
	f.BoolVar(&removeVolumes, "remove-volumes", false, "the services gone from the file lose their volumes too")
	f.BoolVar(&wait, "wait", false, "follow every service's container until it runs, or one fails")
	f.DurationVar(&timeout, "timeout", defaultWaitTimeout, "with --wait: give up after this long (exit 7)")
	addOutput(cmd, &out, "the stack as moor answered the deploy")
	return cmd
}

// serviceChange is what a deploy did to one service, and what --wait
// waits for (nil: nothing).
type serviceChange struct {
	service, what string
	goal          *waitGoal
}

// stackChanges compares the stack before a deploy (zero: it did not
// exist) with moor's answer: each service created, updated (its hash
// changed), unchanged or removed, and the goal --wait follows it to.
func stackChanges(before, after domain.Stack) []serviceChange {
	prev := map[string]domain.StackService{}
	for _, s := range before.Services {
		prev[s.Name] = s
	}
	containers := map[string]domain.Container{}
	for _, c := range after.Containers {
		containers[c.Name] = c
	}
	// A service others wait for with service_completed_successfully is
	// done once it ran to completion.
	completes := map[string]bool{}
	for _, s := range after.Services {
		for _, d := range s.DependsOn {
			completes[d.Service] = completes[d.Service] || d.Condition == domain.DependsCompleted
		}
	}
	var out []serviceChange
	for _, s := range after.Services {
		c := containers[s.Container]
		p, existed := prev[s.Name]
		existed = existed && p.DesiredState != domain.DesiredRemoved
		ch := serviceChange{service: s.Name}
		switch {
		case s.DesiredState == domain.DesiredRemoved:
			ch.what = "removed"
			if !existed {
				ch.what = "removing" // already, by an earlier deploy
			}
			ch.goal = &waitGoal{name: s.Container, gone: true, since: c.UpdatedAt}
		case !existed:
			ch.what = "created"
			ch.goal = &waitGoal{name: s.Container, status: domain.StatusRunning, replicas: s.Replicas}
		case p.Hash != s.Hash:
			ch.what = "updated"
			g := rolledOut(c)
			ch.goal = &g
		default:
			ch.what = "unchanged"
			if p.Replicas != s.Replicas {
				ch.what = fmt.Sprintf("unchanged, scaled from %d to %d replicas", p.Replicas, s.Replicas)
			}
			want := domain.StatusRunning
			if s.DesiredState == domain.DesiredStopped {
				want = domain.StatusStopped
			}
			ch.goal = &waitGoal{name: s.Container, status: want, replicas: s.Replicas, generation: c.Generation}
		}
		if ch.goal != nil && ch.goal.status == domain.StatusRunning {
			ch.goal.completed = completes[s.Name]
		}
		delete(prev, s.Name)
		out = append(out, ch)
	}
	for _, s := range prev { // gone at once (its container was already removed)
		if s.DesiredState != domain.DesiredRemoved {
			out = append(out, serviceChange{service: s.Name, what: "removed"})
		}
	}
	slices.SortStableFunc(out, func(a, b serviceChange) int { return strings.Compare(a.service, b.service) })
	return out
}

// printChanges shows a deploy's answer: a line per service on stdout, or
// the stack as JSON.
func (a *app) printChanges(cl *client.Client, st domain.Stack, changes []serviceChange, out outputFormat) {
	if out.json() {
		writeJSON(a.stdout, st)
		return
	}
	for _, ch := range changes {
		fmt.Fprintf(a.stdout, "%s: service %s: %s\n", stackRef(cl, st.Name), ch.service, ch.what)
	}
}

func (a *app) stackShowCommand() *cobra.Command {
	return showCommand(a, showSpec[domain.Stack]{
		use: "show NAME", aliases: []string{"inspect"}, short: "Show a stack: its services, their containers' status, ports and host names",
		jsonHelp: "the stack as the API shows it (with its containers)", complete: a.completeStacks, check: stackArg,
		get: func(ctx context.Context, cl *client.Client, name string) (domain.Stack, error) {
			return cl.Stack(ctx, name)
		},
		print: printStack,
	})
}

// printStack shows a stack as "key: value" lines and a table of its
// services.
func printStack(w io.Writer, st domain.Stack) {
	t := newTable(w, "name:", st.Name)
	t.row("project:", st.Project)
	if st.Removing {
		t.row("removing:", "yes")
	}
	t.row("created:", st.CreatedAt.Local().Format(time.RFC3339)+" by "+st.CreatedBy)
	t.row("updated:", st.UpdatedAt.Local().Format(time.RFC3339))
	t.flush()
	fmt.Fprintln(w)
	containers := map[string]domain.Container{}
	for _, c := range st.Containers {
		containers[c.Name] = c
	}
	t = newTable(w, "SERVICE", "CONTAINER", "STATUS", "READY", "PORTS", "HOST", "URL")
	for _, s := range st.Services {
		c, ok := containers[s.Container]
		if !ok { // gone between the two reads moor made
			t.row(s.Name, s.Container, string(s.Status), "", "", "", "")
			continue
		}
		t.row(s.Name, c.Name, statusText(c), ready(c), strings.Join(portsText(c), ", "), c.DNS.Host, c.URL)
	}
	t.flush()
}

// portsText is a container's ports: each published one as docker ps shows
// it, the others as PORT/PROTOCOL.
func portsText(c domain.Container) []string {
	out := domain.PublishedStrings(c.Published)
	for _, p := range c.Ports {
		published := slices.ContainsFunc(c.Published, func(pp domain.PublishedPort) bool {
			return pp.Port == p.Port && strings.EqualFold(pp.Protocol, p.Protocol)
		})
		if !published {
			out = append(out, strconv.Itoa(p.Port)+"/"+p.Protocol)
		}
	}
	return out
}

func (a *app) stackRmCommand() *cobra.Command {
	var volumes, wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:               "rm NAME...",
		Aliases:           []string{"remove"},
		Short:             "Remove stacks: every service's container (their volumes too with --volumes)",
		Args:              minArgs("NAME"),
		ValidArgsFunction: a.completeStacks,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range args {
				if err := stackArg(n); err != nil {
					return err
				}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			return a.each(args, func(n string) string { return stackRef(cl, n) }, func(name string) error {
				var st domain.Stack
				_, err := a.following(cl, wait, timeout, func() (err error) {
					st, err = cl.DeleteStack(a.ctx, name, volumes)
					return err
				}, func(w *waiter) []waitGoal {
					var goals []waitGoal
					for _, c := range st.Containers {
						goals = append(goals, waitGoal{name: c.Name, gone: true, since: c.UpdatedAt})
					}
					return goals
				})
				if err != nil {
					return err
				}
				if wait {
					fmt.Fprintf(a.stdout, "%s: removed\n", stackRef(cl, name))
				} else {
					fmt.Fprintf(a.stdout, "%s: removing %d container(s)\n", stackRef(cl, name), len(st.Containers))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&volumes, "volumes", false, "remove the services' volumes too (kept otherwise)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every container of the stack is gone")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultWaitTimeout, "with --wait: give up after this long (exit 7)")
	return cmd
}
