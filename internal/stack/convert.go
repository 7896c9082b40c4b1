package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/moorhq/moor/internal/catalog"
	"github.com/moorhq/moor/internal/domain"
)

// convert maps one loaded service. volumes maps declared volume names to
// moor's; usedBy records which service mounts each, as a volume shared by
// two services has no meaning in moor (each container has its own).
func convert(stackName string, s types.ServiceConfig, volumes, usedBy map[string]string) (Service, error) {
	field := "services." + s.Name
	out := Service{Name: s.Name, Container: stackName + "-" + s.Name, Replicas: 1}
	if len(out.Container) > domain.MaxNameLength {
		return Service{}, domain.Invalid(field, "the container's name %s (STACK-SERVICE) is longer than %d characters: shorten the stack's or the service's name", out.Container, domain.MaxNameLength)
	}
	t := domain.Type{
		ID: TypeID, Source: Source, Title: stackName + "/" + s.Name,
		Image: s.Image, Command: []string(s.Command), Privileged: s.Privileged,
		Hostname: s.Hostname, Interactive: s.StdinOpen || s.Tty,
	}
	if len(s.Labels) > 0 {
		t.Labels = maps.Clone(map[string]string(s.Labels))
	}
	var err error
	if t.Network, err = networkMode(field, s.NetworkMode); err != nil {
		return Service{}, err
	}
	if t.Restart, err = restart(field, s); err != nil {
		return Service{}, err
	}
	if t.Resources, err = resources(field, s); err != nil {
		return Service{}, err
	}
	if t.Health, err = health(s.HealthCheck); err != nil {
		return Service{}, err
	}
	if t.Volumes, err = mounts(field, s, volumes, usedBy); err != nil {
		return Service{}, err
	}
	for _, d := range s.Devices {
		dev := domain.DeviceSpec{HostPath: d.Source, ContainerPath: d.Target, Permissions: d.Permissions}
		if dev.ContainerPath == dev.HostPath {
			dev.ContainerPath = ""
		}
		t.Devices = append(t.Devices, dev)
	}
	for _, c := range s.CapAdd {
		t.CapAdd = append(t.CapAdd, strings.ToUpper(c)) // Docker reads them in any case
	}
	for _, c := range s.CapDrop {
		t.CapDrop = append(t.CapDrop, strings.ToUpper(c))
	}
	publish, err := ports(field, s, &t)
	if err != nil {
		return Service{}, err
	}
	out.Env = map[string]string{}
	for _, k := range sortedKeys(s.Environment) {
		// A bare "NAME" with nothing to take it from is unset, as in compose.
		if v := s.Environment[k]; v != nil {
			out.Env[k] = *v
			t.Env = append(t.Env, domain.EnvSpec{Name: k})
		}
	}
	if s.Scale != nil {
		out.Replicas = *s.Scale
	} else if s.Deploy != nil && s.Deploy.Replicas != nil {
		out.Replicas = *s.Deploy.Replicas
	}
	if out.Replicas < 0 || out.Replicas > domain.MaxReplicas {
		return Service{}, domain.Invalid(field+".deploy.replicas", "must be between 0 and %d", domain.MaxReplicas)
	}
	if t.Network == domain.NetworkHost && out.Replicas > 1 {
		return Service{}, domain.Invalid(field+".deploy.replicas", "must be 0 or 1 on the host's network (replicas would share the host's ports)")
	}

	if _, ok := t.HTTPPort(); ok {
		t.HTTPPortReason = "app_protocol: http"
	}
	if t, err = catalog.Complete(t); err != nil {
		return Service{}, typeError(field, err)
	}
	// Values are held to the catalog's rules for values (size, control
	// characters); empty ones are "not given" there, so skipped.
	if _, _, err := catalog.Resolve(t, out.Env, nil); err != nil {
		return Service{}, typeError(field, err)
	}
	for _, p := range publish {
		out.Publish = append(out.Publish, domain.PublishRequest{Port: domain.PortRef(portName(t, p)), HostPort: p.hostPort, HostIP: p.hostIP})
	}
	// The address moor binds when the file gives none is the installation's
	// (MOOR_PUBLISH_ADDR), known only at deploy: its default stands in.
	published, err := domain.ResolvePublish(t, out.Publish, defaultPublishAddr)
	if err != nil {
		return Service{}, typeError(field, err)
	}
	if err := domain.PublishFits("replicas", out.Replicas, published); err != nil {
		return Service{}, typeError(field, err)
	}
	out.Type = t
	out.DependsOn = dependencies(s)
	out.AdminOnly = adminOnly(field, t)
	if out.Hash, err = hash(out); err != nil {
		return Service{}, err
	}
	return out, nil
}

// defaultPublishAddr is lifecycle.DefaultPublishAddr, which this package
// cannot import (the lifecycle deploys stacks).
const defaultPublishAddr = "127.0.0.1"

// typeFields are the compose keys of a type's top-level fields, so a
// broken catalog rule names the key the file's author wrote.
var typeFields = map[string]string{
	"image": "image", "command": "command", "env": "environment", "ports": "ports",
	"volumes": "volumes", "health": "healthcheck", "resources": "deploy.resources.limits",
	"restart": "restart", "network": "network_mode", "hostname": "hostname",
	"devices": "devices", "labels": "labels", "cap_add": "cap_add", "cap_drop": "cap_drop",
	"publish": "ports", "replicas": "deploy.replicas",
}

// typeError moves a catalog or publish field error under the service:
// "ports[1].name" becomes "services.web.ports[1].name". List indices are
// the type's, which follow the file's order.
func typeError(service string, err error) error {
	var fe *domain.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	top := fe.Field
	if i := strings.IndexAny(top, ".["); i >= 0 {
		top = top[:i]
	}
	key, ok := typeFields[top]
	if !ok {
		return domain.Invalid(service, "%s: %s", fe.Field, fe.Rule)
	}
	return domain.Invalid(service+"."+key+fe.Field[len(top):], "%s", fe.Rule)
}

func networkMode(field, mode string) (string, error) {
	switch mode {
	case "":
		return "", nil
	case "host":
		return domain.NetworkHost, nil
	}
	return "", domain.Invalid(field+".network_mode", "must be host or left out (the project's network), got %q: moor attaches every other service to its project's network", mode)
}

// restart maps compose's policies. Compose's default is "no", and so is
// moor's for a stack: a service restarts only when the file says so.
func restart(field string, s types.ServiceConfig) (domain.RestartPolicy, error) {
	var deploy string
	hasDeploy := s.Deploy != nil && s.Deploy.RestartPolicy != nil
	if hasDeploy {
		switch c := s.Deploy.RestartPolicy.Condition; c {
		case "", "any":
			deploy = "always"
		case "none":
			deploy = "no"
		case "on-failure":
			deploy = c
		default:
			return "", domain.Invalid(field+".deploy.restart_policy.condition", "must be none, on-failure or any, got %q", c)
		}
	}
	var p domain.RestartPolicy
	switch r := s.Restart; r {
	case "":
		if !hasDeploy {
			return domain.RestartNever, nil
		}
		return domain.RestartPolicy(deploy), nil
	case "no":
		p = domain.RestartNever
	case "always", "unless-stopped":
		// moor's desired state is what "stopped by hand" means here.
		p = domain.RestartAlways
	case "on-failure":
		p = domain.RestartOnFailure
	default:
		if strings.HasPrefix(r, "on-failure:") {
			return "", domain.Invalid(field+".restart", "on-failure takes no retry count in moor, which retries without limit: write on-failure")
		}
		return "", domain.Invalid(field+".restart", "must be no, always, unless-stopped or on-failure, got %q", r)
	}
	if hasDeploy && domain.RestartPolicy(deploy) != p {
		return "", domain.Invalid(field+".deploy.restart_policy", "says otherwise than restart: keep one of them")
	}
	return p, nil
}

// resources reads mem_limit and cpus, or deploy.resources.limits.
func resources(field string, s types.ServiceConfig) (domain.ResourceSpec, error) {
	mem, cpus := int64(s.MemLimit), float64(s.CPUS)
	if s.Deploy != nil && s.Deploy.Resources.Limits != nil {
		l := s.Deploy.Resources.Limits
		if l.MemoryBytes != 0 {
			if mem != 0 && mem != int64(l.MemoryBytes) {
				return domain.ResourceSpec{}, domain.Invalid(field+".deploy.resources.limits.memory", "differs from mem_limit: keep one of them")
			}
			mem = int64(l.MemoryBytes)
		}
		if l.NanoCPUs != 0 {
			if cpus != 0 && float32(cpus) != float32(l.NanoCPUs) {
				return domain.ResourceSpec{}, domain.Invalid(field+".deploy.resources.limits.cpus", "differs from cpus: keep one of them")
			}
			cpus = float64(l.NanoCPUs)
		}
	}
	// moor limits memory in whole MB: a limit between two is rounded up,
	// never below what the file asked for.
	mb := (mem + (1<<20 - 1)) >> 20
	// float32 in compose-go: 0.1 would read 0.10000000149.
	cpus = math.Round(cpus*1000) / 1000
	return domain.ResourceSpec{MemoryMB: mb, CPUs: cpus}, nil
}

func health(h *types.HealthCheckConfig) (*domain.HealthSpec, error) {
	if h == nil {
		return nil, nil
	}
	if h.Disable {
		return &domain.HealthSpec{Test: []string{"NONE"}}, nil
	}
	spec := &domain.HealthSpec{Test: slices.Clone([]string(h.Test))}
	for _, d := range []struct {
		to   *time.Duration
		from *types.Duration
	}{{&spec.Interval, h.Interval}, {&spec.Timeout, h.Timeout}, {&spec.StartPeriod, h.StartPeriod}} {
		if d.from != nil {
			*d.to = time.Duration(*d.from)
		}
	}
	if h.Retries != nil {
		spec.Retries = int(min(*h.Retries, math.MaxInt32))
	}
	return spec, nil
}

// mounts maps named volumes and absolute host paths; anything else has
// no meaning without compose's project directory, or no moor equivalent.
func mounts(field string, s types.ServiceConfig, volumes, usedBy map[string]string) ([]domain.VolumeSpec, error) {
	var out []domain.VolumeSpec
	for i, v := range s.Volumes {
		f := fmt.Sprintf("%s.volumes[%d]", field, i)
		if v.Consistency != "" || v.Bind != nil && (v.Bind.SELinux != "" || v.Bind.Propagation != "" || v.Bind.Recursive != "" || !bool(v.Bind.CreateHostPath)) ||
			v.Volume != nil && (v.Volume.NoCopy || v.Volume.Subpath != "" || len(v.Volume.Labels) > 0) {
			return nil, domain.Invalid(f, "mount options other than ro and rw are not supported by moor")
		}
		spec := domain.VolumeSpec{Path: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeVolume:
			if v.Source == "" {
				return nil, domain.Invalid(f, "an anonymous volume is not supported by moor: name it (NAME:%s) and declare NAME under the top-level volumes", v.Target)
			}
			name, ok := volumes[v.Source]
			if !ok {
				return nil, domain.Invalid(f, "volume %q is not declared under the top-level volumes", v.Source)
			}
			if other, shared := usedBy[name]; shared && other != s.Name {
				return nil, domain.Invalid(f, "volume %q is mounted by service %s too: moor gives each container volumes of its own, so the two would not share it", v.Source, other)
			}
			usedBy[name] = s.Name
			spec.Name = name
		case types.VolumeTypeBind:
			if !strings.HasPrefix(v.Source, "/") {
				return nil, domain.Invalid(f, "host path %q is relative: moor has no project directory to read it against; give an absolute path (admins only) or a named volume", v.Source)
			}
			spec.HostPath = v.Source
		default:
			return nil, domain.Invalid(f, "a volume of type %s is not supported by moor: only named volumes and host paths", v.Type)
		}
		out = append(out, spec)
	}
	// Host paths need a volume name too: by order of container path, so
	// reordering the list changes nothing.
	var binds []*domain.VolumeSpec
	for i := range out {
		if out[i].HostPath != "" {
			binds = append(binds, &out[i])
		}
	}
	slices.SortFunc(binds, func(a, b *domain.VolumeSpec) int { return strings.Compare(a.Path, b.Path) })
	for i, b := range binds {
		b.Name = "host" + strconv.Itoa(i+1)
	}
	return out, nil
}

// port is one entry of ports or expose, before the type names it.
type port struct {
	number   int
	protocol string
	hostPort int // 0: not published
	hostIP   string
}

// ports declares the container ports of ports and expose on t, and
// returns those to publish. A port without a host port ("80") is declared
// only: moor publishes no random host ports.
func ports(field string, s types.ServiceConfig, t *domain.Type) ([]port, error) {
	var publish []port
	for i, p := range s.Ports {
		f := fmt.Sprintf("%s.ports[%d]", field, i)
		pp := port{number: int(p.Target), protocol: strings.ToLower(p.Protocol), hostIP: p.HostIP}
		if pp.protocol == "" {
			pp.protocol = "tcp"
		}
		if pp.protocol != "tcp" && pp.protocol != "udp" {
			return nil, domain.Invalid(f, "protocol %s is not supported by moor: tcp or udp", p.Protocol)
		}
		switch p.Mode {
		case "", "ingress", "host": // swarm's routing modes: one host, the same thing
		default:
			return nil, domain.Invalid(f+".mode", "must be ingress or host, got %q", p.Mode)
		}
		if p.Published != "" {
			n, err := strconv.Atoi(p.Published)
			if err != nil {
				return nil, domain.Invalid(f, "host port %q is not supported by moor: give one port, not a range", p.Published)
			}
			pp.hostPort = n
			publish = append(publish, pp)
		}
		if err := declarePort(f, t, pp, p.Name, p.AppProtocol); err != nil {
			return nil, err
		}
	}
	for i, e := range s.Expose {
		f := fmt.Sprintf("%s.expose[%d]", field, i)
		num, proto, _ := strings.Cut(e, "/")
		if proto == "" {
			proto = "tcp"
		}
		n, err := strconv.Atoi(num)
		if err != nil || proto != "tcp" && proto != "udp" {
			return nil, domain.Invalid(f, "%q is not supported by moor: one port, tcp or udp (3000, 53/udp)", e)
		}
		if err := declarePort(f, t, port{number: n, protocol: proto}, "", ""); err != nil {
			return nil, err
		}
	}
	return publish, nil
}

// declarePort adds p to t's ports unless declared already; name and
// appProtocol come from the long syntax (a name must then agree).
func declarePort(f string, t *domain.Type, p port, name, appProtocol string) error {
	if appProtocol != "" && appProtocol != "http" {
		return domain.Invalid(f+".app_protocol", "must be http (the port Traefik routes to) or left out, got %q", appProtocol)
	}
	for i := range t.Ports {
		q := &t.Ports[i]
		if q.Port != p.number || q.Protocol != p.protocol {
			continue
		}
		if name != "" && q.Name != "" && q.Name != name {
			return domain.Invalid(f+".name", "port %d/%s is named %q already", p.number, p.protocol, q.Name)
		}
		if name != "" {
			q.Name = name
		}
		q.HTTP = q.HTTP || appProtocol == "http"
		return nil
	}
	t.Ports = append(t.Ports, domain.PortSpec{Name: name, Port: p.number, Protocol: p.protocol, HTTP: appProtocol == "http"})
	return nil
}

// portName is the name the completed type gave p's container port.
func portName(t domain.Type, p port) string {
	for _, q := range t.Ports {
		if q.Port == p.number && q.Protocol == p.protocol {
			return q.Name
		}
	}
	return strconv.Itoa(p.number)
}

func dependencies(s types.ServiceConfig) []Dependency {
	var out []Dependency
	for _, name := range sortedKeys(s.DependsOn) {
		c := s.DependsOn[name].Condition
		if c == "" {
			c = ServiceStarted
		}
		out = append(out, Dependency{Service: name, Condition: c})
	}
	return out
}

// adminOnly names each key that makes t need an admin, in the terms of
// domain.Type.RequiresAdmin.
func adminOnly(field string, t domain.Type) []string {
	var out []string
	if t.Privileged {
		out = append(out, field+".privileged: privileged mode")
	}
	if t.Network == domain.NetworkHost {
		out = append(out, field+".network_mode: the host's network")
	}
	for i, v := range t.Volumes {
		if v.HostPath != "" {
			out = append(out, fmt.Sprintf("%s.volumes[%d]: host path %s", field, i, v.HostPath))
		}
	}
	for i, d := range t.Devices {
		out = append(out, fmt.Sprintf("%s.devices[%d]: host device %s", field, i, d.HostPath))
	}
	if len(t.CapAdd) > 0 {
		out = append(out, field+".cap_add: added capabilities "+strings.Join(t.CapAdd, ", "))
	}
	return out
}

// hash is the sha256 of the service's definition in a canonical form:
// JSON (maps in key order) of a copy whose set-like lists are sorted.
func hash(s Service) (string, error) {
	t := s.Type
	t.Ports = slices.Clone(t.Ports)
	slices.SortFunc(t.Ports, func(a, b domain.PortSpec) int {
		return strings.Compare(fmt.Sprintf("%05d/%s", a.Port, a.Protocol), fmt.Sprintf("%05d/%s", b.Port, b.Protocol))
	})
	t.Volumes = slices.Clone(t.Volumes)
	slices.SortFunc(t.Volumes, func(a, b domain.VolumeSpec) int { return strings.Compare(a.Path, b.Path) })
	t.Devices = slices.Clone(t.Devices)
	slices.SortFunc(t.Devices, func(a, b domain.DeviceSpec) int { return strings.Compare(a.HostPath, b.HostPath) })
	t.CapAdd, t.CapDrop = slices.Sorted(slices.Values(t.CapAdd)), slices.Sorted(slices.Values(t.CapDrop))
	publish := slices.Clone(s.Publish)
	slices.SortFunc(publish, func(a, b domain.PublishRequest) int {
		return strings.Compare(fmt.Sprintf("%05d/%s/%s", a.HostPort, a.HostIP, a.Port), fmt.Sprintf("%05d/%s/%s", b.HostPort, b.HostIP, b.Port))
	})
	b, err := json.Marshal(struct {
		Type    domain.Type             `json:"type"`
		Env     map[string]string       `json:"env"`
		Publish []domain.PublishRequest `json:"publish"`
	}{t, s.Env, publish})
	if err != nil {
		return "", fmt.Errorf("hash service %s: %w", s.Name, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
