package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/moorhq/moor/internal/domain"
)

// EnsureNetwork creates the bridge network name with labels unless a network
// of that name exists (whatever its driver and labels). It is idempotent and
// safe when several callers race, in this process or others:
//
// Engines before 25.0 (API < 1.44) create a second network of the same name
// unless asked not to, and this client cannot ask. So after creating, it
// lists the networks of that name and, when there are several, keeps the
// oldest (then the lowest ID), removing its own if that is not the one kept.
// Every racer picks the same survivor. A create refused as a conflict (newer
// engines) counts as success. While racers overlap, the name can briefly be
// ambiguous to the engine (a container create on it fails and is retried by
// the caller's next pass).
//
// The containers in spec.Attach are connected to the network (when not
// already), each time: one recreated or started later is attached again by
// the next ensure. One that does not exist is an error naming it.
func (d *Docker) EnsureNetwork(ctx context.Context, spec domain.NetworkSpec) error {
	if err := d.ensureNetwork(ctx, spec.Name, spec.Labels, spec.Internal); err != nil {
		return err
	}
	var failed []error
	for _, c := range spec.Attach {
		if err := d.attach(ctx, spec.Name, c); err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return &domain.AttachError{Network: spec.Name, Err: errors.Join(failed...)}
	}
	return nil
}

// attach connects container to network unless it is connected already.
func (d *Docker) attach(ctx context.Context, network, container string) error {
	res, err := d.cli.ContainerInspect(ctx, container, client.ContainerInspectOptions{})
	if err != nil {
		return wrap("attach "+container+" to network "+network, err)
	}
	if res.Container.NetworkSettings != nil {
		if _, ok := res.Container.NetworkSettings.Networks[network]; ok {
			return nil
		}
	}
	_, err = d.cli.NetworkConnect(ctx, network, client.NetworkConnectOptions{Container: container})
	if err != nil && !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "already exists") {
		return wrap("attach "+container+" to network "+network, err)
	}
	d.log.Info("container attached to network", "network", network, "container", container)
	return nil
}

func (d *Docker) ensureNetwork(ctx context.Context, name string, labels map[string]string, internal bool) error {
	if name == "" {
		return fmt.Errorf("ensure network: %w", domain.Invalid("network", "is required"))
	}
	d.netMu.Lock()
	defer d.netMu.Unlock()

	nets, err := d.networksNamed(ctx, name)
	if err != nil {
		return err
	}
	if len(nets) > 0 {
		return nil
	}
	res, err := d.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver:   "bridge",
		Labels:   labels,
		Internal: internal,
	})
	if cerrdefs.IsConflict(err) {
		return nil
	}
	if err != nil {
		return wrap("create network "+name, err)
	}
	nets, err = d.networksNamed(ctx, name)
	if err != nil {
		return err
	}
	if len(nets) > 1 {
		keep := nets[0]
		if keep.ID != res.ID {
			d.log.Info("removing duplicate network created by a concurrent caller",
				"network", name, "removed", res.ID, "kept", keep.ID)
			if _, err := d.cli.NetworkRemove(ctx, res.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				return wrap("remove duplicate network "+name, err)
			}
			return nil
		}
	}
	d.log.Info("network created", "network", name, "id", res.ID)
	return nil
}

// NetworkGateway returns the IPv4 gateway of the network named name: the
// host's address on it, where containers on the network reach a container
// that uses the host's network stack. A missing network wraps
// domain.ErrNotFound.
func (d *Docker) NetworkGateway(ctx context.Context, name string) (string, error) {
	nets, err := d.networksNamed(ctx, name)
	if err != nil {
		return "", err
	}
	if len(nets) == 0 {
		return "", fmt.Errorf("network %s: %w", name, domain.ErrNotFound)
	}
	for _, c := range nets[0].IPAM.Config {
		if c.Gateway.Is4() {
			return c.Gateway.String(), nil
		}
	}
	return "", fmt.Errorf("network %s has no IPv4 gateway", name)
}

// NetworkSubnets returns the subnets of the network named name (IPv4 and
// IPv6, masked, sorted): the addresses its containers get. A missing
// network wraps domain.ErrNotFound.
func (d *Docker) NetworkSubnets(ctx context.Context, name string) ([]netip.Prefix, error) {
	nets, err := d.networksNamed(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(nets) == 0 {
		return nil, fmt.Errorf("network %s: %w", name, domain.ErrNotFound)
	}
	var out []netip.Prefix
	for _, c := range nets[0].IPAM.Config {
		if c.Subnet.IsValid() {
			out = append(out, c.Subnet)
		}
	}
	return domain.SortedPrefixes(out), nil
}

// networksNamed lists the networks named exactly name (the engine's name
// filter also matches substrings), oldest first, ties by ID.
func (d *Docker) networksNamed(ctx context.Context, name string) ([]network.Summary, error) {
	res, err := d.cli.NetworkList(ctx, client.NetworkListOptions{
		Filters: client.Filters{}.Add("name", name),
	})
	if err != nil {
		return nil, wrap("list networks", err)
	}
	out := slices.DeleteFunc(res.Items, func(n network.Summary) bool { return n.Name != name })
	slices.SortFunc(out, func(a, b network.Summary) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// EnsureVolume creates the local volume name with labels unless it exists
// (an existing volume keeps its labels; one of another moor installation
// is refused with domain.VolumeTakenError). One call: the local driver's
// create returns an existing volume of that name as it is, so a racing
// caller is harmless too.
func (d *Docker) EnsureVolume(ctx context.Context, name string, labels map[string]string) error {
	if name == "" {
		return fmt.Errorf("ensure volume: %w", domain.Invalid("volume", "is required"))
	}
	// Creating a volume that exists answers the existing one, with its own
	// labels: one of another installation must not be taken over (its data
	// would go to this container). A volume without moor's labels (made by
	// hand, e.g. to seed data) is used as it is.
	res, err := d.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: "local", Labels: labels})
	if err != nil {
		return wrap("create volume "+name, err)
	}
	if want, have := labels[domain.LabelOwner], res.Volume.Labels[domain.LabelOwner]; want != "" && have != "" && have != want {
		return &domain.VolumeTakenError{Name: name, Owner: have}
	}
	return nil
}

// RemoveVolume removes the volume name; a missing volume is not an error. A
// volume still used by a container wraps domain.ErrConflict.
func (d *Docker) RemoveVolume(ctx context.Context, name string) error {
	_, err := d.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	return wrap("remove volume "+name, err)
}

// ListVolumes returns the names of the volumes that carry all labels (an
// empty value matches any value), sorted.
func (d *Docker) ListVolumes(ctx context.Context, labels map[string]string) ([]string, error) {
	res, err := d.cli.VolumeList(ctx, client.VolumeListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return nil, wrap("list volumes", err)
	}
	names := make([]string, 0, len(res.Items))
	for _, v := range res.Items {
		if hasLabels(v.Labels, labels) {
			names = append(names, v.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// EnsureImage makes image present locally. If it already is, it returns nil
// without contacting a registry. Otherwise it pulls it, calling progress (if
// not nil) for every message of the engine's progress stream, and returns
// the error the pull ends with: it wraps domain.ErrNotFound when the
// registry has no such repository or tag, domain.ErrUnavailable when the
// engine is unreachable; other failures (registry unreachable, denied, bad
// reference) are plain errors carrying the engine's message.
func (d *Docker) EnsureImage(ctx context.Context, image string, progress func(domain.PullProgress)) error {
	if image == "" {
		return fmt.Errorf("ensure image: %w", domain.Invalid("image", "is required"))
	}
	_, err := d.cli.ImageInspect(ctx, image)
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return wrap("inspect image "+image, err)
	}

	return d.pull(ctx, image, progress)
}

// pull pulls image, reporting progress, and checks it is there after.
func (d *Docker) pull(ctx context.Context, image string, progress func(domain.PullProgress)) error {
	d.log.Info("pulling image", "image", image)
	resp, err := d.cli.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		// Engines answer with an HTTP error when the pull fails before any
		// progress was sent (a missing tag, an unreachable registry).
		return pullError(image, err)
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("pull %s: %w", image, ctx.Err())
			}
			return fmt.Errorf("pull %s: reading progress: %w: %w", image, domain.ErrUnavailable, err)
		}
		if msg.Error != nil {
			return pullError(image, errors.New(msg.Error.Message))
		}
		if progress != nil {
			p := domain.PullProgress{ID: msg.ID, Status: msg.Status}
			if msg.Progress != nil {
				p.Current, p.Total = msg.Progress.Current, msg.Progress.Total
			}
			progress(p)
		}
	}
	// The stream can end cleanly without the image (an engine quirk seen
	// with some registries): check.
	if _, err := d.cli.ImageInspect(ctx, image); err != nil {
		return wrap("pull "+image+": image missing after pull", err)
	}
	d.log.Info("image pulled", "image", image)
	return nil
}

// pullError classifies a pull failure: a registry that has no such
// repository or tag wraps domain.ErrNotFound.
func pullError(image string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		client.IsErrConnectionFailed(err) {
		return wrap("pull "+image, err)
	}
	if cerrdefs.IsNotFound(err) || isMissingImageMessage(err.Error()) {
		return &domain.PullError{Image: image, Why: domain.PullMissing, Err: fmt.Errorf("%w: %w", domain.ErrNotFound, err)}
	}
	msg := strings.ToLower(err.Error())
	switch {
	case containsAny(msg, "pull access denied", "unauthorized", "authentication required", "denied:"):
		return &domain.PullError{Image: image, Why: domain.PullDenied, Err: err}
	case containsAny(msg, "dial tcp", "no such host", "i/o timeout", "connection refused", "tls handshake timeout",
		"client.timeout", "network is unreachable", "temporary failure in name resolution", "server misbehaving"):
		return &domain.PullError{Image: image, Why: domain.PullUnreachable, Err: err}
	}
	return &domain.PullError{Image: image, Err: err}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// isMissingImageMessage recognises the engine's and registries' words for a
// repository or tag that does not exist.
func isMissingImageMessage(msg string) bool {
	msg = strings.ToLower(msg)
	for _, s := range []string{
		"manifest unknown",
		"name unknown",
		"repository does not exist",
		"not found: manifest",
	} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return strings.Contains(msg, "manifest for ") && strings.Contains(msg, " not found")
}

// ListNetworks returns the names of the networks that carry all labels (an
// empty value matches any value), sorted.
func (d *Docker) ListNetworks(ctx context.Context, labels map[string]string) ([]string, error) {
	res, err := d.cli.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return nil, wrap("list networks", err)
	}
	names := make([]string, 0, len(res.Items))
	for _, n := range res.Items {
		if hasLabels(n.Labels, labels) {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// RemoveNetwork removes the network name; a missing network is not an
// error. Containers moor did not create (the router it attached, or one
// connected by hand) are disconnected first: the network is moor's and
// goes. One still used by moor's own containers wraps domain.ErrConflict
// and names them, so the caller can say what holds it.
func (d *Docker) RemoveNetwork(ctx context.Context, name string) error {
	_, err := d.cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	res, ierr := d.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if ierr != nil || len(res.Network.Containers) == 0 {
		return wrap("remove network "+name, err)
	}
	var users []string
	for id, ep := range res.Network.Containers {
		c, cerr := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if cerr == nil && c.Container.Config != nil && c.Container.Config.Labels[domain.LabelOwner] == "" {
			if _, derr := d.cli.NetworkDisconnect(ctx, name, client.NetworkDisconnectOptions{Container: id, Force: true}); derr == nil {
				d.log.Info("container detached from network", "network", name, "container", ep.Name)
				continue
			}
		}
		users = append(users, ep.Name)
	}
	if len(users) > 0 {
		slices.Sort(users)
		return fmt.Errorf("remove network %s: still used by %s: %w", name, strings.Join(users, ", "), domain.ErrConflict)
	}
	if _, err := d.cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return wrap("remove network "+name, err)
	}
	return nil
}

// PullImage pulls image again even when it is present (a tag such as
// :latest may have moved in its registry), calling progress for every
// message of the pull. An image present only on this engine (built or
// loaded there: no registry digest) is not pulled: there is no registry to
// ask, and pulling its name could replace a local build with another
// image; that wraps domain.ErrLocalImage. Failures are as EnsureImage's.
func (d *Docker) PullImage(ctx context.Context, image string, progress func(domain.PullProgress)) error {
	if image == "" {
		return fmt.Errorf("pull image: %w", domain.Invalid("image", "is required"))
	}
	res, err := d.cli.ImageInspect(ctx, image)
	switch {
	case err == nil && len(res.RepoDigests) == 0:
		return fmt.Errorf("image %s was built or loaded on this engine and comes from no registry: %w", image, domain.ErrLocalImage)
	case err != nil && !cerrdefs.IsNotFound(err):
		return wrap("inspect image "+image, err)
	}
	return d.pull(ctx, image, progress)
}
