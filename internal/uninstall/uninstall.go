// Package uninstall removes what one moor installation created on its
// container runtime: every container, volume and network carrying its
// owner label (domain.LabelOwner), and, through the caller, its records
// of them. It speaks domain types only; cmd/moor wires the engine and the
// store (moor uninstall).
package uninstall

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// Containers lists and removes runtime instances.
type Containers interface {
	List(ctx context.Context, labels map[string]string) ([]domain.InstanceState, error)
	Remove(ctx context.Context, id string) error
}

// Volumes lists and removes volumes.
type Volumes interface {
	ListVolumes(ctx context.Context, labels map[string]string) ([]string, error)
	RemoveVolume(ctx context.Context, name string) error
}

// Networks lists and removes networks.
type Networks interface {
	ListNetworks(ctx context.Context, labels map[string]string) ([]string, error)
	RemoveNetwork(ctx context.Context, name string) error
}

// Engine is the runtime an installation's objects are removed from.
type Engine interface {
	Containers
	Volumes
	Networks
}

// Plan is what an installation left: its runtime objects and, when its
// database is at hand, the containers it records.
type Plan struct {
	Owner      string
	Containers []domain.InstanceState // by name
	Volumes    []string
	Networks   []string
	// Records are the containers the database records (nil: no database).
	Records []string
}

// Find lists what installation owner created on eng.
func Find(ctx context.Context, eng Engine, owner string) (Plan, error) {
	if owner == "" {
		return Plan{}, domain.Invalid("owner", "is required")
	}
	labels := map[string]string{domain.LabelOwner: owner}
	p := Plan{Owner: owner}
	var err error
	if p.Containers, err = eng.List(ctx, labels); err != nil {
		return p, fmt.Errorf("list containers: %w", err)
	}
	slices.SortFunc(p.Containers, func(a, b domain.InstanceState) int { return cmp.Compare(a.Name, b.Name) })
	if p.Volumes, err = eng.ListVolumes(ctx, labels); err != nil {
		return p, fmt.Errorf("list volumes: %w", err)
	}
	if p.Networks, err = eng.ListNetworks(ctx, labels); err != nil {
		return p, fmt.Errorf("list networks: %w", err)
	}
	return p, nil
}

// Empty reports whether there is nothing to remove (kept volumes aside).
func (p Plan) Empty(keepVolumes bool) bool {
	return len(p.Containers) == 0 && (keepVolumes || len(p.Volumes) == 0) && len(p.Networks) == 0 && len(p.Records) == 0
}

// Describe writes what Remove would do, with counts and names.
func (p Plan) Describe(w io.Writer, keepVolumes bool) {
	fmt.Fprintf(w, "moor installation %s created on this Docker engine:\n", p.Owner)
	var names []string
	moorNames := map[string]bool{}
	for _, c := range p.Containers {
		names = append(names, c.Name)
		if n := c.Labels[domain.LabelName]; n != "" {
			moorNames[n] = true
		}
	}
	line := fmt.Sprintf("  %s: %s", count(len(p.Containers), "container"), list(names))
	if len(moorNames) > 0 {
		line += " (moor containers " + strings.Join(slices.Sorted(maps.Keys(moorNames)), ", ") + ")"
	}
	fmt.Fprintln(w, line)
	what := "volume"
	if keepVolumes && len(p.Volumes) > 0 {
		what = "volume kept (--keep-volumes)"
	}
	fmt.Fprintf(w, "  %s: %s\n", count(len(p.Volumes), what), list(p.Volumes))
	fmt.Fprintf(w, "  %s: %s\n", count(len(p.Networks), "network"), list(p.Networks))
	if p.Records != nil {
		fmt.Fprintf(w, "  in its database, %s to delete (their history stays): %s\n", count(len(p.Records), "container record"), list(p.Records))
	}
}

func count(n int, what string) string {
	if strings.HasPrefix(what, "volume kept") && n != 1 {
		return fmt.Sprintf("%d volumes kept (--keep-volumes)", n)
	}
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Options tune Remove.
type Options struct {
	KeepVolumes bool
	// Forget deletes the database's records of the containers (nil: no
	// database). It runs first: the database never says a container
	// exists that is gone, and a removal cut short is finished by running
	// again, which finds the rest by label.
	Forget func(ctx context.Context) ([]string, error)
	// NetworkPatience is how long a network still in use is tried again
	// (the engine detaches a removed container's endpoints shortly after).
	NetworkPatience time.Duration
}

// Remove removes what p lists, in order: the records, the containers, the
// volumes (unless kept), the networks, writing a line per object to w. It
// goes on after a failure and returns them all, joined.
func Remove(ctx context.Context, eng Engine, p Plan, opts Options, w io.Writer) error {
	if opts.Forget != nil {
		names, err := opts.Forget(ctx)
		if err != nil {
			return fmt.Errorf("delete the container records: %w", err)
		}
		if len(names) > 0 {
			fmt.Fprintf(w, "deleted the records of %s\n", strings.Join(names, ", "))
		}
	}
	var errs []error
	fail := func(err error) {
		errs = append(errs, err)
		fmt.Fprintf(w, "failed: %v\n", err)
	}
	for _, c := range p.Containers {
		if err := eng.Remove(ctx, c.RuntimeID); err != nil {
			fail(fmt.Errorf("container %s: %w", c.Name, err))
			continue
		}
		fmt.Fprintf(w, "removed container %s\n", c.Name)
	}
	if !opts.KeepVolumes {
		for _, v := range p.Volumes {
			if err := eng.RemoveVolume(ctx, v); err != nil {
				fail(fmt.Errorf("volume %s: %w", v, err))
				continue
			}
			fmt.Fprintf(w, "removed volume %s\n", v)
		}
	}
	for _, n := range p.Networks {
		if err := removeNetwork(ctx, eng, n, opts.NetworkPatience); err != nil {
			fail(fmt.Errorf("network %s: %w (disconnect them, then docker network rm %s)", n, err, n))
			continue
		}
		fmt.Fprintf(w, "removed network %s\n", n)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

// removeNetwork removes a network, trying again for patience while it is
// in use.
func removeNetwork(ctx context.Context, eng Networks, name string, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	for {
		err := eng.RemoveNetwork(ctx, name)
		if err == nil || !errors.Is(err, domain.ErrConflict) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Owner is an installation found on a runtime by its owner label.
type Owner struct {
	ID                            string
	Containers, Volumes, Networks int
}

// Owners lists the installations that left containers on eng, for a user
// whose database is gone: which --owner to give. Volumes and networks are
// listed by name only, so those of an installation with no container left
// are counted in unattributed.
func Owners(ctx context.Context, eng Engine) (owners []Owner, unattributed int, err error) {
	anyOwner := map[string]string{domain.LabelOwner: ""}
	cs, err := eng.List(ctx, anyOwner)
	if err != nil {
		return nil, 0, fmt.Errorf("list containers: %w", err)
	}
	byID := map[string]*Owner{}
	for _, c := range cs {
		id := c.Labels[domain.LabelOwner]
		if byID[id] == nil {
			byID[id] = &Owner{ID: id}
		}
		byID[id].Containers++
	}
	vols, err := eng.ListVolumes(ctx, anyOwner)
	if err != nil {
		return nil, 0, fmt.Errorf("list volumes: %w", err)
	}
	nets, err := eng.ListNetworks(ctx, anyOwner)
	if err != nil {
		return nil, 0, fmt.Errorf("list networks: %w", err)
	}
	unattributed = len(vols) + len(nets)
	for _, o := range byID {
		p, err := Find(ctx, eng, o.ID)
		if err != nil {
			return nil, 0, err
		}
		o.Volumes, o.Networks = len(p.Volumes), len(p.Networks)
		unattributed -= o.Volumes + o.Networks
		owners = append(owners, *o)
	}
	slices.SortFunc(owners, func(a, b Owner) int { return cmp.Compare(a.ID, b.ID) })
	return owners, unattributed, nil
}
