// Package reconciler makes Docker match the desired state in PostgreSQL. It
// is level-triggered: every pass compares what should be with what is, so a
// missed event, a crash half-way or a change behind moor's back is repaired
// by the next pass.
package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/engine"
	"github.com/moorhq/moor/internal/store"
)

// Labels moor puts on every Docker object it creates.
const (
	LabelOwner   = "moor.owner" // installation id
	LabelID      = "moor.id"    // container id
	LabelName    = "moor.name"
	LabelType    = "moor.type"
	LabelReplica = "moor.replica"
)

// Store is the state the reconciler reads and records.
type Store interface {
	ListContainers(ctx context.Context) ([]domain.Container, error)
	GetContainerByID(ctx context.Context, id string) (domain.Container, error)
	SealedSecrets(ctx context.Context, id string) ([]byte, error)
	RecordObservation(ctx context.Context, o store.Observation) error
	FinishRemoval(ctx context.Context, id, name string, data any) error
	AppendEvent(ctx context.Context, kind, containerID, name string, data any) (int64, error)
	EventsSince(ctx context.Context, after int64, limit int) ([]domain.Event, error)
}

// Engine is the Docker engine.
type Engine interface {
	Ping(ctx context.Context) error
	EnsureNetwork(ctx context.Context, name string, labels map[string]string) error
	EnsureImage(ctx context.Context, image string, progress func(engine.Progress)) error
	EnsureVolume(ctx context.Context, name string, labels map[string]string) error
	RemoveVolume(ctx context.Context, name string) error
	ListVolumes(ctx context.Context, labels map[string]string) ([]string, error)
	Create(ctx context.Context, spec engine.ContainerSpec) (string, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
	Inspect(ctx context.Context, id string) (engine.State, error)
	List(ctx context.Context, labels map[string]string) ([]engine.State, error)
	Events(ctx context.Context, labels map[string]string) (<-chan engine.Event, <-chan error)
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
	Network        string
	ContainerZone  string
	DNSServers     []string // resolvers given to managed containers
	TTL            int
	Resync         time.Duration // full pass period
	StopTimeout    time.Duration
	// Drain is how long a replica about to be stopped or removed is kept
	// out of the routes first, for Traefik to follow (0: stop at once).
	Drain   time.Duration
	Workers int // containers worked on at once
	// Hook, when set, is called at each step of a deploy and a removal. Crash
	// tests use it to kill moor at that exact point.
	Hook func(step string)
}

// Reconciler drives Docker towards the desired state.
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
	active     map[string]bool      // container id -> a worker runs
	dirty      map[string]bool      // container id -> run again when done
	drainSince map[string]time.Time // Docker id -> when this process drained it

	dockerUp    atomic.Bool
	dockerErr   atomic.Value // string
	lastSeq     int64
	networkOnce sync.Map // network name -> struct{}: ensured in this process
	inflight    sync.WaitGroup
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
		cfg.Workers = 16
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5
	}
	r := &Reconciler{
		store: st, engine: eng, locker: locker, opener: opener, cfg: cfg, logger: logger,
		wake:       make(chan struct{}, 1),
		notify:     make(chan int64, 1024),
		sem:        make(chan struct{}, cfg.Workers),
		due:        make(chan string, 1024),
		active:     map[string]bool{},
		dirty:      map[string]bool{},
		drainSince: map[string]time.Time{},
	}
	r.dockerErr.Store("not checked yet")
	return r
}

// Notify tells the reconciler an event was committed (seq 0: events may have
// been missed, do a full pass).
func (r *Reconciler) Notify(seq int64) {
	if seq == 0 {
		r.Wake()
		return
	}
	select {
	case r.notify <- seq:
	default:
		r.Wake() // overflow: a full pass covers everything
	}
}

// Wake asks for a full pass.
func (r *Reconciler) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// DockerReady reports whether the Docker engine answered the last check, and
// why not.
func (r *Reconciler) DockerReady() (bool, string) {
	if r.dockerUp.Load() {
		return true, ""
	}
	return false, r.dockerErr.Load().(string)
}

// Run reconciles until ctx ends, then waits for work in flight.
func (r *Reconciler) Run(ctx context.Context) error {
	seq, err := r.latestSeq(ctx)
	if err != nil {
		return err
	}
	r.lastSeq = seq
	go r.watchDocker(ctx)
	tick := time.NewTicker(r.cfg.Resync)
	defer tick.Stop()
	r.Wake()
	for {
		select {
		case <-ctx.Done():
			r.inflight.Wait()
			return nil
		case <-tick.C:
			r.fullPass(ctx, true)
		case <-r.wake:
			r.fullPass(ctx, false)
		case <-r.notify:
			r.drainNotify()
			r.followEvents(ctx)
		case id := <-r.due:
			r.schedule(ctx, id)
		}
	}
}

func (r *Reconciler) drainNotify() {
	for {
		select {
		case <-r.notify:
		default:
			return
		}
	}
}

func (r *Reconciler) latestSeq(ctx context.Context) (int64, error) {
	var last int64
	for {
		evs, err := r.store.EventsSince(ctx, last, 1000)
		if err != nil {
			return 0, err
		}
		if len(evs) == 0 {
			return last, nil
		}
		last = evs[len(evs)-1].Seq
	}
}

// followEvents schedules the containers named by new user-requested changes.
func (r *Reconciler) followEvents(ctx context.Context) {
	for {
		evs, err := r.store.EventsSince(ctx, r.lastSeq, 500)
		if err != nil {
			r.logger.Warn("read events", "err", err)
			return
		}
		for _, e := range evs {
			r.lastSeq = e.Seq
			if e.ContainerID != "" && (e.Kind == "container.created" || strings.HasSuffix(e.Kind, "_requested")) {
				r.schedule(ctx, e.ContainerID)
			}
		}
		if len(evs) < 500 {
			return
		}
	}
}

// watchDocker follows Docker events for moor's containers and checks the
// engine's health, reconnecting with backoff.
func (r *Reconciler) watchDocker(ctx context.Context) {
	backoff := 200 * time.Millisecond
	for ctx.Err() == nil {
		if err := r.engine.Ping(ctx); err != nil {
			r.setDocker(false, err)
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		r.setDocker(true, nil)
		backoff = 200 * time.Millisecond
		evCtx, cancel := context.WithCancel(ctx)
		events, errs := r.engine.Events(evCtx, map[string]string{LabelOwner: r.cfg.InstallationID})
		// Catch up on what happened while the engine was away or the stream
		// was down.
		r.Wake()
		r.consumeDockerEvents(ctx, events, errs)
		cancel()
	}
}

func (r *Reconciler) consumeDockerEvents(ctx context.Context, events <-chan engine.Event, errs <-chan error) {
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-errs:
			if ctx.Err() == nil {
				r.logger.Warn("docker events stream ended", "err", err)
				if perr := r.engine.Ping(ctx); perr != nil {
					r.setDocker(false, perr)
				}
			}
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if id := ev.Labels[LabelID]; id != "" && stateChanging(ev.Action) {
				r.schedule(ctx, id)
			}
		}
	}
}

// stateChanging reports whether a Docker event can change what moor records.
// Health checks alone send exec_create/exec_start every interval.
func stateChanging(action string) bool {
	switch action {
	case "create", "start", "restart", "die", "stop", "kill", "destroy", "oom", "rename", "pause", "unpause":
		return true
	}
	return strings.HasPrefix(action, "health_status")
}

func (r *Reconciler) setDocker(up bool, err error) {
	if up {
		r.dockerUp.Store(true)
		r.dockerErr.Store("")
		return
	}
	if r.dockerUp.Swap(false) {
		r.logger.Warn("docker engine unreachable", "err", err)
	}
	r.dockerErr.Store(err.Error())
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// fullPass compares every container with Docker and schedules those that
// differ. Docker is listed before the database so that a container created
// meanwhile is never taken for an orphan.
func (r *Reconciler) fullPass(ctx context.Context, timer bool) {
	if err := r.engine.Ping(ctx); err != nil {
		r.setDocker(false, err)
		return
	}
	r.setDocker(true, nil)
	states, err := r.engine.List(ctx, map[string]string{LabelOwner: r.cfg.InstallationID})
	if err != nil {
		r.logger.Warn("list docker containers", "err", err)
		return
	}
	cs, err := r.store.ListContainers(ctx)
	if err != nil {
		r.logger.Warn("list containers", "err", err)
		return
	}
	byID := map[string][]engine.State{}
	for _, st := range states {
		byID[st.Labels[LabelID]] = append(byID[st.Labels[LabelID]], st)
	}
	known := map[string]bool{}
	for _, c := range cs {
		known[c.ID] = true
		if NeedsWork(c, byID[c.ID], timer) {
			r.schedule(ctx, c.ID)
		}
	}
	for id, sts := range byID {
		if known[id] {
			continue
		}
		for _, st := range sts {
			r.logger.Info("removing orphan container", "docker_id", st.ID, "name", st.Name)
			if err := r.engine.Remove(ctx, st.ID); err != nil {
				r.logger.Warn("remove orphan", "docker_id", st.ID, "err", err)
			}
		}
	}
}

// schedule runs a worker for container id, or marks it to run again if one
// is already running.
func (r *Reconciler) schedule(ctx context.Context, id string) {
	r.mu.Lock()
	if r.active[id] {
		r.dirty[id] = true
		r.mu.Unlock()
		return
	}
	r.active[id] = true
	r.mu.Unlock()
	r.inflight.Add(1)
	go func() {
		defer r.inflight.Done()
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-r.sem }()
		for {
			r.reconcileID(ctx, id)
			r.mu.Lock()
			if !r.dirty[id] || ctx.Err() != nil {
				delete(r.active, id)
				delete(r.dirty, id)
				r.mu.Unlock()
				return
			}
			delete(r.dirty, id)
			r.mu.Unlock()
		}
	}()
}

func (r *Reconciler) reconcileID(ctx context.Context, id string) {
	lockCtx, ok, err := r.locker.TryLock(ctx, id)
	if err != nil || !ok {
		// Another moor process is on it (or the database is away); its
		// result, or the next resync, will bring us back.
		return
	}
	defer r.locker.Unlock(context.WithoutCancel(ctx), id)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(lockCtx, cancel)()
	c, err := r.store.GetContainerByID(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return
	}
	if err != nil {
		r.logger.Warn("load container", "id", id, "err", err)
		return
	}
	states, err := r.engine.List(ctx, map[string]string{LabelOwner: r.cfg.InstallationID, LabelID: id})
	if err != nil {
		r.engineFailed(ctx, err)
		return
	}
	switch c.DesiredState {
	case domain.DesiredRemoved:
		err = r.remove(ctx, c, states)
	case domain.DesiredStopped:
		err = r.stop(ctx, c, states)
	default:
		err = r.run(ctx, c, states)
	}
	if err == nil || ctx.Err() != nil {
		return
	}
	if errors.Is(err, errVanished) {
		r.mu.Lock()
		r.dirty[id] = true // look again at once
		r.mu.Unlock()
		return
	}
	if perr := r.engine.Ping(ctx); perr != nil {
		// The engine is away: not the container's fault. Catch up later.
		r.setDocker(false, perr)
		return
	}
	r.logger.Warn("reconcile failed", "container", c.Name, "err", err)
	reason := err.Error()
	if c.Status == domain.StatusFailed && c.StatusReason == reason {
		return
	}
	status := domain.StatusFailed
	if c.DesiredState == domain.DesiredRemoved {
		status = domain.StatusRemoving
	}
	if rerr := r.store.RecordObservation(ctx, store.Observation{
		ID: c.ID, Name: c.Name, Status: status, Reason: reason, ObservedGeneration: c.Generation,
		Action: "failed", Data: map[string]any{"reason": reason},
	}); rerr != nil {
		r.logger.Warn("record failure", "container", c.Name, "err", rerr)
	}
}

// outsideMoor marks the reason of a stop moor did not ask for.
const outsideMoor = "outside moor"

// errVanished means a Docker container went away between listing and
// acting on it, e.g. removed with the docker CLI: the pass starts over.
var errVanished = errors.New("docker container vanished")

func vanished(err error) error {
	if errors.Is(err, domain.ErrNotFound) {
		return errVanished
	}
	return err
}

func (r *Reconciler) engineFailed(ctx context.Context, err error) {
	if perr := r.engine.Ping(ctx); perr != nil {
		r.setDocker(false, perr)
		return
	}
	r.logger.Warn("docker", "err", err)
}

func (r *Reconciler) step(name string) {
	if r.cfg.Hook != nil {
		r.cfg.Hook(name)
	}
}

func (r *Reconciler) labels(c domain.Container) map[string]string {
	return map[string]string{
		LabelOwner: r.cfg.InstallationID, LabelID: c.ID, LabelName: c.Name, LabelType: c.Type,
	}
}

// run makes every replica exist and run.
func (r *Reconciler) run(ctx context.Context, c domain.Container, states []engine.State) error {
	if c.Status == domain.StatusPending {
		if err := r.store.RecordObservation(ctx, store.Observation{
			ID: c.ID, Name: c.Name, Status: domain.StatusCreating, Instances: c.Instances, Action: "creating",
		}); err != nil {
			return err
		}
		c.Status = domain.StatusCreating
		r.step("creating")
	}
	if _, done := r.networkOnce.Load(r.cfg.Network); !done {
		if err := r.engine.EnsureNetwork(ctx, r.cfg.Network, map[string]string{LabelOwner: r.cfg.InstallationID}); err != nil {
			return fmt.Errorf("network %s: %w", r.cfg.Network, err)
		}
		r.networkOnce.Store(r.cfg.Network, struct{}{})
	}
	r.step("network")
	if err := r.engine.EnsureImage(ctx, c.Image, r.pullProgress(ctx, c)); err != nil {
		return fmt.Errorf("image %s: %w", c.Image, err)
	}
	r.step("image")
	for i := 0; i < c.Replicas; i++ {
		for _, v := range c.Spec.Volumes {
			if v.HostPath != "" {
				continue
			}
			labels := r.labels(c)
			labels[LabelReplica] = fmt.Sprint(i)
			if err := r.engine.EnsureVolume(ctx, domain.VolumeName(c.Name, v.Name, i), labels); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
	}
	r.step("volumes")

	byReplica, extra := splitReplicas(states, c.Replicas)
	prev := map[int]domain.Instance{}
	for _, in := range c.Instances {
		prev[in.Index] = in
	}
	// Extras leave the routes first: the restart below rewrites the
	// instances without them.
	if ok, err := r.drainNow(ctx, c, extra); !ok {
		return err
	}
	var env map[string]string
	for i := 0; i < c.Replicas; i++ {
		st, exists := byReplica[i]
		switch {
		case !exists:
			if p := prev[i]; p.DockerID != "" && c.ObservedGeneration == c.Generation && c.Spec.Restart == domain.RestartNever {
				return r.stoppedOutside(ctx, c, domain.StatusFailed, fmt.Sprintf("replica %d was removed "+outsideMoor, i))
			}
			if env == nil {
				var err error
				if env, err = r.env(ctx, c); err != nil {
					return err
				}
			}
			id, err := r.engine.Create(ctx, r.spec(c, i, env))
			if err != nil {
				return fmt.Errorf("create replica %d: %w", i, err)
			}
			r.step("created")
			if err := r.engine.Start(ctx, id); err != nil {
				return fmt.Errorf("start replica %d: %w", i, err)
			}
			r.step("started")
		case !st.Running:
			full, err := r.engine.Inspect(ctx, st.ID)
			if err != nil {
				return vanished(err)
			}
			// It ran and stopped, and no user change is pending: it stopped
			// behind moor's back, and the type's restart policy decides.
			if !full.StartedAt.IsZero() && c.ObservedGeneration == c.Generation {
				policy := c.Spec.Restart
				r.logger.Info("replica stopped outside moor", "container", c.Name, "replica", i, "exit_code", full.ExitCode, "restart_policy", policy)
				if policy == domain.RestartNever || (policy == domain.RestartOnFailure && full.ExitCode == 0) {
					status := domain.StatusStopped
					if full.ExitCode != 0 {
						status = domain.StatusFailed
					}
					return r.stoppedOutside(ctx, c, status, fmt.Sprintf("replica %d exited with code %d "+outsideMoor, i, full.ExitCode))
				}
			}
			if err := r.engine.Start(ctx, st.ID); err != nil {
				return fmt.Errorf("start replica %d: %w", i, err)
			}
			r.step("started")
		case !c.RestartAt.IsZero():
			// A restart is pending until observe records it done, so a
			// crash half-way restarts every replica again: repeatable.
			// One replica at a time, each out of the routes while it
			// restarts and back as soon as it is ready.
			wait, err := r.drain(ctx, c, []engine.State{st})
			if err != nil {
				return err
			}
			if sleep(ctx, wait); ctx.Err() != nil {
				return ctx.Err()
			}
			if err := r.engine.Stop(ctx, st.ID, r.cfg.StopTimeout); err != nil {
				return fmt.Errorf("restart replica %d: %w", i, vanished(err))
			}
			r.drained(st.ID)
			if err := r.engine.Start(ctx, st.ID); err != nil {
				return fmt.Errorf("restart replica %d: %w", i, err)
			}
			if i < c.Replicas-1 {
				// The next replica leaves the routes only once this one
				// takes traffic again.
				r.waitReady(ctx, c, i, st.ID)
			}
			if err := r.recordInstances(ctx, &c); err != nil {
				return err
			}
		}
	}
	for _, st := range extra {
		if err := r.engine.Remove(ctx, st.ID); err != nil {
			return fmt.Errorf("scale down: %w", err)
		}
		r.drained(st.ID)
	}
	return r.observe(ctx, c, domain.StatusRunning)
}

// stoppedOutside records a container stopped behind moor's back whose restart
// policy says to leave it: desired state follows reality.
func (r *Reconciler) stoppedOutside(ctx context.Context, c domain.Container, status domain.Status, reason string) error {
	ins, _, _, err := r.instances(ctx, c)
	if err != nil {
		return err
	}
	return r.store.RecordObservation(ctx, store.Observation{
		ID: c.ID, Name: c.Name, Status: status, Reason: reason, Instances: ins,
		ObservedGeneration: c.Generation, StopAt: c.Generation, ContainerDNS: []domain.DNSEntry{},
		Action: "stopped_outside", Data: map[string]any{"reason": reason, "restart_policy": c.Spec.Restart},
	})
}

// stop stops every replica.
func (r *Reconciler) stop(ctx context.Context, c domain.Container, states []engine.State) error {
	if ok, err := r.drainNow(ctx, c, states); !ok {
		return err
	}
	byReplica, extra := splitReplicas(states, c.Replicas)
	for _, st := range byReplica {
		if st.Running {
			if err := r.engine.Stop(ctx, st.ID, r.cfg.StopTimeout); err != nil {
				return fmt.Errorf("stop: %w", err)
			}
			r.drained(st.ID)
		}
	}
	for _, st := range extra {
		if err := r.engine.Remove(ctx, st.ID); err != nil {
			return fmt.Errorf("scale down: %w", err)
		}
		r.drained(st.ID)
	}
	return r.observe(ctx, c, domain.StatusStopped)
}

// remove deletes the Docker containers, then the volumes unless kept, then
// the row. Each step is repeatable, so a crash anywhere is finished later.
func (r *Reconciler) remove(ctx context.Context, c domain.Container, states []engine.State) error {
	if ok, err := r.drainNow(ctx, c, states); !ok {
		return err
	}
	for _, st := range states {
		if err := r.engine.Remove(ctx, st.ID); err != nil {
			return fmt.Errorf("remove: %w", err)
		}
		r.drained(st.ID)
	}
	r.step("removed-containers")
	if !c.KeepVolumes {
		// By label, so volumes of replicas scaled away go too.
		vols, err := r.engine.ListVolumes(ctx, map[string]string{LabelOwner: r.cfg.InstallationID, LabelID: c.ID})
		if err != nil {
			return fmt.Errorf("list volumes: %w", err)
		}
		for _, v := range vols {
			if err := r.engine.RemoveVolume(ctx, v); err != nil {
				return fmt.Errorf("remove volume %s: %w", v, err)
			}
		}
	}
	r.step("removed-volumes")
	return r.store.FinishRemoval(ctx, c.ID, c.Name, map[string]any{"kept_volumes": c.KeepVolumes})
}

// drainNow drains the replicas of states and reports whether they may stop
// now; if not, the container is looked at again when they may.
func (r *Reconciler) drainNow(ctx context.Context, c domain.Container, states []engine.State) (bool, error) {
	wait, err := r.drain(ctx, c, states)
	if err != nil {
		return false, err
	}
	if wait > 0 {
		r.after(c.ID, wait)
		return false, nil
	}
	return true, nil
}

// drain takes the replicas that are about to be stopped or removed (those
// of states that run) out of the routes and the
// container zone, and reports how much longer they must stay out before
// they may stop: cfg.Drain from when this process first drained them, for
// Traefik to follow, so requests meet another replica or moor's status
// page, never a replica going away (a 502). After a crash, or in another
// moor process, the wait starts again: longer, never shorter.
func (r *Reconciler) drain(ctx context.Context, c domain.Container, states []engine.State) (time.Duration, error) {
	if r.cfg.Drain <= 0 {
		return 0, nil
	}
	leaving := map[string]bool{} // Docker ids
	for _, st := range states {
		if st.Running {
			leaving[st.ID] = true
		}
	}
	if len(leaving) == 0 {
		return 0, nil
	}
	ins := slices.Clone(c.Instances)
	var dns []domain.DNSEntry
	marked := map[string]bool{} // Docker ids drained by this call
	for k, in := range ins {
		if in.DockerID != "" && leaving[in.DockerID] && in.Status == domain.StatusRunning {
			ins[k].Status = domain.StatusStopping
			marked[in.DockerID] = true
		}
		if ins[k].Status == domain.StatusRunning {
			dns = append(dns, r.containerDNS(c, ins[k])...)
		}
	}
	// Only replicas that were in the routes need the wait.
	routed := map[string]bool{}
	for _, in := range ins {
		if in.Status == domain.StatusStopping && leaving[in.DockerID] {
			routed[in.DockerID] = true
		}
	}
	if len(marked) > 0 {
		if dns == nil {
			dns = []domain.DNSEntry{}
		}
		if err := r.store.RecordObservation(ctx, store.Observation{
			ID: c.ID, Name: c.Name, Status: c.Status, Reason: c.StatusReason, Instances: ins, ContainerDNS: dns,
		}); err != nil {
			return 0, err
		}
		r.step("drained")
	}
	now := time.Now()
	var remaining time.Duration
	r.mu.Lock()
	for id := range routed {
		// A replica drained before and back in the routes since (a stop
		// undone by a start) starts over.
		since, ok := r.drainSince[id]
		if !ok || marked[id] {
			since = now
			r.drainSince[id] = now
		}
		remaining = max(remaining, since.Add(r.cfg.Drain).Sub(now))
	}
	r.mu.Unlock()
	return remaining, nil
}

// drained forgets the drain of a Docker container that stopped or went.
func (r *Reconciler) drained(dockerID string) {
	r.mu.Lock()
	delete(r.drainSince, dockerID)
	r.mu.Unlock()
}

// after looks at container id again in d, without holding a worker
// meanwhile (a drain of many containers at once takes one drain, not one
// per batch of workers).
func (r *Reconciler) after(id string, d time.Duration) {
	time.AfterFunc(d, func() {
		select {
		case r.due <- id:
		default:
			r.Wake() // full: a full pass finds it too
		}
	})
}

// readyTimeout bounds the wait for a restarted replica in a rolling
// restart; one that never gets ready does not hold the others back.
const readyTimeout = 2 * time.Minute

// waitReady waits until the restarted replica index (Docker id) would take
// traffic: running and, when its type has a health check, healthy. It
// gives up when the replica stops or crashes, or after readyTimeout.
func (r *Reconciler) waitReady(ctx context.Context, c domain.Container, index int, id string) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	checked := c.Spec.Health != nil && len(c.Spec.Health.Test) > 0 && c.Spec.Health.Test[0] != "NONE"
	for {
		st, err := r.engine.Inspect(ctx, id)
		switch {
		case err != nil, !st.Running, st.Restarting, st.Health == "unhealthy":
			return
		case st.Health == "healthy", !checked && st.Health != "starting":
			return
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				r.logger.Warn("restart: replica not ready in time; going on", "container", c.Name, "replica", index, "waited", readyTimeout)
			}
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// recordInstances writes what every replica is now, nothing else: a
// restarted replica takes traffic again as soon as it is ready.
func (r *Reconciler) recordInstances(ctx context.Context, c *domain.Container) error {
	ins, dns, _, err := r.instances(ctx, *c)
	if err != nil {
		return err
	}
	c.Instances = ins
	return r.store.RecordObservation(ctx, store.Observation{
		ID: c.ID, Name: c.Name, Status: c.Status, Reason: c.StatusReason, Instances: ins, ContainerDNS: dns,
	})
}

// containerDNS is a running replica's records in the container zone: the
// container's name (one record per replica) and the replica's own.
func (r *Reconciler) containerDNS(c domain.Container, in domain.Instance) []domain.DNSEntry {
	if in.InternalIP == "" {
		return nil
	}
	replica := in.Index
	typ := "A"
	if strings.Contains(in.InternalIP, ":") {
		typ = "AAAA"
	}
	return []domain.DNSEntry{
		{Zone: "container", Name: c.Name + "." + r.cfg.ContainerZone, Type: typ, Value: in.InternalIP, Replica: &replica, TTL: r.cfg.TTL},
		{Zone: "container", Name: fmt.Sprintf("%d.%s.%s", in.Index, c.Name, r.cfg.ContainerZone), Type: typ, Value: in.InternalIP, Replica: &replica, TTL: r.cfg.TTL},
	}
}

// observe reads back every replica and records the result if it changed.
func (r *Reconciler) observe(ctx context.Context, c domain.Container, want domain.Status) error {
	ins, dns, problems, err := r.instances(ctx, c)
	if err != nil {
		return err
	}
	status := want
	reason := ""
	if want == domain.StatusStopped && strings.Contains(c.StatusReason, outsideMoor) {
		// Keep why it stopped: moor did not stop it.
		status, reason = c.Status, c.StatusReason
	}
	if want == domain.StatusRunning {
		for _, in := range ins {
			switch {
			case problems[in.Index] != "":
				status, reason = domain.StatusFailed, problems[in.Index]
			case in.Status != domain.StatusRunning && status != domain.StatusFailed:
				status, reason = domain.StatusCreating, fmt.Sprintf("replica %d is %s", in.Index, in.Status)
			}
		}
	}
	if status == c.Status && reason == c.StatusReason && c.ObservedGeneration == c.Generation &&
		c.RestartAt.IsZero() && sameInstances(ins, c.Instances) {
		return nil
	}
	o := store.Observation{
		ID: c.ID, Name: c.Name, Status: status, Reason: reason, Instances: ins,
		ObservedGeneration: c.Generation, ContainerDNS: dns, RestartDone: c.RestartAt,
	}
	if status != c.Status {
		o.Action = string(status)
		o.Data = map[string]any{"replicas": len(ins)}
	}
	r.step("observed")
	return r.store.RecordObservation(ctx, o)
}

// instances inspects every replica; dns holds the container-zone records of
// the running ones, problems why a replica is failing.
func (r *Reconciler) instances(ctx context.Context, c domain.Container) ([]domain.Instance, []domain.DNSEntry, map[int]string, error) {
	states, err := r.engine.List(ctx, map[string]string{LabelOwner: r.cfg.InstallationID, LabelID: c.ID})
	if err != nil {
		return nil, nil, nil, err
	}
	problems := map[int]string{}
	byReplica, _ := splitReplicas(states, c.Replicas)
	ins := make([]domain.Instance, 0, c.Replicas)
	dns := []domain.DNSEntry{}
	for i := 0; i < c.Replicas; i++ {
		st, ok := byReplica[i]
		in := domain.Instance{Index: i, Status: domain.StatusPending}
		if ok {
			full, err := r.engine.Inspect(ctx, st.ID)
			if err != nil && !errors.Is(err, domain.ErrNotFound) {
				return nil, nil, nil, err
			}
			if err == nil {
				in.DockerID, in.Health = full.ID, full.Health
				in.InternalIP = full.IPs[r.cfg.Network]
				switch {
				case full.Restarting:
					// Docker reports a crash loop as running: it is not.
					in.Status, in.InternalIP = domain.StatusFailed, ""
					problems[i] = fmt.Sprintf("replica %d keeps crashing (exit code %d, %d restarts)", i, full.ExitCode, full.RestartCount)
				case full.Running:
					in.Status = domain.StatusRunning
				case full.Status == "created":
					in.Status = domain.StatusCreating
				case full.ExitCode != 0 || full.OOMKilled:
					in.Status = domain.StatusFailed
				default:
					in.Status = domain.StatusStopped
				}
			}
		}
		if in.Status == domain.StatusRunning {
			dns = append(dns, r.containerDNS(c, in)...)
		}
		ins = append(ins, in)
	}
	return ins, dns, problems, nil
}

func sameInstances(a, b []domain.Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Index != b[i].Index || a[i].DockerID != b[i].DockerID || a[i].InternalIP != b[i].InternalIP ||
			a[i].Status != b[i].Status || a[i].Health != b[i].Health {
			return false
		}
	}
	return true
}

// splitReplicas sorts Docker containers into wanted replicas and extras
// (indexes beyond n, or duplicates).
func splitReplicas(states []engine.State, n int) (map[int]engine.State, []engine.State) {
	byReplica := map[int]engine.State{}
	var extra []engine.State
	for _, st := range states {
		i, ok := replicaIndex(st)
		if !ok || i >= n {
			extra = append(extra, st)
			continue
		}
		if _, dup := byReplica[i]; dup {
			extra = append(extra, st)
			continue
		}
		byReplica[i] = st
	}
	return byReplica, extra
}

func replicaIndex(st engine.State) (int, bool) {
	var i int
	if _, err := fmt.Sscanf(st.Labels[LabelReplica], "%d", &i); err != nil || i < 0 {
		return 0, false
	}
	return i, true
}

// env merges plain values with the decrypted credentials.
func (r *Reconciler) env(ctx context.Context, c domain.Container) (map[string]string, error) {
	env := make(map[string]string, len(c.Env))
	for k, v := range c.Env {
		env[k] = v
	}
	sealed, err := r.store.SealedSecrets(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	if len(sealed) == 0 {
		return env, nil
	}
	plain, err := r.opener.Open(sealed, []byte(c.ID))
	if err != nil {
		return nil, fmt.Errorf("open credentials: %w", err)
	}
	var secrets map[string]string
	if err := json.Unmarshal(plain, &secrets); err != nil {
		return nil, err
	}
	for k, v := range secrets {
		env[k] = v
	}
	return env, nil
}

func (r *Reconciler) spec(c domain.Container, replica int, env map[string]string) engine.ContainerSpec {
	labels := r.labels(c)
	labels[LabelReplica] = fmt.Sprint(replica)
	s := engine.ContainerSpec{
		Name: domain.DockerName(c.Name, replica), Image: c.Image, Env: env, Cmd: c.Spec.Command,
		Labels: labels, Network: r.cfg.Network,
		// No bare-name alias: a container named "moor" or "traefik" must not
		// capture the names moor's own services use on this network.
		Aliases:     []string{c.Name + "." + r.cfg.ContainerZone, fmt.Sprintf("%d.%s.%s", replica, c.Name, r.cfg.ContainerZone)},
		MemoryBytes: c.Spec.Resources.MemoryMB << 20, NanoCPUs: int64(c.Spec.Resources.CPUs * 1e9),
		Health: c.Spec.Health, Restart: c.Spec.Restart, DNS: r.cfg.DNSServers,
		Privileged: c.Spec.Privileged, Ports: c.Spec.Ports, Hostname: fmt.Sprintf("%s-%d", c.Name, replica),
	}
	for _, v := range c.Spec.Volumes {
		if v.HostPath != "" {
			s.Mounts = append(s.Mounts, engine.Mount{Source: v.HostPath, Target: v.Path, ReadOnly: v.ReadOnly, Bind: true})
		} else {
			s.Mounts = append(s.Mounts, engine.Mount{Source: domain.VolumeName(c.Name, v.Name, replica), Target: v.Path, ReadOnly: v.ReadOnly})
		}
	}
	return s
}

// pullProgress records image pull progress as events, at most a few a second.
func (r *Reconciler) pullProgress(ctx context.Context, c domain.Container) func(engine.Progress) {
	var last time.Time
	return func(p engine.Progress) {
		// Layer completions and the final status always; byte counts at
		// most four times a second, as each event is a transaction.
		final := strings.Contains(p.Status, "complete") || strings.HasPrefix(p.Status, "Status:") || strings.HasPrefix(p.Status, "Digest:")
		if !final && time.Since(last) < 250*time.Millisecond {
			return
		}
		last = time.Now()
		if _, err := r.store.AppendEvent(ctx, "image.pull", c.ID, c.Name, map[string]any{
			"image": c.Image, "layer": p.ID, "status": p.Status, "current": p.Current, "total": p.Total,
		}); err != nil {
			r.logger.Warn("record pull progress", "err", err)
		}
	}
}

// NeedsWork reports whether a container's record and its Docker containers
// disagree. timer passes also retry failed containers.
func NeedsWork(c domain.Container, states []engine.State, timer bool) bool {
	if c.ObservedGeneration < c.Generation || c.Status == domain.StatusPending || c.Status == domain.StatusCreating {
		return true
	}
	switch c.DesiredState {
	case domain.DesiredRemoved:
		return true
	case domain.DesiredStopped:
		for _, st := range states {
			if st.Running {
				return true
			}
		}
		return len(states) > c.Replicas
	}
	if c.Status == domain.StatusFailed {
		return timer
	}
	byReplica, extra := splitReplicas(states, c.Replicas)
	if len(extra) > 0 || len(byReplica) != c.Replicas {
		return true
	}
	for _, in := range c.Instances {
		st, ok := byReplica[in.Index]
		if !ok || !st.Running || st.ID != in.DockerID {
			return true
		}
	}
	return len(c.Instances) != c.Replicas
}
