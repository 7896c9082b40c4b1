package domain

import "time"

// Dependency conditions (compose's depends_on): what a service waits for
// before it starts.
const (
	DependsStarted   = "service_started"
	DependsHealthy   = "service_healthy"
	DependsCompleted = "service_completed_successfully"
)

// Dependency is a service of the same stack to wait for before starting.
type Dependency struct {
	Service   string `json:"service"`
	Condition string `json:"condition"`
}

// StackContainer names the container of a stack's service: STACK-SERVICE.
func StackContainer(stack, service string) string { return stack + "-" + service }

// Stack is a compose file deployed into a project: one container per
// service.
type Stack struct {
	Project string `json:"project"`
	Name    string `json:"name"`
	// Compose is the file's text; only operators and admins see it (its
	// environment values may be credentials).
	Compose string `json:"compose,omitempty"`
	// Removing: a DELETE was asked for; the stack goes with its last
	// container.
	Removing  bool           `json:"removing"`
	Services  []StackService `json:"services"`
	CreatedBy string         `json:"created_by"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	// Containers are the services' containers (in the answers to POST,
	// PUT, DELETE and GET).
	Containers []Container `json:"containers"`
}

// StackService is one service of a stack and the state of its container.
type StackService struct {
	Name         string       `json:"name"`
	Container    string       `json:"container"`
	Status       Status       `json:"status"`
	DesiredState DesiredState `json:"desired_state"`
	Replicas     int          `json:"replicas"`
	// Hash is the service definition's hash: an update replaces the
	// container only when it changes.
	Hash      string       `json:"hash"`
	DependsOn []Dependency `json:"depends_on"`
}

// NewStack is a validated stack, ready to be recorded with its containers.
type NewStack struct {
	Project    string
	Name       string
	Compose    string
	Containers []NewContainer // with Stack, StackService and DefinitionHash set
}

// StackUpdate is a validated new definition of a stack: Containers are
// its services' containers, each with the ID of the service's current
// container when it has one (its secrets are sealed for that ID).
type StackUpdate struct {
	Compose    string
	Containers []NewContainer
	// RemoveVolumes: the containers of services no longer in the file lose
	// their volumes too.
	RemoveVolumes bool
}
