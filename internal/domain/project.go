package domain

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultProject holds the containers of an installation from before
// projects, and every container created without naming a project. Its
// containers keep the engine names, network and DNS names they had.
const DefaultProject = "default"

// MaxProjectNameLength bounds project names: they go into Docker names,
// network names and host-zone labels ("NAME-PROJECT"), each limited to a
// DNS label's 63 characters with the container's name beside it.
const MaxProjectNameLength = 30

// Project groups containers: its own Docker network, DNS names, members and
// quotas.
type Project struct {
	Name string `json:"name"`
	// Internal projects' network has no route out of the host (Docker's
	// internal networks).
	Internal bool `json:"internal"`
	// Quotas: nil is no limit.
	MaxContainers *int     `json:"max_containers,omitempty"`
	MaxMemoryMB   *int64   `json:"max_memory_mb,omitempty"`
	MaxCPUs       *float64 `json:"max_cpus,omitempty"`
	// Containers counts the project's containers; MemoryMB and CPUs are
	// what they take as the quotas count it (their types' limits times
	// their replicas, those being removed left out).
	Containers int       `json:"containers"`
	MemoryMB   int64     `json:"memory_mb"`
	CPUs       float64   `json:"cpus"`
	Network    string    `json:"network,omitempty"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`

	// Subnets are the network's, as the engine gave them (recorded by the
	// reconciler): the DNS server picks a client's view by them.
	Subnets []string `json:"subnets,omitempty"`
}

// NewProject is the body of POST /api/v1/projects.
type NewProject struct {
	Name          string   `json:"name"`
	Internal      bool     `json:"internal,omitempty"`
	MaxContainers *int     `json:"max_containers,omitempty"`
	MaxMemoryMB   *int64   `json:"max_memory_mb,omitempty"`
	MaxCPUs       *float64 `json:"max_cpus,omitempty"`
}

// Validate checks a new project's fields.
func (p NewProject) Validate() error {
	if err := ValidateProjectName("name", p.Name); err != nil {
		return err
	}
	if p.MaxContainers != nil && *p.MaxContainers < 0 {
		return Invalid("max_containers", "must be 0 or more")
	}
	if p.MaxMemoryMB != nil && *p.MaxMemoryMB < 0 {
		return Invalid("max_memory_mb", "must be 0 or more")
	}
	if p.MaxCPUs != nil && *p.MaxCPUs < 0 {
		return Invalid("max_cpus", "must be 0 or more")
	}
	return nil
}

// ValidateProjectName checks a project name (field names the request field).
func ValidateProjectName(field, name string) error {
	if name == "" {
		return Invalid(field, "is required")
	}
	if len(name) > MaxProjectNameLength {
		return Invalid(field, "must be at most %d characters", MaxProjectNameLength)
	}
	if !nameRE.MatchString(name) {
		return Invalid(field, "must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit")
	}
	return nil
}

// ContainerRef names a container: its name is unique within its project.
type ContainerRef struct {
	Project string
	Name    string
}

// Ref returns the reference of a container in the default project.
func Ref(name string) ContainerRef { return ContainerRef{DefaultProject, name} }

// String is "NAME" in the default project, "PROJECT/NAME" elsewhere: how
// the CLI and messages name a container.
func (r ContainerRef) String() string {
	if r.Project == DefaultProject || r.Project == "" {
		return r.Name
	}
	return r.Project + "/" + r.Name
}

// ProjectNetwork is the Docker network of a project: base (MOOR_NETWORK)
// for the default project, so an upgrade recreates nothing, and
// "BASE-p-PROJECT" for the others, tied to the installation's network name
// like everything else it creates.
func ProjectNetwork(base, project string) string {
	if project == DefaultProject || project == "" {
		return base
	}
	return base + "-p-" + project
}

// engineName is how a container's name appears in engine object names:
// unchanged in the default project, "NAME.PROJECT" elsewhere. Names and
// projects are DNS labels, which hold no '.', so no two containers of any
// projects share one.
func engineName(project, name string) string {
	if project == DefaultProject || project == "" {
		return name
	}
	return name + "." + project
}

// DockerName is the Docker container name of replica i.
func DockerName(project, name string, replica int) string {
	return "moor-" + engineName(project, name) + "-" + strconv.Itoa(replica)
}

// VolumeName is the Docker volume of one replica's volume. Each replica has
// its own, so two database servers never share a data directory; '_' cannot
// occur in a name or a volume name, so no two containers' volumes collide.
func VolumeName(project, name, volume string, replica int) string {
	return "moor-" + engineName(project, name) + "_" + volume + "_" + strconv.Itoa(replica)
}

// HostLabel is a container's label in the host zone: one public namespace
// for every project, "NAME" in the default project and "NAME-PROJECT"
// elsewhere (one label, so a wildcard certificate of the host zone covers
// every project). Two containers that would share one are refused when the
// second is created.
func HostLabel(project, name string) string {
	if project == DefaultProject || project == "" {
		return name
	}
	return name + "-" + project
}

// ContainerLabel is a container's name in the container zone, relative to
// the zone: "NAME.PROJECT" for every project.
func ContainerLabel(project, name string) string {
	if project == "" {
		project = DefaultProject
	}
	return name + "." + project
}

// HostNames are the host names a container holds in the one public
// namespace: its own in the host zone and its aliases (fully qualified,
// lower case, without the final dot).
func HostNames(hostZone, project, name string, aliases []string) []string {
	out := []string{HostLabel(project, name) + "." + strings.TrimSuffix(hostZone, ".")}
	for _, a := range aliases {
		a = strings.ToLower(strings.TrimSuffix(a, "."))
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// ProjectPatch is the body of PATCH /api/v1/projects/{project}: the quotas
// it names change (null removes one), the others stay.
type ProjectPatch struct {
	MaxContainers Quota[int]     `json:"max_containers"`
	MaxMemoryMB   Quota[int64]   `json:"max_memory_mb"`
	MaxCPUs       Quota[float64] `json:"max_cpus"`
}

// Validate checks the new quotas.
func (p ProjectPatch) Validate() error {
	return NewProject{Name: "x", MaxContainers: p.MaxContainers.Value, MaxMemoryMB: p.MaxMemoryMB.Value, MaxCPUs: p.MaxCPUs.Value}.Validate()
}

// Quota is one quota of a PATCH: Set when the body names it, Value nil
// for null (no limit).
type Quota[T int | int64 | float64] struct {
	Set   bool
	Value *T
}

func (q *Quota[T]) UnmarshalJSON(b []byte) error {
	q.Set = true
	if string(b) == "null" {
		q.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	q.Value = &v
	return nil
}

// Member is a user's or API key's role in a project.
type Member struct {
	Kind      string    `json:"kind"` // "user" or "apikey"
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// MemberRequest is the body of POST /api/v1/projects/{project}/members.
type MemberRequest struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	Role string `json:"role"`
}
