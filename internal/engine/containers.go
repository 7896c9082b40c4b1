package engine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/moorhq/moor/internal/domain"
)

// Create creates the container spec describes (without starting it) and
// returns its ID. If a container named spec.Name exists and carries the same
// domain.LabelID value (a retry after a crash), its ID is returned; a container of
// that name that belongs to something else is a *domain.NameTakenError
// (domain.ErrConflict) naming its holder.
// A missing image wraps domain.ErrNotFound.
func (d *Docker) Create(ctx context.Context, spec domain.InstanceSpec) (string, error) {
	opts, err := createOptions(spec)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	res, err := d.cli.ContainerCreate(ctx, opts)
	if err == nil {
		for _, w := range res.Warnings {
			d.log.Warn("engine warning on create", "container", spec.Name, "warning", w)
		}
		d.log.Debug("container created", "container", spec.Name, "id", res.ID)
		return res.ID, nil
	}
	if !cerrdefs.IsConflict(err) || spec.Name == "" {
		return "", wrap("create container "+spec.Name, err)
	}
	existing, ierr := d.cli.ContainerInspect(ctx, spec.Name, client.ContainerInspectOptions{})
	if ierr != nil {
		if cerrdefs.IsNotFound(ierr) {
			// Removed in between: let the caller retry.
			return "", wrap("create container "+spec.Name, err)
		}
		return "", wrap("inspect container "+spec.Name, ierr)
	}
	var labels map[string]string
	if existing.Container.Config != nil {
		labels = existing.Container.Config.Labels
	}
	want := spec.Labels[domain.LabelID]
	if strings.TrimPrefix(existing.Container.Name, "/") == spec.Name && want != "" && labels[domain.LabelID] == want {
		return existing.Container.ID, nil
	}
	// Whose it is, in domain terms: the caller words the way out.
	return "", fmt.Errorf("create container %s: %w", spec.Name, &domain.NameTakenError{
		Name: spec.Name, RuntimeID: existing.Container.ID, Owner: labels[domain.LabelOwner], ID: labels[domain.LabelID]})
}

func createOptions(spec domain.InstanceSpec) (client.ContainerCreateOptions, error) {
	if spec.Image == "" {
		return client.ContainerCreateOptions{}, domain.Invalid("image", "is required")
	}
	cfg := &container.Config{
		Image:    spec.Image,
		Hostname: spec.Hostname,
		Cmd:      spec.Cmd,
		Labels:   spec.Labels,
		// -it: nothing attaches, but a shell waits on the open terminal.
		Tty:       spec.TTY,
		OpenStdin: spec.TTY,
	}
	for _, k := range sortedKeys(spec.Env) {
		cfg.Env = append(cfg.Env, k+"="+spec.Env[k])
	}
	if len(spec.Ports) > 0 {
		cfg.ExposedPorts = network.PortSet{}
		for _, p := range spec.Ports {
			port, err := enginePort("ports", p.Port, p.Protocol)
			if err != nil {
				return client.ContainerCreateOptions{}, err
			}
			cfg.ExposedPorts[port] = struct{}{}
		}
	}
	bindings, err := portBindings(spec.Published)
	if err != nil {
		return client.ContainerCreateOptions{}, err
	}
	for port := range bindings {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		cfg.ExposedPorts[port] = struct{}{}
	}
	if h := spec.Health; h != nil && len(h.Test) > 0 {
		cfg.Healthcheck = &container.HealthConfig{
			Test:        slices.Clone(h.Test),
			Interval:    h.Interval,
			Timeout:     h.Timeout,
			StartPeriod: h.StartPeriod,
			Retries:     h.Retries,
		}
	}

	hc := &container.HostConfig{
		PortBindings:  bindings,
		RestartPolicy: restartPolicy(spec.Restart),
		Privileged:    spec.Privileged,
		CapAdd:        slices.Clone(spec.CapAdd),
		CapDrop:       slices.Clone(spec.CapDrop),
		Resources: container.Resources{
			Memory:   spec.MemoryBytes,
			NanoCPUs: spec.NanoCPUs,
		},
	}
	netName := spec.Network
	if spec.HostNetwork {
		// Docker refuses network-scoped aliases outside user-defined
		// networks: no endpoint settings for "host".
		netName = ""
		hc.NetworkMode = network.NetworkHost
	}
	if netName != "" {
		hc.NetworkMode = container.NetworkMode(netName)
	}
	for _, d := range spec.Devices {
		if d.HostPath == "" {
			return client.ContainerCreateOptions{}, domain.Invalid("devices", "host path is required")
		}
		dm := container.DeviceMapping{PathOnHost: d.HostPath, PathInContainer: d.ContainerPath, CgroupPermissions: d.Permissions}
		if dm.PathInContainer == "" {
			dm.PathInContainer = d.HostPath
		}
		if dm.CgroupPermissions == "" {
			dm.CgroupPermissions = "rwm"
		}
		hc.Devices = append(hc.Devices, dm)
	}
	for _, s := range spec.DNS {
		if s == "" {
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return client.ContainerCreateOptions{}, domain.Invalid("dns", "%q is not an IP address", s)
		}
		hc.DNS = append(hc.DNS, ip)
	}
	for _, m := range spec.Mounts {
		if m.Target == "" || m.Source == "" {
			return client.ContainerCreateOptions{}, domain.Invalid("mounts", "source and target are required")
		}
		if m.Bind {
			// Binds rather than Mounts: the engine creates a missing host
			// path instead of failing.
			b := m.Source + ":" + m.Target
			if m.ReadOnly {
				b += ":ro"
			}
			hc.Binds = append(hc.Binds, b)
			continue
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{
			Type:     mount.TypeVolume,
			Source:   m.Source,
			Target:   m.Target,
			ReadOnly: m.ReadOnly,
		})
	}

	var nc *network.NetworkingConfig
	if netName != "" {
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			netName: {Aliases: slices.Clone(spec.Aliases)},
		}}
	}
	return client.ContainerCreateOptions{
		Name:             spec.Name,
		Config:           cfg,
		HostConfig:       hc,
		NetworkingConfig: nc,
	}, nil
}

// enginePort is a container port in the engine's terms (TCP when the
// protocol is empty).
func enginePort(field string, n int, protocol string) (network.Port, error) {
	proto := network.IPProtocol(strings.ToLower(protocol))
	if proto == "" {
		proto = network.TCP
	}
	if n < 1 || n > math.MaxUint16 {
		return network.Port{}, domain.Invalid(field, "port %d is out of range", n)
	}
	port, ok := network.PortFrom(uint16(n), proto)
	if !ok {
		return network.Port{}, domain.Invalid(field, "protocol %q is not tcp or udp", protocol)
	}
	return port, nil
}

// portBindings are the host ports to bind (nil: none).
func portBindings(published []domain.PublishedPort) (network.PortMap, error) {
	if len(published) == 0 {
		return nil, nil
	}
	m := network.PortMap{}
	for _, p := range published {
		port, err := enginePort("published", p.Port, p.Protocol)
		if err != nil {
			return nil, err
		}
		ip, err := netip.ParseAddr(p.HostIP)
		if err != nil {
			return nil, domain.Invalid("published", "host address %q is not an IP address", p.HostIP)
		}
		if p.HostPort < 1 || p.HostPort > math.MaxUint16 {
			return nil, domain.Invalid("published", "host port %d is out of range", p.HostPort)
		}
		m[port] = append(m[port], network.PortBinding{HostIP: ip, HostPort: strconv.Itoa(p.HostPort)})
	}
	return m, nil
}

func restartPolicy(p domain.RestartPolicy) container.RestartPolicy {
	switch p {
	case domain.RestartAlways:
		return container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	case domain.RestartOnFailure:
		return container.RestartPolicy{Name: container.RestartPolicyOnFailure}
	}
	return container.RestartPolicy{Name: container.RestartPolicyDisabled}
}

// Start starts a container; one already running is not an error. A missing
// container wraps domain.ErrNotFound.
func (d *Docker) Start(ctx context.Context, id string) error {
	_, err := d.cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
	if err == nil || cerrdefs.IsNotModified(err) {
		return nil
	}
	if pe := portInUse(err); pe != nil {
		return fmt.Errorf("start container %s: %w", id, pe)
	}
	return wrap("start container "+id, err)
}

// The engine's words for a host port it could not bind: a program holds it
// (the userland proxy's or the engine's own bind failed), or another
// container publishes it. Engine 20.10 says "Error starting userland proxy:
// listen tcp4 127.0.0.1:15432: bind: address already in use" and "Bind for
// 127.0.0.1:15432 failed: port is already allocated"; newer engines
// "failed to bind host port for 0.0.0.0:15432:172.17.0.2:80/tcp: address
// already in use". The first HOST:PORT in the message is the host side.
var hostPortRE = regexp.MustCompile(`(\[[0-9A-Fa-f:.]+\]|\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})\b`)

// portInUse recognises a start refused for a host port it cannot bind:
// taken, or on an address the host has not (nil: not that).
func portInUse(err error) *domain.PortInUseError {
	msg := err.Error()
	var by string
	switch {
	case strings.Contains(msg, "port is already allocated"):
		by = domain.PortHeldByDocker
	case strings.Contains(msg, "address already in use"):
		by = domain.PortHeldByProgram
	case strings.Contains(msg, "cannot assign requested address"):
		by = domain.PortNoSuchAddress
	default:
		return nil
	}
	pe := &domain.PortInUseError{By: by, Err: err}
	if m := hostPortRE.FindStringSubmatch(msg); m != nil {
		pe.HostIP = strings.Trim(m[1], "[]")
		pe.HostPort, _ = strconv.Atoi(m[2])
	}
	return pe
}

// Stop sends the container its stop signal (SIGTERM unless the image says
// otherwise) and kills it after timeout, rounded up to whole seconds (0:
// kill at once; negative: the engine's default, 10 s). It returns when the
// container has stopped. A container not running is not an error; a
// missing one wraps domain.ErrNotFound.
func (d *Docker) Stop(ctx context.Context, id string, timeout time.Duration) error {
	var opts client.ContainerStopOptions
	if timeout >= 0 {
		secs := int(math.Ceil(timeout.Seconds()))
		opts.Timeout = &secs
	}
	_, err := d.cli.ContainerStop(ctx, id, opts)
	if err == nil || cerrdefs.IsNotModified(err) {
		return nil
	}
	return wrap("stop container "+id, err)
}

// Remove force-removes a container (killing it if it runs) with its
// anonymous volumes; named volumes stay. A missing container, or one
// already being removed, is not an error.
func (d *Docker) Remove(ctx context.Context, id string) error {
	_, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress"):
		return nil
	}
	return wrap("remove container "+id, err)
}

// Inspect returns the full state of a container (by ID or name). A missing
// container wraps domain.ErrNotFound.
func (d *Docker) Inspect(ctx context.Context, id string) (domain.InstanceState, error) {
	res, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return domain.InstanceState{}, wrap("inspect container "+id, err)
	}
	st := stateFromInspect(res.Container)
	st.Node = d.Node()
	return st, nil
}

func stateFromInspect(c container.InspectResponse) domain.InstanceState {
	s := domain.InstanceState{
		RuntimeID: c.ID,
		Name:      strings.TrimPrefix(c.Name, "/"),
	}
	if c.Config != nil {
		s.Labels = c.Config.Labels
		s.Image = c.Config.Image
	}
	if s.Image == "" {
		s.Image = c.Image
	}
	s.RestartCount = c.RestartCount
	if st := c.State; st != nil {
		s.Status = string(st.Status)
		s.Running = st.Running
		s.ExitCode = st.ExitCode
		s.Error = st.Error
		s.OOMKilled = st.OOMKilled
		s.Restarting = st.Restarting
		s.StartedAt = parseTime(st.StartedAt)
		s.FinishedAt = parseTime(st.FinishedAt)
		if st.Health != nil && st.Health.Status != container.NoHealthcheck {
			s.Health = string(st.Health.Status)
		}
	}
	var mode string
	if c.HostConfig != nil {
		mode = string(c.HostConfig.NetworkMode)
	}
	if c.NetworkSettings != nil {
		s.IPs, s.IP = ips(c.NetworkSettings.Networks, mode)
	}
	return s
}

// ips maps network names to IPv4 addresses and picks the main one: on the
// network the container was created on, else the first by name.
func ips(nets map[string]*network.EndpointSettings, mode string) (map[string]string, string) {
	out := map[string]string{}
	for name, ep := range nets {
		if ep != nil && ep.IPAddress.Is4() {
			out[name] = ep.IPAddress.String()
		}
	}
	if ip, ok := out[mode]; ok {
		return out, ip
	}
	if mode == "default" {
		if ip, ok := out["bridge"]; ok {
			return out, ip
		}
	}
	for _, name := range sortedKeys(out) {
		return out, out[name]
	}
	return out, ""
}

// parseTime reads the engine's RFC 3339 times; Go's zero time and anything
// unreadable give the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// List returns every container, running or not, that carries all labels (an
// empty value matches any value), in one engine call. See domain.InstanceState for what it
// fills.
func (d *Docker) List(ctx context.Context, labels map[string]string) ([]domain.InstanceState, error) {
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilters(labels)})
	if err != nil {
		return nil, wrap("list containers", err)
	}
	out := make([]domain.InstanceState, 0, len(res.Items))
	for _, c := range res.Items {
		if !hasLabels(c.Labels, labels) {
			continue
		}
		st := stateFromSummary(c)
		st.Node = d.Node()
		out = append(out, st)
	}
	return out, nil
}

func stateFromSummary(c container.Summary) domain.InstanceState {
	s := domain.InstanceState{
		RuntimeID: c.ID,
		Name:      summaryName(c.Names),
		Labels:    c.Labels,
		Image:     c.Image,
		Status:    string(c.State),
		Running:   c.State == container.StateRunning,
	}
	switch {
	case c.Health != nil: // API 1.52 and later
		if c.Health.Status != container.NoHealthcheck {
			s.Health = string(c.Health.Status)
		}
	case strings.Contains(c.Status, "(healthy)"):
		s.Health = string(container.Healthy)
	case strings.Contains(c.Status, "(unhealthy)"):
		s.Health = string(container.Unhealthy)
	case strings.Contains(c.Status, "(health: starting)"):
		s.Health = string(container.Starting)
	}
	if c.State == container.StateExited {
		s.ExitCode = exitCodeFromStatus(c.Status)
	}
	if c.NetworkSettings != nil {
		s.IPs, s.IP = ips(c.NetworkSettings.Networks, c.HostConfig.NetworkMode)
	}
	return s
}

// summaryName picks the container's own name from a list entry's names,
// which also holds the names it is linked under ("/other/alias").
func summaryName(names []string) string {
	for _, n := range names {
		if strings.Count(n, "/") == 1 {
			return strings.TrimPrefix(n, "/")
		}
	}
	if len(names) > 0 {
		return strings.TrimPrefix(names[0], "/")
	}
	return ""
}

// exitCodeFromStatus reads the code out of "Exited (3) 5 seconds ago".
func exitCodeFromStatus(status string) int {
	rest, ok := strings.CutPrefix(status, "Exited (")
	if !ok {
		return 0
	}
	num, _, ok := strings.Cut(rest, ")")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0
	}
	return n
}

// Logs writes the container's stdout and stderr to w, interleaved in the
// order the engine stored them: the last tail lines (of both streams
// together), or all of them when tail <= 0. It does not follow. A missing container wraps
// domain.ErrNotFound.
func (d *Docker) Logs(ctx context.Context, id string, lo domain.LogOptions, w io.Writer) error {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "all", Follow: lo.Follow}
	if lo.Tail > 0 {
		opts.Tail = strconv.Itoa(lo.Tail)
	}
	rc, err := d.cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return wrap("logs of container "+id, err)
	}
	defer rc.Close()
	// The engine multiplexes the two streams unless the container has a
	// TTY (an interactive type's, or a container moor did not make): tell
	// by the frame header.
	br := bufio.NewReader(rc)
	head, _ := br.Peek(8)
	if len(head) == 8 && head[0] <= 2 && head[1] == 0 && head[2] == 0 && head[3] == 0 {
		_, err = stdcopy.StdCopy(w, w, br)
	} else {
		_, err = io.Copy(w, br)
	}
	if err != nil && !(lo.Follow && ctx.Err() != nil) {
		return wrap("logs of container "+id, err)
	}
	return nil
}
