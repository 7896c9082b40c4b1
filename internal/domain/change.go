package domain

import "time"

// CreateRequest is the body of POST /api/v1/containers.
type CreateRequest struct {
	// Project is the project it is created in (from the path; "": the
	// default project).
	Project string `json:"-"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	// Env holds the user's values; an empty string counts as not given
	// (forms send empty fields), so the default or a generated value
	// applies.
	Env map[string]string `json:"env,omitempty"`
	// LeaveEmpty names variables to leave empty: no default and nothing
	// generated (the API reads them from "env" values that are JSON null).
	LeaveEmpty []string `json:"-"`
	Replicas   *int     `json:"replicas,omitempty"`
	// Aliases are extra host names Traefik routes to the container; Path
	// limits its router to a path prefix. Both end up in Traefik rules.
	Aliases []string `json:"aliases,omitempty"`
	Path    string   `json:"path,omitempty"`
	// HTTPPort picks which of the type's TCP ports Traefik routes to,
	// instead of the type's choice.
	HTTPPort int `json:"http_port,omitempty"`
	// Publish asks for some of the type's ports on the host.
	Publish []PublishRequest `json:"publish,omitempty"`
}

// NewContainer is a validated container, ready to be recorded with desired
// state running.
type NewContainer struct {
	ID       string
	Project  string
	Name     string
	Type     string
	Image    string
	Spec     Type
	Env      map[string]string
	Secrets  []byte // sealed
	Replicas int
	DNS      []DNSEntry
	// Published are the host ports it publishes (ResolvePublish).
	Published []PublishedPort
	// Hosts are the host names it claims (HostNames): no other container
	// may hold one.
	Hosts []string
	// Stack, StackService, DefinitionHash and DependsOn: a stack's
	// container (see Container).
	Stack          string
	StackService   string
	DefinitionHash string
	DependsOn      []Dependency
}

// Action is a user's request to move a container's desired state; it names
// the history entry and the event ("<action>_requested").
type Action string

const (
	ActionStart   Action = "start"
	ActionStop    Action = "stop"
	ActionRestart Action = "restart"
	ActionRemove  Action = "remove"
	ActionScale   Action = "scale"
	// ActionRedeploy replaces every replica (and with Pull, pulls the image
	// again first).
	ActionRedeploy Action = "redeploy"
)

// Change is one Action with its arguments.
type Change struct {
	Action      Action
	Replicas    int  // ActionScale
	KeepVolumes bool // ActionRemove
	Pull        bool // ActionRedeploy
}

// RedeployRequest is the body of POST /api/v1/containers/{name}/redeploy.
type RedeployRequest struct {
	// Pull pulls the image again before the replicas are replaced, even
	// when the engine has it: a tag such as :latest may have moved.
	Pull bool `json:"pull,omitempty"`
}

// Cause says, in a form code can test, why a container has its status;
// the status reason says it in words.
type Cause string

const (
	CauseNone Cause = ""
	// CauseFailed: a step of the reconciler failed (the reason has the error).
	CauseFailed Cause = "failed"
	// CauseStoppedOutside: a replica stopped, exited or was removed behind
	// moor's back and the restart policy said to leave it.
	CauseStoppedOutside Cause = "stopped_outside"
)

// Observation is what the reconciler saw and did for one container.
type Observation struct {
	ID                 string
	Name               string
	Status             Status
	Cause              Cause
	Reason             string
	Instances          []Instance
	ObservedGeneration int64
	// ContainerDNS replaces the container-zone DNS rows (nil: unchanged).
	ContainerDNS []DNSEntry
	// StopAt, when non-zero, sets desired state to stopped, but only if the
	// generation is still this one: the type's restart policy said not to
	// restart a container that stopped outside moor.
	StopAt int64
	// RestartDone clears a pending restart requested at this time (a newer
	// request stays pending).
	RestartDone time.Time
	// RedeployDone finishes a redeploy requested at this time: recorded as
	// "container.redeployed" (a newer request stays pending). PullDone
	// clears its pull, done.
	RedeployDone time.Time
	PullDone     time.Time
	// Event, when set, is written to history and as event "container.<Event>".
	Event string
	Data  any
	// ReplicasChanged, with no Event, writes event "container.replicas"
	// (no history): a replica's health, address or runtime changed while
	// the container's status stayed, and watchers should know.
	ReplicasChanged bool
}

// ReplicaSummary is the data of a container.replicas event.
func ReplicaSummary(ins []Instance) map[string]any {
	out := make([]map[string]any, len(ins))
	for i, in := range ins {
		out[i] = map[string]any{"index": in.Index, "status": in.Status, "health": in.Health}
	}
	return map[string]any{"replicas": out}
}

// Patch is the body of PATCH /api/v1/containers/{name}: what to change,
// nil or empty for what stays.
type Patch struct {
	// Env sets variables (merged into the current values); LeaveEmpty
	// empties them (the API reads those from JSON null).
	Env        map[string]string `json:"env,omitempty"`
	LeaveEmpty []string          `json:"-"`
	// Image is the same repository with another tag or digest.
	Image    string `json:"image,omitempty"`
	Replicas *int   `json:"replicas,omitempty"`
	// Publish replaces the host ports published ([]: none); nil keeps
	// them.
	Publish *[]PublishRequest `json:"publish,omitempty"`
}

// Update is a validated Patch, ready to be stored.
type Update struct {
	Generation  int64 // the container's generation it was made from
	Image       string
	Env         map[string]string
	Secrets     []byte // sealed
	Replicas    int
	Published   []PublishedPort // the host ports, changed or not
	Reconfigure bool            // image, environment or host ports changed: replace the replicas
	Details     map[string]any  // for the history: what changed (variable names, not values)
}
