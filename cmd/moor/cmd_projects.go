package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/moorhq/moor/internal/client"
	"github.com/moorhq/moor/internal/domain"
)

// projectCommand is `moor project`: the groups containers belong to, each
// with its own network, DNS names and quotas (docs/projects.md).
func (a *app) projectCommand() *cobra.Command {
	cmd := groupCommand("project", "List, create, show and delete projects (each its own network and names)", "")
	cmd.Aliases = []string{"projects"}
	cmd.Long = `A project groups containers: its own Docker network, its DNS names
(NAME.PROJECT.<container zone>, NAME-PROJECT.<host zone>) and quotas.
The container commands act on one project: --project/-P, else
MOOR_PROJECT, else the default project. See docs/projects.md.`
	cmd.AddCommand(a.projectLsCommand(), a.projectCreateCommand(), a.projectShowCommand(), a.projectRmCommand(),
		a.projectMembersCommand(), a.projectGrantCommand(), a.projectRevokeCommand())
	return cmd
}

// projectArg checks a project name given on the command line.
func projectArg(name string) error {
	if err := domain.ValidateProjectName("NAME", name); err != nil {
		return usagef("%v", err)
	}
	return nil
}

func (a *app) projectLsCommand() *cobra.Command {
	var out outputFormat
	var quiet bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List projects: their containers, quotas and network",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			ps, err := cl.Projects(a.ctx)
			if err != nil {
				return err
			}
			switch {
			case out.json():
				if ps == nil {
					ps = []domain.Project{}
				}
				return writeJSON(a.stdout, ps)
			case quiet:
				for _, p := range ps {
					fmt.Fprintln(a.stdout, p.Name)
				}
				return nil
			}
			t := newTable(a.stdout, "NAME", "INTERNAL", "CONTAINERS", "MAX CONTAINERS", "MEMORY", "CPUS", "NETWORK")
			for _, p := range ps {
				t.row(p.Name, yesNo(p.Internal), strconv.Itoa(p.Containers), maxContainers(p), maxMemory(p), maxCPUs(p), p.Network)
			}
			return t.flush()
		},
	}
	addOutput(cmd, &out, "an array of projects as the API shows them")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print names only")
	return cmd
}

func (a *app) projectCreateCommand() *cobra.Command {
	var np domain.NewProject
	var maxContainers int
	var maxMemory int64
	var maxCPUs float64
	var out outputFormat
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project (a DNS label of at most 30 characters) and its network",
		Example: `  moor project create shop
  moor project create lab --internal --max-containers 5 --max-memory-mb 2048 --max-cpus 1.5
  moor deploy testapp web -P shop --wait`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			np.Name = args[0]
			if err := projectArg(np.Name); err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("max-containers") {
				if maxContainers < 0 {
					return usagef("--max-containers: must be 0 or more, got %d", maxContainers)
				}
				np.MaxContainers = &maxContainers
			}
			if f.Changed("max-memory-mb") {
				if maxMemory < 0 {
					return usagef("--max-memory-mb: must be 0 or more, got %d", maxMemory)
				}
				np.MaxMemoryMB = &maxMemory
			}
			if f.Changed("max-cpus") {
				if maxCPUs < 0 {
					return usagef("--max-cpus: must be 0 or more, got %g", maxCPUs)
				}
				np.MaxCPUs = &maxCPUs
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			p, err := cl.CreateProject(a.ctx, np)
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(a.stdout, p)
			}
			line := "project " + p.Name + ": created"
			if p.Network != "" {
				line += ", network " + p.Network
			}
			if p.Internal {
				line += " (internal)"
			}
			fmt.Fprintln(a.stdout, line)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&np.Internal, "internal", false, "the project's network has no route beyond the host (Docker's internal network)")
	f.IntVar(&maxContainers, "max-containers", 0, "quota: at most `N` containers (default: none)")
	f.Int64Var(&maxMemory, "max-memory-mb", 0, "quota: at most `MB` of memory for the project's containers together (default: none)")
	f.Float64Var(&maxCPUs, "max-cpus", 0, "quota: at most `X` CPUs for the project's containers together, e.g. 1.5 (default: none)")
	addOutput(cmd, &out, "the project as the API shows it")
	return cmd
}

func (a *app) projectShowCommand() *cobra.Command {
	return showCommand(a, showSpec[domain.Project]{
		use: "show NAME", aliases: []string{"inspect"}, short: "Show one project: containers, quotas, network",
		jsonHelp: "the project as the API shows it", complete: a.completeOneProject, check: projectArg,
		get: func(ctx context.Context, cl *client.Client, name string) (domain.Project, error) {
			return cl.Project(ctx, name)
		},
		print: printProject,
	})
}

// printProject shows a project as "key: value" lines.
func printProject(w io.Writer, p domain.Project) {
	t := newTable(w, "name:", p.Name)
	t.row("internal:", yesNo(p.Internal))
	t.row("containers:", strconv.Itoa(p.Containers))
	t.row("max containers:", maxContainers(p))
	t.row("max memory:", maxMemory(p))
	t.row("max cpus:", maxCPUs(p))
	t.row("in use:", fmt.Sprintf("%d MB, %s CPUs (the types' limits x replicas)", p.MemoryMB, strconv.FormatFloat(p.CPUs, 'g', 4, 64)))
	t.row("network:", p.Network)
	created := ""
	if !p.CreatedAt.IsZero() {
		created = p.CreatedAt.Local().Format(time.RFC3339)
		if p.CreatedBy != "" {
			created += " by " + p.CreatedBy
		}
	}
	t.row("created:", created)
	t.flush()
}

func (a *app) projectRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove", "delete"},
		Short:   "Delete empty projects and their networks (moor refuses one that has containers, naming them)",
		Long: `Delete projects and their networks. A project that still has containers
is refused (exit 2, naming them): remove them first, e.g.
moor rm -P PROJECT NAME... --wait. The default project stays.`,
		Args:              minArgs("NAME"),
		ValidArgsFunction: a.completeProjects,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range args {
				if err := projectArg(n); err != nil {
					return err
				}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			return a.eachName(args, func(name string) error {
				if err := cl.DeleteProject(a.ctx, name); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "project %s: deleted\n", name)
				return nil
			})
		},
	}
}

// completeProjects completes project names, asking moor.
func (a *app) completeProjects(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	return a.completeFrom(func(ctx context.Context, cl *client.Client) (out []string, err error) {
		ps, err := cl.Projects(ctx)
		for _, p := range ps {
			out = append(out, fmt.Sprintf("%s\t%d container(s)", p.Name, p.Containers))
		}
		return out, err
	})
}

func (a *app) completeOneProject(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.completeProjects(cmd, args, toComplete)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// maxContainers, maxMemory and maxCPUs show a project's quotas: "" (a
// dash in a table) when there is none.
func maxContainers(p domain.Project) string {
	if p.MaxContainers == nil {
		return ""
	}
	return strconv.Itoa(*p.MaxContainers)
}

func maxMemory(p domain.Project) string {
	if p.MaxMemoryMB == nil {
		return ""
	}
	return strconv.FormatInt(*p.MaxMemoryMB, 10) + " MB"
}

func maxCPUs(p domain.Project) string {
	if p.MaxCPUs == nil {
		return ""
	}
	return strconv.FormatFloat(*p.MaxCPUs, 'f', -1, 64)
}

// memberFlags are --user NAME or --key NAME: whose role a command changes.
type memberFlags struct{ user, key string }

func (f *memberFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.user, "user", "", "the user `NAME`")
	cmd.Flags().StringVar(&f.key, "key", "", "the API key `NAME`")
}

// kindName is the member the flags name: exactly one of them.
func (f memberFlags) kindName() (kind, name string, err error) {
	switch {
	case f.user != "" && f.key != "":
		return "", "", usagef("--user and --key: name one member")
	case f.user != "":
		return "user", f.user, nil
	case f.key != "":
		return "apikey", f.key, nil
	}
	return "", "", usagef("--user NAME or --key NAME is required")
}

// memberArgs checks a member command's project and member, then makes the
// client: nothing is sent when either is wrong.
func (a *app) memberArgs(project string, who memberFlags) (cl *client.Client, kind, name string, err error) {
	if err := projectArg(project); err != nil {
		return nil, "", "", err
	}
	if kind, name, err = who.kindName(); err != nil {
		return nil, "", "", err
	}
	cl, err = a.client()
	return cl, kind, name, err
}

func (a *app) projectMembersCommand() *cobra.Command {
	var out outputFormat
	cmd := &cobra.Command{
		Use:               "members PROJECT",
		Short:             "List a project's members: users and API keys with a role there",
		Args:              exactArgs("PROJECT"),
		ValidArgsFunction: a.completeOneProject,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := projectArg(args[0]); err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			ms, err := cl.Members(a.ctx, args[0])
			if err != nil {
				return err
			}
			if out.json() {
				if ms == nil {
					ms = []domain.Member{}
				}
				return writeJSON(a.stdout, ms)
			}
			now := time.Now()
			t := newTable(a.stdout, "KIND", "NAME", "ROLE", "ADDED", "BY")
			for _, m := range ms {
				kind := m.Kind
				if kind == "apikey" {
					kind = "key"
				}
				t.row(kind, m.Name, string(m.Role), ago(m.CreatedAt, now), m.CreatedBy)
			}
			return t.flush()
		},
	}
	addOutput(cmd, &out, "an array of members")
	return cmd
}

func (a *app) projectGrantCommand() *cobra.Command {
	var who memberFlags
	var role string
	cmd := &cobra.Command{
		Use:   "grant PROJECT (--user NAME | --key NAME) --role ROLE",
		Short: "Give a user or API key a role in a project (replacing its role there)",
		Long: `Give a user or API key a role in a project: viewer, operator or admin of
the project. Its role there is the higher of this and its instance-wide
role. A project's admins may grant any role in it.`,
		Example:           "  moor project grant shop --user ann --role operator",
		Args:              exactArgs("PROJECT"),
		ValidArgsFunction: a.completeOneProject,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, kind, name, err := a.memberArgs(args[0], who)
			if err != nil {
				return err
			}
			m, err := cl.SetMember(a.ctx, args[0], domain.MemberRequest{Kind: kind, Name: name, Role: role})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s %s: %s in project %s\n", kind, m.Name, m.Role, args[0])
			return nil
		},
	}
	who.add(cmd)
	cmd.Flags().StringVar(&role, "role", "viewer", "the `ROLE` in the project: admin, operator or viewer")
	cmd.RegisterFlagCompletionFunc("role", completeRoles)
	return cmd
}

func (a *app) projectRevokeCommand() *cobra.Command {
	var who memberFlags
	cmd := &cobra.Command{
		Use:               "revoke PROJECT (--user NAME | --key NAME)",
		Short:             "Take a user's or API key's role in a project away",
		Args:              exactArgs("PROJECT"),
		ValidArgsFunction: a.completeOneProject,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, kind, name, err := a.memberArgs(args[0], who)
			if err != nil {
				return err
			}
			if err := cl.RemoveMember(a.ctx, args[0], kind, name); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s %s: no longer a member of project %s\n", kind, name, args[0])
			return nil
		},
	}
	who.add(cmd)
	return cmd
}
