package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// observe reads back every replica and records the result if it changed;
// want is the status the container converged to, ids the runtime ids the
// pass left the replicas with (nil: list them).
func (r *Reconciler) observe(ctx context.Context, c domain.Container, want domain.Status, ids map[int]string) error {
	ins, dns, problems, err := r.instances(ctx, c, ids)
	if err != nil {
		return err
	}
	status, cause, reason := want, domain.CauseNone, ""
	if want == domain.StatusStopped && c.StatusCause == domain.CauseStoppedOutside {
		// Keep why it stopped: moor did not stop it.
		status, cause, reason = c.Status, c.StatusCause, c.StatusReason
	}
	if want == domain.StatusRunning {
		for _, in := range ins {
			switch {
			case problems[in.Index] != "":
				status, cause, reason = domain.StatusFailed, domain.CauseFailed, problems[in.Index]
			case in.Status != domain.StatusRunning && status != domain.StatusFailed:
				status, reason = domain.StatusCreating, fmt.Sprintf("replica %d is %s", in.Index, in.Status)
			}
		}
	}
	// A redeploy is done once every replica was replaced and runs: a
	// stopped container's replicas are replaced when it starts again.
	var redeployed time.Time
	if want == domain.StatusRunning {
		redeployed = c.RedeployAt
	}
	if status == c.Status && reason == c.StatusReason && cause == c.StatusCause && c.ObservedGeneration == c.Generation &&
		c.RestartAt.IsZero() && redeployed.IsZero() && sameInstances(ins, c.Instances) {
		return nil
	}
	o := domain.Observation{
		ID: c.ID, Name: c.Name, Status: status, Cause: cause, Reason: reason, Instances: ins,
		ObservedGeneration: c.Generation, ContainerDNS: dns, RestartDone: c.RestartAt, RedeployDone: redeployed,
	}
	if status != c.Status {
		o.Event = string(status)
		o.Data = map[string]any{"replicas": len(ins)}
	} else {
		o.ReplicasChanged = !sameInstances(ins, c.Instances)
	}
	r.step("observed")
	return r.store.RecordObservation(ctx, o)
}

// recordInstances writes what every replica is now, nothing else: a
// restarted replica takes traffic again as soon as it is ready.
func (r *Reconciler) recordInstances(ctx context.Context, c *domain.Container) error {
	ins, dns, _, err := r.instances(ctx, *c, nil)
	if err != nil {
		return err
	}
	changed := !sameInstances(ins, c.Instances)
	c.Instances = ins
	return r.store.RecordObservation(ctx, domain.Observation{
		ID: c.ID, Name: c.Name, Status: c.Status, Cause: c.StatusCause, Reason: c.StatusReason, Instances: ins, ContainerDNS: dns,
		ReplicasChanged: changed,
	})
}

// instances inspects every replica; dns holds the container-zone records of
// the running ones, problems why a replica is failing. With the runtime id
// of every replica known (the pass that just created or started them),
// they are inspected without listing first: one engine call less on the
// path from a start to "running".
func (r *Reconciler) instances(ctx context.Context, c domain.Container, ids map[int]string) ([]domain.Instance, []domain.DNSEntry, map[int]string, error) {
	byReplica := make(map[int]domain.InstanceState, c.Replicas)
	for i, id := range ids {
		if id != "" {
			byReplica[i] = domain.InstanceState{RuntimeID: id}
		}
	}
	if len(byReplica) != c.Replicas {
		states, err := r.engine.List(ctx, map[string]string{domain.LabelOwner: r.cfg.InstallationID, domain.LabelID: c.ID})
		if err != nil {
			return nil, nil, nil, err
		}
		byReplica, _ = splitReplicas(states, c.Replicas)
	}
	problems := map[int]string{}
	ins := make([]domain.Instance, 0, c.Replicas)
	dns := []domain.DNSEntry{}
	for i := 0; i < c.Replicas; i++ {
		in := domain.Instance{Index: i, Status: domain.StatusPending}
		if st, ok := byReplica[i]; ok {
			full, err := r.engine.Inspect(ctx, st.RuntimeID)
			if err != nil && !errors.Is(err, domain.ErrNotFound) {
				return nil, nil, nil, err
			}
			if err == nil {
				in, problems[i] = instanceOf(i, full, r.network(c))
			}
		}
		if c.Spec.Network == domain.NetworkHost && in.Status == domain.StatusRunning {
			in.InternalIP = r.hostAddress(ctx, r.network(c))
		}
		if in.Status == domain.StatusRunning {
			dns = append(dns, r.containerDNS(c, in)...)
		}
		ins = append(ins, in)
	}
	for i, p := range problems {
		if p == "" {
			delete(problems, i)
		}
	}
	return ins, dns, problems, nil
}

// instanceOf is replica i as its runtime state shows it, and why it is
// failing if it is.
func instanceOf(i int, st domain.InstanceState, network string) (domain.Instance, string) {
	in := domain.Instance{Index: i, RuntimeID: st.RuntimeID, Node: st.Node, Health: st.Health, InternalIP: st.IPs[network]}
	switch {
	case st.Restarting:
		// A runtime reports a crash loop as running: it is not.
		in.Status, in.InternalIP = domain.StatusFailed, ""
		return in, fmt.Sprintf("replica %d keeps crashing (exit code %d, %d restarts)", i, st.ExitCode, st.RestartCount)
	case st.Running:
		in.Status = domain.StatusRunning
	case st.Status == "created":
		in.Status = domain.StatusCreating
	case st.ExitCode != 0 || st.OOMKilled:
		in.Status = domain.StatusFailed
	default:
		in.Status = domain.StatusStopped
	}
	return in, ""
}

// hostAddress is where a replica on the host's network stack is reached
// from moor's network, by Traefik and the other containers: the network's
// gateway, an address of the host. A replica's address is what routes and
// container-zone records point at. It is "" when the engine cannot tell:
// the replica then runs unrouted, and the next pass asks again.
func (r *Reconciler) hostAddress(ctx context.Context, network string) string {
	key := "gateway:" + network
	if v, ok := r.present.Load(key); ok {
		return v.(string)
	}
	gw, err := r.engine.NetworkGateway(ctx, network)
	if err != nil {
		r.logger.Warn("host network: no address to route to", "network", network, "err", err)
		return ""
	}
	r.present.Store(key, gw)
	return gw
}

// containerDNS is a running replica's records in the container zone: the
// container's name (one record per replica) and the replica's own, as
// NAME.PROJECT.<zone> and, in the default project, today's NAME.<zone>.
func (r *Reconciler) containerDNS(c domain.Container, in domain.Instance) []domain.DNSEntry {
	if in.InternalIP == "" {
		return nil
	}
	replica := in.Index
	typ := "A"
	if strings.Contains(in.InternalIP, ":") {
		typ = "AAAA"
	}
	labels := []string{domain.ContainerLabel(c.Project, c.Name)}
	if c.Project == domain.DefaultProject || c.Project == "" {
		labels = []string{c.Name, labels[0]}
	}
	var out []domain.DNSEntry
	for _, l := range labels {
		out = append(out,
			domain.DNSEntry{Zone: domain.ZoneContainer, Name: l + "." + r.cfg.ContainerZone, Type: typ, Value: in.InternalIP, Replica: &replica, TTL: r.cfg.TTL},
			domain.DNSEntry{Zone: domain.ZoneContainer, Name: fmt.Sprintf("%d.%s.%s", in.Index, l, r.cfg.ContainerZone), Type: typ, Value: in.InternalIP, Replica: &replica, TTL: r.cfg.TTL})
	}
	return out
}

func sameInstances(a, b []domain.Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Index != b[i].Index || a[i].RuntimeID != b[i].RuntimeID || a[i].InternalIP != b[i].InternalIP ||
			a[i].Status != b[i].Status || a[i].Health != b[i].Health || a[i].Node != b[i].Node {
			return false
		}
	}
	return true
}

// splitReplicas sorts instances into wanted replicas and extras (indexes
// beyond n, unlabelled ones, or duplicates).
func splitReplicas(states []domain.InstanceState, n int) (map[int]domain.InstanceState, []domain.InstanceState) {
	byReplica := map[int]domain.InstanceState{}
	var extra []domain.InstanceState
	for _, st := range states {
		i, ok := st.Replica()
		if !ok || i >= n {
			extra = append(extra, st)
			continue
		}
		if _, dup := byReplica[i]; dup {
			extra = append(extra, st)
			continue
		}
		byReplica[i] = st
	}
	return byReplica, extra
}
