package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// env merges plain values with the decrypted credentials.
func (r *Reconciler) env(ctx context.Context, c domain.Container) (map[string]string, error) {
	env := maps.Clone(c.Env)
	if env == nil {
		env = map[string]string{}
	}
	sealed, err := r.store.SealedSecrets(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	if len(sealed) == 0 {
		return env, nil
	}
	plain, err := r.opener.Open(sealed, []byte(c.ID))
	if err != nil {
		return nil, fmt.Errorf("open credentials: %w", err)
	}
	var secrets map[string]string
	if err := json.Unmarshal(plain, &secrets); err != nil {
		return nil, fmt.Errorf("open credentials: %w", err)
	}
	maps.Copy(env, secrets)
	return env, nil
}

// instanceSpec is replica i of c as the runtime creates it.
func (r *Reconciler) instanceSpec(c domain.Container, replica int, env map[string]string) domain.InstanceSpec {
	s := domain.InstanceSpec{
		Name: domain.DockerName(c.Project, c.Name, replica), Image: c.Image, Env: env, Cmd: c.Spec.Command,
		Labels: r.instanceLabels(c, replica), Network: r.network(c),
		Aliases:     r.aliases(c, replica),
		MemoryBytes: c.Spec.Resources.MemoryMB << 20, NanoCPUs: int64(c.Spec.Resources.CPUs * 1e9),
		Health: c.Spec.Health, Restart: c.Spec.Restart, DNS: r.cfg.DNSServers,
		Privileged: c.Spec.Privileged, Ports: c.Spec.Ports, Published: c.Published, Hostname: c.Spec.ReplicaHostname(c.Name, replica),
		Devices: c.Spec.Devices, TTY: c.Spec.Interactive, CapAdd: c.Spec.CapAdd, CapDrop: c.Spec.CapDrop,
	}
	if c.Spec.Network == domain.NetworkHost {
		// The host's network stack: no moor network, so no aliases. The
		// resolvers stay: moor's DNS answers on a host address.
		s.HostNetwork, s.Network, s.Aliases, s.Published = true, "", nil, nil
	}
	for _, v := range c.Spec.Volumes {
		if v.HostPath != "" {
			s.Mounts = append(s.Mounts, domain.Mount{Source: v.HostPath, Target: v.Path, ReadOnly: v.ReadOnly, Bind: true})
		} else {
			s.Mounts = append(s.Mounts, domain.Mount{Source: domain.VolumeName(c.Project, c.Name, v.Name, replica), Target: v.Path, ReadOnly: v.ReadOnly})
		}
	}
	return s
}

// aliases are replica i's names on its project's network, which Docker's
// own DNS answers there: NAME.PROJECT.<zone> and REPLICA.NAME.PROJECT.<zone>,
// and in the default project today's NAME.<zone> and REPLICA.NAME.<zone>
// too. No bare-name alias: a container named "moor" or "traefik" must not
// capture the names moor's own services use on the network. The one
// exception is a stack's container, which compose users reach by its
// service name ("postgres://db:5432"): it answers to SERVICE too (a
// service name is unique in its project: the store refuses a second).
func (r *Reconciler) aliases(c domain.Container, replica int) []string {
	zone := r.cfg.ContainerZone
	label := domain.ContainerLabel(c.Project, c.Name)
	out := []string{label + "." + zone, fmt.Sprintf("%d.%s.%s", replica, label, zone)}
	if c.Project == domain.DefaultProject || c.Project == "" {
		out = append([]string{c.Name + "." + zone, fmt.Sprintf("%d.%s.%s", replica, c.Name, zone)}, out...)
	}
	if c.StackService != "" {
		out = append(out, c.StackService)
	}
	return out
}

// instanceLabels are the type's labels under moor's own: a type's label
// can never replace one that ties the instance to its records (Validate
// refuses moor.* in a type too).
func (r *Reconciler) instanceLabels(c domain.Container, replica int) map[string]string {
	own := r.replicaLabels(c, replica)
	own[domain.LabelConfig] = configVersion(c)
	if len(c.Spec.Labels) == 0 {
		return own
	}
	labels := maps.Clone(c.Spec.Labels)
	maps.Copy(labels, own)
	return labels
}

// pullProgress records image pull progress as events: each new state of
// a layer (waiting, downloading, extracting, complete) and the final
// status at once, byte counts at most four times a second per pull (each
// event is a transaction). A byte count held back is written when the
// quarter second is over even if nothing else comes, so a stalled pull
// shows how far it got. stop ends it (call it when the pull returns).
func (r *Reconciler) pullProgress(ctx context.Context, c domain.Container) (progress func(domain.PullProgress), stop func()) {
	const every = 250 * time.Millisecond
	var (
		mu      sync.Mutex
		last    time.Time
		state   = map[string]string{}              // layer -> the status word last written
		pending = map[string]domain.PullProgress{} // layer -> byte counts not yet written
		timer   *time.Timer
		stopped bool
	)
	write := func(p domain.PullProgress) {
		if _, err := r.store.AppendEvent(ctx, "image.pull", c.ID, c.Name, map[string]any{
			"image": c.Image, "layer": p.ID, "status": p.Status, "current": p.Current, "total": p.Total,
		}); err != nil {
			r.logger.Warn("record pull progress", "err", err)
		}
	}
	flush := func() { // mu held
		for _, p := range pending {
			write(p)
		}
		clear(pending)
		last = time.Now()
	}
	progress = func(p domain.PullProgress) {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		word, _, _ := strings.Cut(p.Status, " ")
		final := strings.HasPrefix(p.Status, "Status:") || strings.HasPrefix(p.Status, "Digest:")
		if final || state[p.ID] != word || p.Total == 0 {
			delete(pending, p.ID)
			state[p.ID] = word
			write(p)
			return
		}
		pending[p.ID] = p
		if time.Since(last) >= every {
			flush()
			return
		}
		if timer == nil {
			timer = time.AfterFunc(every, func() {
				mu.Lock()
				defer mu.Unlock()
				timer = nil
				if !stopped {
					flush()
				}
			})
		}
	}
	stop = func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if timer != nil {
			timer.Stop()
		}
	}
	return progress, stop
}

// configVersion is the label value of c's configuration version.
func configVersion(c domain.Container) string { return strconv.Itoa(max(c.ConfigVersion, 1)) }

// outdated reports whether a replica was created with an older image or
// environment than c has now. Replicas made before versions were
// labelled are version 1.
func outdated(c domain.Container, st domain.InstanceState) bool {
	v, ok := st.Labels[domain.LabelConfig]
	if !ok {
		v = "1"
	}
	return v != configVersion(c)
}
