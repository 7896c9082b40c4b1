package domain

import "time"

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
	// Routing is how Traefik reaches the type's ports (optional).
	Routing *Routing `json:"routing,omitempty" yaml:"routing"`
	// Source says where the type came from: "builtin", "dir" or "portainer".
	Source string `json:"source" yaml:"-"`
}

// RequiresAdmin reports whether deploying the type needs the admin role:
// host mounts and privileged mode reach outside the container.
func (t *Type) RequiresAdmin() bool {
	if t.Privileged {
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
