package domain

import (
	"strings"
	"time"
)

// Type is a container type of the catalog: what a user can deploy by name.
type Type struct {
	ID          string        `json:"id" yaml:"id"`
	Title       string        `json:"title" yaml:"title"`
	Description string        `json:"description,omitempty" yaml:"description"`
	Logo        string        `json:"logo,omitempty" yaml:"logo"`
	Image       string        `json:"image" yaml:"image"`
	Categories  []string      `json:"categories" yaml:"categories"`
	Ports       []PortSpec    `json:"ports" yaml:"ports"`
	Env         []EnvSpec     `json:"env" yaml:"env"`
	Volumes     []VolumeSpec  `json:"volumes,omitempty" yaml:"volumes"`
	Health      *HealthSpec   `json:"health,omitempty" yaml:"health"`
	Resources   ResourceSpec  `json:"resources" yaml:"resources"`
	Command     []string      `json:"command,omitempty" yaml:"command"`
	Restart     RestartPolicy `json:"restart" yaml:"restart"`
	Privileged  bool          `json:"privileged,omitempty" yaml:"privileged"`
	// HTTPPortReason says why the HTTP port is the one Traefik routes to
	// (declared by the type, a Traefik label, its name, a well-known web
	// port, the only TCP port, or chosen at create).
	HTTPPortReason string `json:"http_port_reason,omitempty" yaml:"-"`
	// Network is "" (moor's network) or NetworkHost (the host's network
	// stack: no moor network, no container-zone aliases of its own; see
	// docs/catalog.md for how it is routed).
	Network string `json:"network,omitempty" yaml:"network"`
	// Hostname is the container's host name ("": the container's name and
	// replica); see ReplicaHostname.
	Hostname string `json:"hostname,omitempty" yaml:"hostname"`
	// Devices are host devices given to the container.
	Devices []DeviceSpec `json:"devices,omitempty" yaml:"devices"`
	// Labels are put on the container, under moor's own (moor.*), which
	// they can never replace.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels"`
	// Interactive keeps the container's stdin open on a terminal, as
	// `docker run -it` does: an image whose command is a shell (an "ubuntu"
	// running bash) then keeps running instead of exiting at once.
	Interactive bool `json:"interactive,omitempty" yaml:"interactive"`
	// CapAdd and CapDrop are Linux capabilities given to or taken from
	// the container ("NET_ADMIN", "ALL"), without the CAP_ prefix.
	CapAdd  []string `json:"cap_add,omitempty" yaml:"cap_add"`
	CapDrop []string `json:"cap_drop,omitempty" yaml:"cap_drop"`
	// Routing is how Traefik reaches the type's ports (optional).
	Routing *Routing `json:"routing,omitempty" yaml:"routing"`
	// Backup says how the container's data is made consistent for a
	// backup (nil: its volumes are archived as they are).
	Backup *BackupSpec `json:"backup,omitempty" yaml:"backup"`
	// Source says where the type came from: "builtin", "dir" or "portainer".
	Source string `json:"source" yaml:"-"`
}

// NetworkHost is Type.Network for the host's network stack.
const NetworkHost = "host"

// RequiresAdmin reports whether deploying the type needs the admin role:
// host mounts, host networking, devices, privileged mode and added
// capabilities reach outside the container. Labels, the host name and
// dropped capabilities stay inside it.
func (t *Type) RequiresAdmin() bool {
	if t.Privileged || t.Network == NetworkHost || len(t.Devices) > 0 || len(t.CapAdd) > 0 {
		return true
	}
	for _, v := range t.Volumes {
		if v.HostPath != "" {
			return true
		}
	}
	return false
}

// HTTPPort returns the port Traefik routes to, if the type has one.
func (t *Type) HTTPPort() (PortSpec, bool) {
	for _, p := range t.Ports {
		if p.HTTP {
			return p, true
		}
	}
	return PortSpec{}, false
}

// ReplicaHostname is the host name of replica i of a container named name:
// the type's Hostname for replica 0, "<Hostname>-<i>" for the others (so
// clustered software, which tells its nodes apart by host name, never sees
// two alike), and "<name>-<i>" when the type sets none. The result is at
// most MaxNameLength long: the hostname is shortened to fit the suffix.
func (t *Type) ReplicaHostname(name string, i int) string {
	base := t.Hostname
	if base == "" {
		base = name
	} else if i == 0 {
		return base
	}
	suffix := "-" + itoa(i)
	if len(base)+len(suffix) > MaxNameLength {
		base = strings.TrimRight(base[:MaxNameLength-len(suffix)], "-")
	}
	return base + suffix
}

// DeviceSpec is a host device made available in the container, as `docker
// run --device HOST:CONTAINER:PERMISSIONS` does.
type DeviceSpec struct {
	HostPath string `json:"host_path" yaml:"host_path"`
	// ContainerPath is where it appears ("": HostPath).
	ContainerPath string `json:"container_path,omitempty" yaml:"container_path"`
	// Permissions are the cgroup permissions: r (read), w (write), m
	// (mknod), "" for all three.
	Permissions string `json:"permissions,omitempty" yaml:"permissions"`
}

// PortSpec is a port the container listens on.
type PortSpec struct {
	Name     string `json:"name" yaml:"name"`
	Port     int    `json:"port" yaml:"port"`
	Protocol string `json:"protocol" yaml:"protocol"`   // "tcp" or "udp"
	HTTP     bool   `json:"http,omitempty" yaml:"http"` // the port Traefik routes to
}

// EnvSpec declares one environment variable a type accepts.
type EnvSpec struct {
	Name        string   `json:"name" yaml:"name"`
	Label       string   `json:"label,omitempty" yaml:"label"`
	Description string   `json:"description,omitempty" yaml:"description"`
	Default     string   `json:"default,omitempty" yaml:"default"`
	Required    bool     `json:"required,omitempty" yaml:"required"`
	Choices     []string `json:"choices,omitempty" yaml:"choices"`
	Pattern     string   `json:"pattern,omitempty" yaml:"pattern"`
	// Generate makes moor create a secret value when none is given:
	// "password" (24 URL-safe characters) or "hex32" (32 hex digits).
	Generate string `json:"generate,omitempty" yaml:"generate"`
	// Secret values are stored encrypted and shown only through the
	// credentials endpoint. Unset in a type file, the catalog decides from
	// the name (see catalog.LooksSecret); a loaded type always has it set.
	Secret *bool `json:"secret,omitempty" yaml:"secret"`
	// Hash names the format the container expects the variable in
	// ("bcrypt" or "argon2id"): the user gives a password and moor stores
	// its hash.
	Hash string `json:"hash,omitempty" yaml:"hash"`
}

// IsSecret reports whether the variable's value is sealed and kept out of
// the container's JSON: declared secret, or generated.
func (e EnvSpec) IsSecret() bool {
	return e.Generate != "" || e.Secret != nil && *e.Secret
}

// VolumeSpec is a path in the container backed by a named volume, or, for
// admin-only types, by a host path.
type VolumeSpec struct {
	Name     string `json:"name" yaml:"name"`
	Path     string `json:"path" yaml:"path"`
	HostPath string `json:"host_path,omitempty" yaml:"host_path"`
	ReadOnly bool   `json:"read_only,omitempty" yaml:"read_only"`
}

// HealthSpec is a Docker health check.
type HealthSpec struct {
	Test        []string      `json:"test" yaml:"test"` // e.g. ["CMD", "/app", "-check"]
	Interval    time.Duration `json:"interval,omitempty" yaml:"interval"`
	Timeout     time.Duration `json:"timeout,omitempty" yaml:"timeout"`
	Retries     int           `json:"retries,omitempty" yaml:"retries"`
	StartPeriod time.Duration `json:"start_period,omitempty" yaml:"start_period"`
}

// ResourceSpec limits a container. Zero means no limit.
type ResourceSpec struct {
	MemoryMB int64   `json:"memory_mb,omitempty" yaml:"memory_mb"`
	CPUs     float64 `json:"cpus,omitempty" yaml:"cpus"`
}

// RestartPolicy says what moor does when a container stops or disappears
// without moor asking for it.
type RestartPolicy string

const (
	RestartAlways    RestartPolicy = "always"     // start or recreate it
	RestartOnFailure RestartPolicy = "on-failure" // restart after a non-zero exit only
	RestartNever     RestartPolicy = "no"         // record it and leave it
)

// Valid reports whether p is a known policy.
func (p RestartPolicy) Valid() bool {
	switch p {
	case RestartAlways, RestartOnFailure, RestartNever:
		return true
	}
	return false
}
