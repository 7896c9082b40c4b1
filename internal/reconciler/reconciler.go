// Package reconciler makes the container runtime match the desired state
// recorded by moor. It is level-triggered: every pass compares what should
// be with what is, so a missed event, a crash half-way or a change behind
// moor's back is repaired by the next pass.
//
// The files follow the work: loop.go schedules containers (events, timed
// passes, one worker per container), converge.go brings one container to
// its desired state (running, stopped or removed), drain.go keeps replicas
// out of the routes before they stop, observe.go reads the replicas back and
// records them, spec.go turns a container into instance specs, watch.go
// follows the runtime's events and health.
package reconciler

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// Store is the state the reconciler reads and records.
type Store interface {
	Containers
	Recorder
	EventLog
}

// Containers reads the desired state.
type Containers interface {
	ListContainers(ctx context.Context) ([]domain.Container, error)
	ListProjects(ctx context.Context) ([]domain.Project, error)
	GetContainerByID(ctx context.Context, id string) (domain.Container, error)
	// GetContainer finds a stack container's dependency by name.
	GetContainer(ctx context.Context, cr domain.ContainerRef) (domain.Container, error)
	SealedSecrets(ctx context.Context, id string) ([]byte, error)
}

// Recorder records what the reconciler saw and did.
type Recorder interface {
	RecordObservation(ctx context.Context, o domain.Observation) error
	FinishRemoval(ctx context.Context, id, name string, data any) error
	AppendEvent(ctx context.Context, kind, containerID, name string, data any) (int64, error)
	// RecordProjectSubnets records the subnets of a project's network (the
	// DNS server's views), writing nothing when they are unchanged.
	RecordProjectSubnets(ctx context.Context, project string, subnets []netip.Prefix) error
}

// EventLog is the stream of committed changes.
type EventLog interface {
	LastEventSeq(ctx context.Context) (int64, error)
	EventsSince(ctx context.Context, after int64, limit int) ([]domain.Event, error)
}

// Engine is a container runtime, in domain terms: the Docker engine
// (internal/engine) today. A Swarm or another host is another
// implementation of the same methods, not a change here.
type Engine interface {
	Runtime
	Instances
	Resources
}

// Runtime is the engine's health and change feed.
type Runtime interface {
	Ping(ctx context.Context) error
	// Events streams changes of the instances carrying labels until ctx
	// ends or the stream breaks (then the error channel yields why).
	Events(ctx context.Context, labels map[string]string) (<-chan domain.RuntimeEvent, <-chan error)
}

// Instances creates, drives and reads instances (replicas).
type Instances interface {
	// Create makes the instance (not started) and returns its runtime id;
	// it is idempotent for an instance of the same name and LabelID.
	Create(ctx context.Context, spec domain.InstanceSpec) (string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
	Inspect(ctx context.Context, id string) (domain.InstanceState, error)
	List(ctx context.Context, labels map[string]string) ([]domain.InstanceState, error)
}

// Resources prepares what instances need: network, image, volumes.
type Resources interface {
	EnsureNetwork(ctx context.Context, spec domain.NetworkSpec) error
	// ListNetworks names the networks carrying labels (an empty value
	// matches any); RemoveNetwork removes one, detaching what moor attached.
	ListNetworks(ctx context.Context, labels map[string]string) ([]string, error)
	RemoveNetwork(ctx context.Context, name string) error
	// NetworkGateway is the host's address on the network: where an
	// instance on the host's network stack is reached from it.
	NetworkGateway(ctx context.Context, name string) (string, error)
	// NetworkSubnets are the network's subnets, sorted (a missing network
	// wraps domain.ErrNotFound).
	NetworkSubnets(ctx context.Context, name string) ([]netip.Prefix, error)
	EnsureImage(ctx context.Context, image string, progress func(domain.PullProgress)) error
	// PullImage pulls image even when present (a redeploy with pull); an
	// image local to the engine is not pulled and wraps domain.ErrLocalImage.
	PullImage(ctx context.Context, image string, progress func(domain.PullProgress)) error
	EnsureVolume(ctx context.Context, name string, labels map[string]string) error
	RemoveVolume(ctx context.Context, name string) error
	ListVolumes(ctx context.Context, labels map[string]string) ([]string, error)
}

// Locker keeps two moor processes from acting on one container at once.
// TryLock's context ends when the lock is lost (its database session died),
// so work under a lost lock stops instead of racing another process.
type Locker interface {
	TryLock(ctx context.Context, id string) (context.Context, bool, error)
	Unlock(ctx context.Context, id string)
}

// Opener decrypts credentials sealed for a container id.
type Opener interface {
	Open(ciphertext, additional []byte) ([]byte, error)
}

// Config tunes the reconciler.
type Config struct {
	InstallationID string
	// Network is the default project's network (MOOR_NETWORK); the other
	// projects' are named after it (domain.ProjectNetwork).
	Network string
	// Attach are containers connected to every project's network: the
	// router (Traefik) that reaches every project (MOOR_ROUTER_CONTAINER).
	Attach        []string
	ContainerZone string
	DNSServers    []string // resolvers given to managed containers
	TTL           int
	Resync        time.Duration // full pass period
	StopTimeout   time.Duration
	// Drain is how long a replica about to be stopped or removed is kept
	// out of the routes first, for Traefik to follow (0: stop at once).
	Drain   time.Duration
	Workers int // containers worked on at once
	// ReadyTimeout bounds the wait for a restarted replica in a rolling
	// restart (default 2m); one that never gets ready does not hold the
	// others back.
	ReadyTimeout time.Duration
	// Hook, when set, is called at each step of a deploy and a removal. Crash
	// tests use it to kill moor at that exact point.
	Hook func(step string)
}

// Reconciler drives the runtime towards the desired state.
type Reconciler struct {
	store  Store
	engine Engine
	locker Locker
	opener Opener
	cfg    Config
	logger *slog.Logger

	wake   chan struct{} // a full pass is wanted
	notify chan int64    // an event was committed
	due    chan string   // a container whose drain ended
	sem    chan struct{}

	mu         sync.Mutex
	active     map[string]bool       // container id -> a worker runs
	dirty      map[string]bool       // container id -> run again when done
	drainSince map[string]time.Time  // runtime id -> when this process drained it
	failures   map[string]retryState // container id -> its failed passes in a row

	engineUp  atomic.Bool
	engineErr atomic.Value // string
	lastSeq   int64
	// present holds what this process made sure exists (network and image
	// names): asked once, not on every pass. A create that finds one
	// missing (removed behind moor's back) clears it.
	present sync.Map // "network:NAME" or "image:REF" -> struct{}; "gateway:NAME" -> its address
	// waiting holds the containers waiting for their dependencies that
	// have a later look scheduled (one timer each).
	waiting  sync.Map
	inflight sync.WaitGroup
	// own holds the runtime events this process's own calls will cause
	// (runtime id -> actions), so they do not schedule a needless pass:
	// the pass that made the call observes its result anyway.
	own map[string]ownActions
}

// New returns a Reconciler; Run starts it.
func New(st Store, eng Engine, locker Locker, opener Opener, cfg Config, logger *slog.Logger) *Reconciler {
	if cfg.Resync == 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.Workers == 0 {
		cfg.Workers = 64
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 2 * time.Minute
	}
	r := &Reconciler{
		store: st, engine: eng, locker: locker, opener: opener, cfg: cfg, logger: logger,
		wake:       make(chan struct{}, 1),
		notify:     make(chan int64, 1024),
		sem:        make(chan struct{}, cfg.Workers),
		due:        make(chan string, 1024),
		active:     map[string]bool{},
		dirty:      map[string]bool{},
		failures:   map[string]retryState{},
		drainSince: map[string]time.Time{},
		own:        map[string]ownActions{},
	}
	r.engineErr.Store("not checked yet")
	return r
}

// EngineReady reports whether the engine answered the last check, and why
// not.
func (r *Reconciler) EngineReady() (bool, string) {
	if r.engineUp.Load() {
		return true, ""
	}
	return false, r.engineErr.Load().(string)
}

// step calls the test hook at a named step.
func (r *Reconciler) step(name string) {
	if r.cfg.Hook != nil {
		r.cfg.Hook(name)
	}
}
