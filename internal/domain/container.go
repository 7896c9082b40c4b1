package domain

import "time"

// Status is what moor last observed of a container.
type Status string

const (
	StatusPending  Status = "pending"
	StatusCreating Status = "creating"
	StatusRunning  Status = "running"
	StatusStopped  Status = "stopped"
	StatusFailed   Status = "failed"
	StatusRemoving Status = "removing"
	// StatusStopping is a replica's only: out of the routes and the
	// container zone, waiting for Traefik to follow before it is stopped.
	StatusStopping Status = "stopping"
)

// DesiredState is what the user asked for; the reconciler makes Docker match it.
type DesiredState string

const (
	DesiredRunning DesiredState = "running"
	DesiredStopped DesiredState = "stopped"
	DesiredRemoved DesiredState = "removed"
)

// MaxReplicas bounds scale requests.
const MaxReplicas = 20

// Container is a managed deployment: one name, one type, one or more replicas.
type Container struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Project is the project the container belongs to; its name is unique
	// there.
	Project string `json:"project"`
	// ProjectInternal: the project's network has no route out of the host.
	ProjectInternal bool         `json:"-"`
	Type            string       `json:"type"`
	Image           string       `json:"image"`
	Status          Status       `json:"status"`
	StatusReason    string       `json:"status_reason,omitempty"`
	StatusCause     Cause        `json:"status_cause,omitempty"`
	DesiredState    DesiredState `json:"desired_state"`
	Replicas        int          `json:"replicas"`
	// Env holds the values of the variables that are not secret; only
	// operators and admins see it (the API leaves it out for viewers).
	Env map[string]string `json:"env,omitempty"`
	// EnvNames lists the variables set in Env, for everyone.
	EnvNames []string `json:"env_names"`
	// Spec is the type as it was when the container was created, with the
	// user's values resolved: later catalog changes do not move it.
	Spec        Type  `json:"-"`
	KeepVolumes bool  `json:"-"`
	Generation  int64 `json:"generation"`
	// ConfigVersion rises with each change of image, environment or
	// published ports; each replica carries the one it was created with
	// (LabelConfig).
	ConfigVersion int `json:"config_version"`
	// ObservedGeneration is the generation the reconciler last made real:
	// a change is done when it reaches the change's generation.
	ObservedGeneration int64 `json:"observed_generation"`
	// RestartAt asks for every replica started before it to be restarted.
	RestartAt time.Time `json:"-"`
	// RedeployAt is a redeploy asked for and not finished yet: its replicas
	// are replaced (config_version rose with it); PullAt, its image is to be
	// pulled again first.
	RedeployAt time.Time  `json:"-"`
	PullAt     time.Time  `json:"-"`
	Instances  []Instance `json:"instances"`
	Ports      []Port     `json:"ports"`
	// Published are the ports published on the host.
	Published  []PublishedPort `json:"published"`
	DNS        DNSNames        `json:"dns"`
	InternalIP string          `json:"internal_ip"`
	URL        string          `json:"url,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	CreatedBy  string          `json:"created_by"`
	// Stack and StackService: the stack and service the container was
	// deployed for ("" for a container deployed alone); DefinitionHash is
	// the service definition's hash, DependsOn what it waits for at start.
	Stack          string       `json:"stack,omitempty"`
	StackService   string       `json:"stack_service,omitempty"`
	DefinitionHash string       `json:"definition_hash,omitempty"`
	DependsOn      []Dependency `json:"depends_on,omitempty"`
}

// Instance is one replica: its own runtime instance (a Docker container)
// and IP.
type Instance struct {
	Index int `json:"index"`
	// RuntimeID is the runtime's id of the replica (a Docker container id:
	// the JSON name predates other runtimes and stays for API clients).
	RuntimeID string `json:"docker_id,omitempty"`
	// Node is where the replica runs: the engine's or Swarm node's name.
	Node       string    `json:"node,omitempty"`
	InternalIP string    `json:"internal_ip,omitempty"`
	Status     Status    `json:"status"`
	Health     string    `json:"health,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Port is a published container port.
type Port struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
	HTTP     bool   `json:"http,omitempty"`
}

// DNSNames are the names a container answers to.
type DNSNames struct {
	Host      string `json:"host"`
	Container string `json:"container"`
}

// Ref is the container's reference.
func (c Container) Ref() ContainerRef { return ContainerRef{c.Project, c.Name} }
