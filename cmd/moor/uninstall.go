package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/engine"
	"github.com/moorhq/moor/internal/store"
	"github.com/moorhq/moor/internal/uninstall"
)

var uninstallSpec = flagCommandSpec{name: "uninstall", usage: "moor uninstall [--yes] [--keep-volumes] [--database] [--owner ID]",
	about: `Remove what this installation created on the Docker engine: every container,
volume and network labelled moor.owner=<its id> (the id is in the database,
MOOR_DATABASE_URL), and delete its container records (their history stays).
It lists them, then asks for "y" on a terminal; --yes confirms without asking
(needed without a terminal). It refuses while a moor server runs on the
database (its reconciler would create the containers again): stop it first.
--owner ID removes what an installation whose database is gone left (no
database is read or changed); without a database it lists the owners found.`,
	show: append([]string{"yes", "keep-volumes", "database", "owner", "docker-host"}, dbFlags...)}

// uninstallIO is what moor uninstall talks to: stdin and whether it is a
// terminal (the confirmation), stdout (the plan, the progress).
type uninstallIO struct {
	stdin          io.Reader
	tty            bool
	stdout, stderr io.Writer
}

func runUninstall(args []string, usage io.Writer, uio uninstallIO) error {
	var yes, keepVolumes, dropDB bool
	var owner string
	c, err := parseWith(uninstallSpec, args, usage, func(fs *flag.FlagSet) {
		fs.BoolVar(&yes, "yes", false, "remove without asking (needed without a terminal)")
		fs.BoolVar(&keepVolumes, "keep-volumes", false, "keep the volumes (the data); moor uninstall --owner ID removes them later")
		fs.BoolVar(&dropDB, "database", false, "also drop every moor table from the database (users, keys, history: all of it)")
		fs.StringVar(&owner, "owner", "", "remove what installation `ID` left (its database is gone); no database is used")
	})
	if err != nil {
		return err
	}
	if owner != "" && dropDB {
		return errors.New("--database and --owner exclude each other: --owner works without a database")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The engine's own log lines would repeat the progress lines.
	docker, err := engine.New(c.DockerHost, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer docker.Close()
	if err := docker.Ping(ctx); err != nil {
		return fmt.Errorf("the Docker engine: %w", err)
	}

	var st *store.Store
	var records []string
	if owner == "" {
		if c.DatabaseURL == "" {
			return noDatabase(ctx, docker, "MOOR_DATABASE_URL is unset")
		}
		if st, err = store.Open(ctx, c.DatabaseURL, newLogger(c, uio.stderr)); err != nil {
			return err
		}
		defer st.Close()
		if owner, err = st.InstallationID(ctx); err != nil {
			return noDatabase(ctx, docker, fmt.Sprintf("no moor installation in this database (%v)", err))
		}
		release, err := st.LockOut(ctx)
		if errors.Is(err, store.ErrServing) {
			return fmt.Errorf("%w: stop it first (Ctrl-C where it runs, systemctl stop moor, docker compose stop moor), "+
				"then run moor uninstall again: its reconciler would create again what uninstall removes", err)
		}
		if err != nil {
			return err
		}
		defer release()
		if records, err = st.ContainerNames(ctx); err != nil {
			return err
		}
		if records == nil {
			records = []string{}
		}
	}
	plan, err := uninstall.Find(ctx, docker, owner)
	if err != nil {
		return err
	}
	plan.Records = records
	plan.Describe(uio.stdout, keepVolumes)
	if dropDB {
		fmt.Fprintln(uio.stdout, "  and every moor table of the database (--database)")
	}
	if plan.Empty(keepVolumes) && !dropDB {
		fmt.Fprintln(uio.stdout, "nothing to remove")
		return nil
	}
	if !yes {
		if err := confirm(uio); err != nil {
			return err
		}
	}
	opts := uninstall.Options{KeepVolumes: keepVolumes, NetworkPatience: 10 * time.Second}
	if st != nil {
		opts.Forget = func(ctx context.Context) ([]string, error) {
			return st.ForgetContainers(ctx, domain.Actor{Kind: "system", Name: "uninstall"}.String(),
				map[string]any{"uninstall": true, "kept_volumes": keepVolumes})
		}
	}
	err = uninstall.Remove(ctx, docker, plan, opts, uio.stdout)
	if err == nil && dropDB {
		if _, err = st.DropSchema(ctx); err == nil {
			fmt.Fprintln(uio.stdout, "dropped moor's tables")
		}
	}
	if keepVolumes && len(plan.Volumes) > 0 {
		fmt.Fprintf(uio.stdout, "kept %d volume(s), labelled moor.owner=%s: moor uninstall --owner %s removes them\n", len(plan.Volumes), owner, owner)
	}
	if err != nil {
		return fmt.Errorf("uninstall did not finish (run it again to go on): %w", err)
	}
	fmt.Fprintf(uio.stdout, "uninstalled moor installation %s\n", owner)
	return nil
}

// confirm asks for "y" or "yes" on a terminal; without one it refuses,
// so a script never removes anything it did not say --yes to.
func confirm(uio uninstallIO) error {
	if !uio.tty {
		return errors.New("not confirmed: stdin is not a terminal; run moor uninstall --yes to remove without asking (nothing was removed)")
	}
	fmt.Fprint(uio.stderr, "Remove them? Type y to confirm: ")
	line, err := bufio.NewReader(uio.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not confirmed: nothing was removed")
}

// noDatabase explains what to do without this installation's database:
// the installations found on the engine, and the command for each.
func noDatabase(ctx context.Context, eng *engine.Docker, why string) error {
	owners, unattributed, err := uninstall.Owners(ctx, eng)
	if err != nil {
		return fmt.Errorf("%s; listing what moor installations left: %w", why, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: without this installation's database, give the owner of what to remove: moor uninstall --owner ID", why)
	if len(owners) == 0 && unattributed == 0 {
		b.WriteString("; no moor installation left anything on this Docker engine")
	}
	for _, o := range owners {
		fmt.Fprintf(&b, "\n  moor uninstall --owner %s    (%d containers, %d volumes, %d networks)", o.ID, o.Containers, o.Volumes, o.Networks)
	}
	if unattributed > 0 {
		fmt.Fprintf(&b, "\n  %d volume(s) or network(s) of installations with no container left: "+
			`docker volume ls --filter label=moor.owner --format '{{.Name}} {{.Label "moor.owner"}}' (and docker network ls) show their owners`, unattributed)
	}
	return errors.New(b.String())
}
