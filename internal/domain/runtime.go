package domain

import (
	"errors"
	"strconv"
	"time"
)

// Labels moor puts on every runtime object it creates (containers,
// volumes, networks). They tie the object to moor's records, so a restart,
// a second moor process or a resync finds it again.
const (
	LabelOwner   = "moor.owner"   // installation id
	LabelID      = "moor.id"      // container id; Create relies on it to be idempotent
	LabelName    = "moor.name"    // container name
	LabelType    = "moor.type"    // catalog type id
	LabelReplica = "moor.replica" // replica index
	LabelConfig  = "moor.config"  // the container's ConfigVersion the replica was created with
	LabelProject = "moor.project" // the container's project; on a project's network, the project
)

// AttachError is a network made present whose Attach containers could not
// all be connected (one not started yet, or gone): the network is usable,
// the router does not reach it yet.
type AttachError struct {
	Network string
	Err     error
}

func (e *AttachError) Error() string { return "attach to network " + e.Network + ": " + e.Err.Error() }
func (e *AttachError) Unwrap() error { return e.Err }

// NetworkSpec is a network as a runtime creates it.
type NetworkSpec struct {
	Name   string
	Labels map[string]string
	// Internal networks have no route out of the host.
	Internal bool
	// Attach are containers (by name or id) connected to the network
	// whenever it is ensured: the router that must reach every project.
	Attach []string
}

// InstanceSpec is one replica as a runtime creates it.
type InstanceSpec struct {
	Name        string            // the runtime's name for it, e.g. moor-blog-0
	Image       string            // must be present (the runtime's EnsureImage)
	Env         map[string]string // sorted into KEY=VALUE deterministically
	Cmd         []string          // nil: the image's
	Labels      map[string]string // should include LabelID
	Network     string            // attach to this network at create time ("": the runtime's default)
	Aliases     []string          // network aliases on that network
	Mounts      []Mount
	MemoryBytes int64 // 0: no limit
	NanoCPUs    int64 // 0: no limit; 1e9 is one CPU
	Health      *HealthSpec
	// Restart is the runtime's own restart policy for the instance.
	Restart    RestartPolicy
	DNS        []string // resolver IPs for the instance (nil: the runtime's default)
	Privileged bool
	Ports      []PortSpec // exposed
	// Published are bound on the host (none with HostNetwork).
	Published []PublishedPort
	Hostname  string // "": the runtime's default
	// HostNetwork shares the host's network stack: Network and Aliases
	// are then ignored, and the instance has no address of its own.
	HostNetwork bool
	Devices     []DeviceSpec
	TTY         bool // stdin kept open on a terminal (docker run -it)
	CapAdd      []string
	CapDrop     []string
}

// Mount is a named volume (Bind false) or a host path (Bind true) mounted
// at Target. A bind mount whose host path is missing gets it created, as
// `docker run -v` does.
type Mount struct {
	Source   string
	Target   string
	ReadOnly bool
	Bind     bool
}

// InstanceState is what a runtime says of one instance.
//
// A list fills RuntimeID, Name, Node, Labels, Image, Status, Running, IP,
// IPs, and, best effort, Health and, for an exited instance, ExitCode. An
// inspect fills every field, adding Error, OOMKilled, StartedAt and
// FinishedAt, and is the authority for ExitCode and Health.
type InstanceState struct {
	RuntimeID string // the runtime's id of the instance (a Docker container id)
	Name      string // the runtime's name of it
	// Node is where the instance runs: the engine's (or Swarm node's) name.
	Node   string
	Labels map[string]string
	Image  string // the image as the instance was created from (a name, or an ID if the name moved)
	// Status is the runtime's: created, running, paused, restarting,
	// removing, exited, dead.
	Status    string
	Running   bool
	ExitCode  int
	Error     string
	OOMKilled bool
	Health    string // "" (no health check), starting, healthy, unhealthy
	// IP is the IPv4 address on the network the instance was created on
	// (InstanceSpec.Network) when it has one there, else on the first
	// network by name that gives it one; "" when it is not running.
	IP                    string
	IPs                   map[string]string // network name -> IPv4
	StartedAt, FinishedAt time.Time         // zero when never started / not finished
	// Restarting is true while the runtime's restart policy brings a
	// crashed instance back (Running is true then too); inspect only.
	Restarting   bool
	RestartCount int // restarts by the runtime's restart policy; inspect only
}

// Replica is the replica index of the instance's LabelReplica, if valid.
func (s InstanceState) Replica() (int, bool) {
	i, err := strconv.Atoi(s.Labels[LabelReplica])
	return i, err == nil && i >= 0
}

// RuntimeEvent is a change of an instance reported by its runtime.
type RuntimeEvent struct {
	RuntimeID string
	// Action is as the runtime sends it: create, start, die, stop, kill,
	// destroy, oom, restart, pause, unpause, rename, "health_status:
	// healthy", "health_status: unhealthy", exec_create: ...
	Action string
	// Labels are the instance's labels.
	Labels   map[string]string
	Name     string // the instance's name
	Image    string
	Time     time.Time
	ExitCode int // for die
}

// PullProgress is one message of an image pull: ID is the layer (or the tag
// for the overall messages), Status the runtime's text ("Pulling fs
// layer", "Downloading", "Pull complete", "Digest: ...", "Status:
// Downloaded newer image for ..."), Current and Total the byte counts when
// known.
type PullProgress struct {
	ID, Status     string
	Current, Total int64
}

// LogOptions say which of a replica's log lines to read.
type LogOptions struct {
	Tail   int  // the last Tail lines (0: all)
	Follow bool // then keep streaming new lines until the replica stops or ctx ends
}

// Why an image could not be pulled.
const (
	PullMissing     = "missing"     // the registry has no such name or tag
	PullUnreachable = "unreachable" // the registry could not be reached
	PullDenied      = "denied"      // the registry wants credentials
)

// PullError is an image the engine has not and could not pull, in words
// that say what to do. It unwraps to the engine's error (and to
// ErrNotFound for a missing image).
type PullError struct {
	Image string
	Why   string // PullMissing, PullUnreachable, PullDenied or ""
	Err   error
}

func (e *PullError) Error() string {
	var what string
	switch e.Why {
	case PullMissing:
		what = "image " + e.Image + " does not exist in its registry: check the type's image name and tag"
	case PullUnreachable:
		what = "image " + e.Image + " is not on this Docker engine and its registry cannot be reached: " +
			"build or load it on the engine (docker build -t " + e.Image + " ..., docker load), or restore the engine's network"
	case PullDenied:
		what = "the registry refused image " + e.Image + ": a private image needs the engine logged in (docker login)"
	default:
		what = "image " + e.Image + " could not be pulled"
	}
	return what + " (" + e.Err.Error() + ")"
}

func (e *PullError) Unwrap() error { return e.Err }

// NameTakenError is a runtime name held by an instance that is not the one
// being created: another moor installation's (Owner is its LabelOwner),
// one of this installation's that is not this container's, or one made by
// hand (Owner ""). It unwraps to ErrConflict.
type NameTakenError struct {
	Name      string // the runtime's name, e.g. moor-blog-0
	RuntimeID string // the holder's runtime id
	Owner     string // the holder's LabelOwner ("": not made by moor)
	ID        string // the holder's LabelID
}

func (e *NameTakenError) Error() string {
	holder := "a container not made by moor"
	if e.Owner != "" {
		holder = "moor installation " + e.Owner
	}
	return "the name " + e.Name + " is taken by container " + shortID(e.RuntimeID) + " of " + holder
}

func (e *NameTakenError) Unwrap() error { return ErrConflict }

// VolumeTakenError is a volume that exists under the name moor would give a
// replica's volume, made by another moor installation: using it would hand
// that installation's data to this container.
type VolumeTakenError struct {
	Name  string // e.g. moor-blog_data_0
	Owner string // the holder's LabelOwner
}

func (e *VolumeTakenError) Error() string {
	return "the Docker volume " + e.Name + " belongs to moor installation " + e.Owner
}

func (e *VolumeTakenError) Unwrap() error { return ErrConflict }

// shortID is a runtime id as docker ps shows it.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ErrLocalImage: an image asked to be pulled again exists on the engine
// only (built or loaded there, never pulled or pushed: no registry digest),
// so there is nothing to pull it from; the local image is used.
var ErrLocalImage = errors.New("image is local to the engine")
