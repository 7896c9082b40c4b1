package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// memStore is the store's semantics in memory (internal/store is the real
// one; its own tests hold it to the same rules against PostgreSQL).
type memStore struct {
	mu         sync.Mutex
	containers map[string]domain.Container
	dns        map[string][]domain.DNSEntry // container id -> container-zone rows
	sealed     map[string][]byte
	events     []domain.Event
	history    []string // "<name> <action>"
	// fail makes the named method fail with the error, once per entry.
	fail map[string]error
	// reads counts EventsSince calls.
	reads int
	// projects beyond the default one
	projects []domain.Project
	// subnets recorded per project, and how many writes changed them
	subnets      map[string][]string
	subnetWrites int
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{containers: map[string]domain.Container{}, dns: map[string][]domain.DNSEntry{},
		sealed: map[string][]byte{}, fail: map[string]error{}}
}

func (s *memStore) failing(method string) error {
	if err, ok := s.fail[method]; ok {
		delete(s.fail, method)
		return err
	}
	return nil
}

func cloneContainer(c domain.Container) domain.Container {
	c.Instances = slices.Clone(c.Instances)
	c.Env = maps.Clone(c.Env)
	return c
}

func (s *memStore) put(c domain.Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.containers[c.ID] = cloneContainer(c)
	s.appendLocked("container.created", c.ID, c.Name, nil)
}

func (s *memStore) get(id string) (domain.Container, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	return cloneContainer(c), ok
}

// change is what the store's ChangeContainer does, for tests that act as
// a user between passes.
func (s *memStore) change(id string, fn func(*domain.Container), kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.containers[id]
	fn(&c)
	c.Generation++
	s.containers[id] = c
	s.appendLocked(kind, id, c.Name, nil)
}

func (s *memStore) appendLocked(kind, id, name string, data any) int64 {
	seq := int64(len(s.events) + 1)
	s.events = append(s.events, domain.Event{Seq: seq, Time: time.Now(), Kind: kind, ContainerID: id, Container: name})
	return seq
}

func (s *memStore) kinds(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		if e.ContainerID == id {
			out = append(out, e.Kind)
		}
	}
	return out
}

func (s *memStore) ListContainers(ctx context.Context) ([]domain.Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("ListContainers"); err != nil {
		return nil, err
	}
	out := make([]domain.Container, 0, len(s.containers))
	for _, c := range s.containers {
		out = append(out, cloneContainer(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *memStore) ListProjects(ctx context.Context) ([]domain.Project, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("ListProjects"); err != nil {
		return nil, err
	}
	out := append([]domain.Project{{Name: domain.DefaultProject}}, s.projects...)
	for i := range out {
		out[i].Subnets = slices.Clone(s.subnets[out[i].Name])
	}
	return out, nil
}

func (s *memStore) RecordProjectSubnets(ctx context.Context, project string, subnets []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("RecordProjectSubnets"); err != nil {
		return err
	}
	strs := []string{}
	for _, p := range domain.SortedPrefixes(subnets) {
		strs = append(strs, p.String())
	}
	if s.subnets == nil {
		s.subnets = map[string][]string{}
	}
	if old, ok := s.subnets[project]; !ok || !slices.Equal(old, strs) {
		s.subnets[project] = strs
		s.subnetWrites++
	}
	return nil
}

func (s *memStore) GetContainerByID(ctx context.Context, id string) (domain.Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("GetContainerByID"); err != nil {
		return domain.Container{}, err
	}
	c, ok := s.containers[id]
	if !ok {
		return c, fmt.Errorf("container %s: %w", id, domain.ErrNotFound)
	}
	return cloneContainer(c), nil
}

func (s *memStore) SealedSecrets(ctx context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("SealedSecrets"); err != nil {
		return nil, err
	}
	return s.sealed[id], nil
}

func (s *memStore) RecordObservation(ctx context.Context, o domain.Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("RecordObservation"); err != nil {
		return err
	}
	c, ok := s.containers[o.ID]
	if !ok || c.DesiredState == domain.DesiredRemoved && o.Status != domain.StatusRemoving {
		return nil // removed meanwhile: the removal owns the row now
	}
	c.Status, c.StatusReason, c.StatusCause = o.Status, o.Reason, o.Cause
	c.ObservedGeneration = max(c.ObservedGeneration, o.ObservedGeneration)
	if o.StopAt != 0 && c.Generation == o.StopAt {
		c.DesiredState = domain.DesiredStopped
		c.Generation++
		c.ObservedGeneration = c.Generation
	}
	if !o.RestartDone.IsZero() && c.RestartAt.Equal(o.RestartDone) {
		c.RestartAt = time.Time{}
	}
	if !o.PullDone.IsZero() && c.PullAt.Equal(o.PullDone) {
		c.PullAt = time.Time{}
	}
	if !o.RedeployDone.IsZero() && c.RedeployAt.Equal(o.RedeployDone) {
		c.RedeployAt = time.Time{}
		s.appendLocked("container.redeployed", c.ID, c.Name, nil)
	}
	if o.Instances != nil {
		c.Instances = slices.Clone(o.Instances)
		c.InternalIP = ""
		for _, in := range c.Instances {
			if in.InternalIP != "" {
				c.InternalIP = in.InternalIP
				break
			}
		}
	}
	if o.ContainerDNS != nil {
		s.dns[o.ID] = slices.Clone(o.ContainerDNS)
	}
	s.containers[o.ID] = c
	if o.Event != "" {
		s.appendLocked("container."+o.Event, c.ID, c.Name, o.Data)
		s.history = append(s.history, c.Name+" "+o.Event)
	}
	return nil
}

func (s *memStore) FinishRemoval(ctx context.Context, id, name string, data any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("FinishRemoval"); err != nil {
		return err
	}
	c, ok := s.containers[id]
	if !ok || c.DesiredState != domain.DesiredRemoved {
		return nil
	}
	delete(s.containers, id)
	delete(s.dns, id)
	s.appendLocked("container.removed", id, name, data)
	return nil
}

func (s *memStore) AppendEvent(ctx context.Context, kind, containerID, name string, data any) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("AppendEvent"); err != nil {
		return 0, err
	}
	return s.appendLocked(kind, containerID, name, data), nil
}

func (s *memStore) LastEventSeq(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failing("LastEventSeq"); err != nil {
		return 0, err
	}
	return int64(len(s.events)), nil
}

func (s *memStore) EventsSince(ctx context.Context, after int64, limit int) ([]domain.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if err := s.failing("EventsSince"); err != nil {
		return nil, err
	}
	if after >= int64(len(s.events)) {
		return nil, nil
	}
	evs := s.events[after:]
	if len(evs) > limit {
		evs = evs[:limit]
	}
	return slices.Clone(evs), nil
}

// fakeEngine is a container runtime in memory. Instances get ids rt-N and
// addresses 10.0.0.N on the network they were created on.
type fakeEngine struct {
	mu        sync.Mutex
	next      int
	instances map[string]*domain.InstanceState
	networks  map[string]domain.NetworkSpec
	subnets   map[string][]netip.Prefix // by network: 10.N.0.0/16 in creation order unless a test says
	images    map[string]bool           // present; others are pulled (known) or missing
	known     map[string]bool           // images a pull finds
	volumes   map[string]map[string]string
	specs     map[string]domain.InstanceSpec // runtime id -> what Create was given
	down      error                          // Ping and every call fail with it
	// fail makes the named method fail with the error, once per entry.
	fail   map[string]error
	calls  []string
	events chan domain.RuntimeEvent
	errs   chan error
	// onStart, when set, decides what a started instance does (crash).
	onStart func(st *domain.InstanceState)
}

var _ Engine = (*fakeEngine)(nil)

func newFakeEngine() *fakeEngine {
	return &fakeEngine{instances: map[string]*domain.InstanceState{}, networks: map[string]domain.NetworkSpec{},
		images: map[string]bool{}, known: map[string]bool{"app:1": true}, volumes: map[string]map[string]string{},
		specs: map[string]domain.InstanceSpec{}, fail: map[string]error{}}
}

func (e *fakeEngine) call(method string) error {
	e.calls = append(e.calls, method)
	if e.down != nil {
		return e.down
	}
	if err, ok := e.fail[method]; ok {
		delete(e.fail, method)
		return err
	}
	return nil
}

func (e *fakeEngine) count(method string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.calls {
		if c == method {
			n++
		}
	}
	return n
}

func (e *fakeEngine) Ping(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down != nil {
		return e.down
	}
	return nil
}

func (e *fakeEngine) Events(ctx context.Context, labels map[string]string) (<-chan domain.RuntimeEvent, <-chan error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = make(chan domain.RuntimeEvent, 16)
	e.errs = make(chan error, 1)
	evs, errs := e.events, e.errs
	go func() {
		<-ctx.Done()
		select {
		case errs <- ctx.Err():
		default:
		}
	}()
	return evs, errs
}

func (e *fakeEngine) Create(ctx context.Context, spec domain.InstanceSpec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("Create"); err != nil {
		return "", err
	}
	if !e.images[spec.Image] {
		return "", fmt.Errorf("no such image %s: %w", spec.Image, domain.ErrNotFound)
	}
	for _, st := range e.instances {
		if st.Name == spec.Name {
			if st.Labels[domain.LabelID] == spec.Labels[domain.LabelID] {
				return st.RuntimeID, nil
			}
			return "", fmt.Errorf("create %s: %w", spec.Name, &domain.NameTakenError{
				Name: spec.Name, RuntimeID: st.RuntimeID, Owner: st.Labels[domain.LabelOwner], ID: st.Labels[domain.LabelID]})
		}
	}
	e.next++
	id := "rt-" + strconv.Itoa(e.next)
	ips := map[string]string{spec.Network: "10.0.0." + strconv.Itoa(e.next)}
	if spec.HostNetwork {
		ips = map[string]string{} // no address of its own, as Docker reports it
	}
	e.instances[id] = &domain.InstanceState{
		RuntimeID: id, Name: spec.Name, Node: "node-1", Labels: maps.Clone(spec.Labels), Image: spec.Image,
		Status: "created", IPs: ips,
	}
	e.specs[id] = spec
	return id, nil
}

func (e *fakeEngine) Start(ctx context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("Start"); err != nil {
		return err
	}
	st, ok := e.instances[id]
	if !ok {
		return fmt.Errorf("start %s: %w", id, domain.ErrNotFound)
	}
	st.Running, st.Status, st.StartedAt, st.ExitCode = true, "running", time.Now(), 0
	for n, ip := range st.IPs {
		if ip == "" {
			st.IPs[n] = "10.0.0." + id[len("rt-"):]
		}
	}
	if e.onStart != nil {
		e.onStart(st)
	}
	return nil
}

// exit makes instance id exit with code as if on its own.
func (e *fakeEngine) exit(id string, code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.instances[id]
	st.Running, st.Status, st.ExitCode, st.FinishedAt = false, "exited", code, time.Now()
	for n := range st.IPs {
		st.IPs[n] = ""
	}
}

func (e *fakeEngine) Stop(ctx context.Context, id string, timeout time.Duration) error {
	e.mu.Lock()
	if err := e.call("Stop"); err != nil {
		e.mu.Unlock()
		return err
	}
	_, ok := e.instances[id]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("stop %s: %w", id, domain.ErrNotFound)
	}
	e.exit(id, 0)
	return nil
}

func (e *fakeEngine) Remove(ctx context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("Remove"); err != nil {
		return err
	}
	delete(e.instances, id)
	return nil
}

func (e *fakeEngine) Inspect(ctx context.Context, id string) (domain.InstanceState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("Inspect"); err != nil {
		return domain.InstanceState{}, err
	}
	st, ok := e.instances[id]
	if !ok {
		return domain.InstanceState{}, fmt.Errorf("inspect %s: %w", id, domain.ErrNotFound)
	}
	return copyState(*st), nil
}

func copyState(st domain.InstanceState) domain.InstanceState {
	st.Labels, st.IPs = maps.Clone(st.Labels), maps.Clone(st.IPs)
	return st
}

func (e *fakeEngine) List(ctx context.Context, labels map[string]string) ([]domain.InstanceState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("List"); err != nil {
		return nil, err
	}
	var out []domain.InstanceState
	for _, st := range e.instances {
		if matches(st.Labels, labels) {
			out = append(out, copyState(*st))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RuntimeID < out[j].RuntimeID })
	return out, nil
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || v != "" && hv != v {
			return false
		}
	}
	return true
}

func (e *fakeEngine) EnsureNetwork(ctx context.Context, spec domain.NetworkSpec) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("EnsureNetwork"); err != nil {
		return err
	}
	if _, ok := e.networks[spec.Name]; !ok {
		e.networks[spec.Name] = spec
		if e.subnets == nil {
			e.subnets = map[string][]netip.Prefix{}
		}
		e.subnets[spec.Name] = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(len(e.subnets) + 1), 0, 0}), 16)}
	}
	if slices.Contains(spec.Attach, "missing") {
		return &domain.AttachError{Network: spec.Name, Err: fmt.Errorf("no such container: missing")}
	}
	return nil
}

func (e *fakeEngine) NetworkSubnets(ctx context.Context, name string) ([]netip.Prefix, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("NetworkSubnets"); err != nil {
		return nil, err
	}
	if _, ok := e.networks[name]; !ok {
		return nil, fmt.Errorf("network %s: %w", name, domain.ErrNotFound)
	}
	return slices.Clone(e.subnets[name]), nil
}

func (e *fakeEngine) ListNetworks(ctx context.Context, labels map[string]string) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("ListNetworks"); err != nil {
		return nil, err
	}
	var out []string
	for n, spec := range e.networks {
		if matches(spec.Labels, labels) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (e *fakeEngine) RemoveNetwork(ctx context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("RemoveNetwork"); err != nil {
		return err
	}
	delete(e.networks, name)
	return nil
}

func (e *fakeEngine) NetworkGateway(ctx context.Context, name string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("NetworkGateway"); err != nil {
		return "", err
	}
	if _, ok := e.networks[name]; !ok {
		return "", fmt.Errorf("network %s: %w", name, domain.ErrNotFound)
	}
	return "10.0.0.1", nil
}

func (e *fakeEngine) EnsureImage(ctx context.Context, image string, progress func(domain.PullProgress)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("EnsureImage"); err != nil {
		return err
	}
	if e.images[image] {
		return nil
	}
	if !e.known[image] {
		return fmt.Errorf("pull %s: manifest unknown: %w", image, domain.ErrNotFound)
	}
	progress(domain.PullProgress{ID: "l1", Status: "Downloading", Current: 1, Total: 2})
	progress(domain.PullProgress{ID: "l1", Status: "Pull complete"})
	progress(domain.PullProgress{ID: image, Status: "Status: Downloaded newer image for " + image})
	e.images[image] = true
	return nil
}

func (e *fakeEngine) PullImage(ctx context.Context, image string, progress func(domain.PullProgress)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("PullImage"); err != nil {
		return err
	}
	if e.images[image] && !e.known[image] {
		return fmt.Errorf("image %s: %w", image, domain.ErrLocalImage)
	}
	if !e.known[image] {
		return fmt.Errorf("pull %s: manifest unknown: %w", image, domain.ErrNotFound)
	}
	progress(domain.PullProgress{ID: "l1", Status: "Pull complete"})
	progress(domain.PullProgress{ID: image, Status: "Status: Downloaded newer image for " + image})
	e.images[image] = true
	return nil
}

func (e *fakeEngine) EnsureVolume(ctx context.Context, name string, labels map[string]string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("EnsureVolume"); err != nil {
		return err
	}
	if _, ok := e.volumes[name]; !ok {
		e.volumes[name] = maps.Clone(labels)
	}
	return nil
}

func (e *fakeEngine) RemoveVolume(ctx context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("RemoveVolume"); err != nil {
		return err
	}
	delete(e.volumes, name)
	return nil
}

func (e *fakeEngine) ListVolumes(ctx context.Context, labels map[string]string) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.call("ListVolumes"); err != nil {
		return nil, err
	}
	var out []string
	for n, l := range e.volumes {
		if matches(l, labels) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// running is the runtime ids of running instances of container id.
func (e *fakeEngine) running(id string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, st := range e.instances {
		if st.Labels[domain.LabelID] == id && st.Running {
			out = append(out, st.RuntimeID)
		}
	}
	sort.Strings(out)
	return out
}

func (e *fakeEngine) total(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, st := range e.instances {
		if st.Labels[domain.LabelID] == id {
			n++
		}
	}
	return n
}

// memLocker is a lock table in memory; lost cancels the holders' contexts.
type memLocker struct {
	mu      sync.Mutex
	held    map[string]context.CancelFunc
	refuse  bool
	failing error
}

func (l *memLocker) TryLock(ctx context.Context, id string) (context.Context, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing != nil {
		return nil, false, l.failing
	}
	if l.held == nil {
		l.held = map[string]context.CancelFunc{}
	}
	if _, ok := l.held[id]; ok || l.refuse {
		return nil, false, nil
	}
	lctx, cancel := context.WithCancel(ctx)
	l.held[id] = cancel
	return lctx, true, nil
}

func (l *memLocker) Unlock(ctx context.Context, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cancel, ok := l.held[id]; ok {
		cancel()
		delete(l.held, id)
	}
}

// plainOpener "decrypts" by checking the additional data only.
type plainOpener struct{}

func (plainOpener) Open(ciphertext, additional []byte) ([]byte, error) {
	prefix := string(additional) + ":"
	if len(ciphertext) < len(prefix) || string(ciphertext[:len(prefix)]) != prefix {
		return nil, errors.New("message authentication failed")
	}
	return ciphertext[len(prefix):], nil
}

func (s *memStore) GetContainer(ctx context.Context, cr domain.ContainerRef) (domain.Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.containers {
		if c.Project == cr.Project && c.Name == cr.Name {
			return cloneContainer(c), nil
		}
	}
	return domain.Container{}, fmt.Errorf("container %q: %w", cr, domain.ErrNotFound)
}
