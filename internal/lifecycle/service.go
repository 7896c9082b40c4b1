// Package lifecycle is the front door for changes to managed containers: it
// validates and authorises a request, then records the desired state in one
// transaction. The reconciler makes Docker match it.
package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/moorhq/moor/internal/catalog"
	"github.com/moorhq/moor/internal/domain"
)

// Catalog finds container types.
type Catalog interface {
	Get(id string) (domain.Type, error)
}

// Store is the state the service reads and changes.
type Store interface {
	CreateContainer(ctx context.Context, nc domain.NewContainer, actor string) (domain.Container, error)
	ChangeContainer(ctx context.Context, cr domain.ContainerRef, ch domain.Change, actor string) (domain.Container, error)
	GetContainer(ctx context.Context, cr domain.ContainerRef) (domain.Container, error)
	ProjectContainers(ctx context.Context, project string) ([]domain.Container, error)
	SealedSecrets(ctx context.Context, id string) ([]byte, error)
	History(ctx context.Context, cr domain.ContainerRef, all bool) ([]domain.HistoryEntry, error)
	UpdateContainer(ctx context.Context, cr domain.ContainerRef, u domain.Update, actor string) (domain.Container, error)
	CreateProject(ctx context.Context, np domain.NewProject, actor string) (domain.Project, error)
	GetProject(ctx context.Context, name string) (domain.Project, error)
	ListProjects(ctx context.Context) ([]domain.Project, error)
	DeleteProject(ctx context.Context, name, actor string) error
	UpdateProject(ctx context.Context, name string, pp domain.ProjectPatch, actor string) (domain.Project, error)
	Members(ctx context.Context, project string) ([]domain.Member, error)
	SetMember(ctx context.Context, project string, m domain.MemberRequest, role domain.Role, actor string) (domain.Member, error)
	RemoveMember(ctx context.Context, project, kind, name, actor string) error
	ClaimMissingHosts(ctx context.Context, hosts func(domain.Container) []string) ([]string, error)
	Stacks
}

// Sealer encrypts credentials bound to a container id.
type Sealer interface {
	Seal(plaintext, additional []byte) ([]byte, error)
	Open(ciphertext, additional []byte) ([]byte, error)
}

// LogReader reads an instance's logs from its runtime.
type LogReader interface {
	Logs(ctx context.Context, id string, opts domain.LogOptions, w io.Writer) error
}

// Zones says how names and URLs are formed.
type Zones struct {
	Host      string // e.g. moor.localhost
	Container string // e.g. moor.internal
	PublicIP  string // what host-zone names resolve to
	TTL       int    // seconds
	// AliasDomains are domains under which anyone who may deploy may add
	// aliases, besides the host zone (MOOR_ALIAS_DOMAINS); other names are
	// for admins only: a route claims its host for everyone.
	AliasDomains []string
	// URLPort is added to containers' URLs when they are served on a port
	// other than 80 (moor's embedded router on MOOR_HTTP_ADDR).
	URLPort string
	// Network is the default project's Docker network (MOOR_NETWORK);
	// other projects' networks are named after it.
	Network string
}

// Publishing says who may publish container ports on the host, and where.
type Publishing struct {
	// Addr is the host address of a binding that names none
	// (MOOR_PUBLISH_ADDR).
	Addr string
	// OperatorPorts are the host ports operators may publish
	// (MOOR_PUBLISH_PORTS; none: only admins publish). Admins may publish
	// any.
	OperatorPorts domain.PortRanges
}

// Service validates, authorises and records lifecycle changes.
type Service struct {
	catalog Catalog
	store   Store
	sealer  Sealer
	logs    LogReader
	zones   Zones
	publish Publishing
	logger  *slog.Logger
}

// New returns a Service.
func New(cat Catalog, st Store, sealer Sealer, logs LogReader, zones Zones, publish Publishing, logger *slog.Logger) *Service {
	if zones.TTL == 0 {
		zones.TTL = 5
	}
	if publish.Addr == "" {
		publish.Addr = DefaultPublishAddr
	}
	return &Service{catalog: cat, store: st, sealer: sealer, logs: logs, zones: zones, publish: publish, logger: logger}
}

// DefaultPublishAddr is where ports are published when neither the request
// nor MOOR_PUBLISH_ADDR names an address: loopback, so a database published
// for a local tool is not open to the network by surprise.
const DefaultPublishAddr = "127.0.0.1"

// Create validates req and records a new container with desired state running.
func (s *Service) Create(ctx context.Context, req domain.CreateRequest) (domain.Container, error) {
	actor := domain.ActorFrom(ctx)
	if req.Project == "" {
		req.Project = domain.DefaultProject
	}
	if err := s.validName("name", req.Project, req.Name); err != nil {
		return domain.Container{}, err
	}
	if req.Type == "" {
		return domain.Container{}, domain.Invalid("type", "is required")
	}
	if !domain.IsLabel(req.Type) {
		return domain.Container{}, domain.Invalid("type", "must be a catalog type id")
	}
	replicas := 1
	if req.Replicas != nil {
		replicas = *req.Replicas
		if err := validateReplicas(replicas); err != nil {
			return domain.Container{}, err
		}
	}
	if err := domain.ValidateAliases("aliases", req.Aliases); err != nil {
		return domain.Container{}, err
	}
	if err := s.aliasesAllowed(actor, req.Aliases); err != nil {
		return domain.Container{}, err
	}
	if err := domain.ValidatePathPrefix("path", req.Path); err != nil {
		return domain.Container{}, err
	}
	t, err := s.catalog.Get(req.Type)
	if err != nil {
		return domain.Container{}, err
	}
	if t, err = catalog.ChooseHTTPPort(t, req.HTTPPort); err != nil {
		return domain.Container{}, err
	}
	t = withRouting(t, req.Aliases, req.Path)
	if t.RequiresAdmin() && !actor.Role.Allows(domain.RoleAdmin) {
		return domain.Container{}, fmt.Errorf("type %q uses %s, which only admins may deploy: %w", t.ID, reachesOutside, domain.ErrForbidden)
	}
	nc, err := s.newContainer(actor, req, t, replicas, uuid.NewString(), nil)
	if err != nil {
		return domain.Container{}, err
	}
	c, err := s.store.CreateContainer(ctx, nc, actor.String())
	if err != nil {
		return c, err
	}
	return s.decorate(c), nil
}

// validName refuses a container name that is no DNS label, or too long
// for its host name in project; field is what to blame.
func (s *Service) validName(field, project, name string) error {
	if err := domain.ValidateName(name); err != nil {
		if fe, ok := err.(*domain.FieldError); ok && field != "name" {
			return domain.Invalid(field, "%s", fe.Rule)
		}
		return err
	}
	if label := domain.HostLabel(project, name); len(label) > domain.MaxNameLength {
		return domain.Invalid(field, "is too long for project %q: its host name %s.%s must fit in a DNS label of %d characters (the name at most %d here)",
			project, label, s.zones.Host, domain.MaxNameLength, domain.MaxNameLength-len(project)-1)
	}
	return nil
}

// newContainer turns a request for a container of type t (validated, the
// caller allowed to deploy it) into one ready to record with id: replicas
// held to the type, host ports checked against the caller's role (kept:
// bindings it holds already), the environment resolved with its secrets
// sealed for id, its DNS rows and host names. Create and stacks share it.
func (s *Service) newContainer(actor domain.Actor, req domain.CreateRequest, t domain.Type, replicas int, id string, kept []domain.PublishedPort) (domain.NewContainer, error) {
	if err := replicasFit(t, replicas); err != nil {
		return domain.NewContainer{}, err
	}
	published, err := domain.ResolvePublish(t, req.Publish, s.publish.Addr)
	if err != nil {
		return domain.NewContainer{}, err
	}
	if err := domain.PublishFits("replicas", replicas, published); err != nil {
		return domain.NewContainer{}, err
	}
	if err := s.publishAllowed(actor, published, kept); err != nil {
		return domain.NewContainer{}, err
	}
	env, secrets, err := catalog.Resolve(t, req.Env, req.LeaveEmpty)
	if err != nil {
		return domain.NewContainer{}, err
	}
	var sealed []byte
	if len(secrets) > 0 {
		plain, err := json.Marshal(secrets)
		if err != nil {
			return domain.NewContainer{}, err
		}
		if sealed, err = s.sealer.Seal(plain, []byte(id)); err != nil {
			return domain.NewContainer{}, fmt.Errorf("seal credentials: %w", err)
		}
	}
	return domain.NewContainer{
		ID: id, Project: req.Project, Name: req.Name, Type: t.ID, Image: t.Image, Spec: t, Env: env, Secrets: sealed,
		Replicas: replicas, DNS: s.hostDNS(req.Project, req.Name), Published: published,
		Hosts: domain.HostNames(s.zones.Host, req.Project, req.Name, req.Aliases),
	}, nil
}

// aliasesAllowed refuses, for anyone but an admin, an alias reachesOutside the
// host zone and the allowed domains: "localhost", another team's domain or
// moor's own host would be claimed for everyone who reaches Traefik.
func (s *Service) aliasesAllowed(actor domain.Actor, aliases []string) error {
	if actor.Role.Allows(domain.RoleAdmin) {
		return nil
	}
	for i, a := range aliases {
		if !under(a, s.zones.Host) && !slices.ContainsFunc(s.zones.AliasDomains, func(d string) bool { return under(a, d) }) {
			allowed := append([]string{s.zones.Host}, s.zones.AliasDomains...)
			return fmt.Errorf("aliases[%d]: %q is reachesOutside %s; only admins may route other names: %w",
				i, a, strings.Join(allowed, ", "), domain.ErrForbidden)
		}
	}
	return nil
}

// publishAllowed refuses, for anyone but an admin, a host port outside the
// ports operators may publish (MOOR_PUBLISH_PORTS): a host port is the
// host's, shared with every program on it. Bindings in kept (a container's
// current ones, which an admin may have set) stay allowed.
func (s *Service) publishAllowed(actor domain.Actor, published, kept []domain.PublishedPort) error {
	if actor.Role.Allows(domain.RoleAdmin) {
		return nil
	}
	for i, p := range published {
		if slices.Contains(kept, p) || s.publish.OperatorPorts.Contains(p.HostPort) {
			continue
		}
		if len(s.publish.OperatorPorts) == 0 {
			return fmt.Errorf("publish[%d].host_port: only admins may publish host ports on this moor (MOOR_PUBLISH_PORTS is empty): %w",
				i, domain.ErrForbidden)
		}
		return fmt.Errorf("publish[%d].host_port: %d is outside the host ports operators may publish (%s, MOOR_PUBLISH_PORTS); only admins may publish others: %w",
			i, p.HostPort, s.publish.OperatorPorts, domain.ErrForbidden)
	}
	return nil
}

// under reports whether host is a name strictly below domain.
func under(host, domain string) bool {
	return domain != "" && strings.HasSuffix(host, "."+domain)
}

// withRouting returns t with the request's aliases and path in its routing
// options (a copy: the catalog's type is shared).
func withRouting(t domain.Type, aliases []string, path string) domain.Type {
	if len(aliases) == 0 && path == "" {
		return t
	}
	r := domain.Routing{}
	if t.Routing != nil {
		r = *t.Routing
	}
	r.Aliases = append([]string(nil), aliases...)
	if path != "" {
		r.Path = path
	}
	t.Routing = &r
	return t
}

func validateReplicas(n int) error {
	if n < 0 || n > domain.MaxReplicas {
		return domain.Invalid("replicas", "must be between 0 and %d", domain.MaxReplicas)
	}
	return nil
}

// replicasFit refuses more than one replica on the host's network stack:
// they would share the host's ports, and all but one crash on a taken one.
func replicasFit(t domain.Type, n int) error {
	if t.Network == domain.NetworkHost && n > 1 {
		return domain.Invalid("replicas", "must be 0 or 1 for a type on the host's network (replicas would share the host's ports)")
	}
	return nil
}

// hostDNS is the host-zone record of a container: its name points at the
// public (Traefik) address.
func (s *Service) hostDNS(project, name string) []domain.DNSEntry {
	if s.zones.PublicIP == "" {
		return nil
	}
	typ := "A"
	if strings.Contains(s.zones.PublicIP, ":") {
		typ = "AAAA"
	}
	return []domain.DNSEntry{{Zone: domain.ZoneHost, Name: domain.HostLabel(project, name) + "." + s.zones.Host, Type: typ, Value: s.zones.PublicIP, TTL: s.zones.TTL}}
}

// decorate fills the fields derived from configuration.
func (s *Service) decorate(c domain.Container) domain.Container {
	c.DNS = domain.DNSNames{Host: domain.HostLabel(c.Project, c.Name) + "." + s.zones.Host,
		Container: domain.ContainerLabel(c.Project, c.Name) + "." + s.zones.Container}
	if c.Project == domain.DefaultProject {
		c.DNS.Container = c.Name + "." + s.zones.Container // today's name, kept
	}
	for _, p := range c.Ports {
		if p.HTTP {
			c.URL = "http://" + c.DNS.Host
			if s.zones.URLPort != "" {
				c.URL += ":" + s.zones.URLPort
			}
		}
	}
	if c.Env == nil {
		c.Env = map[string]string{}
	}
	if c.Published == nil {
		c.Published = []domain.PublishedPort{}
	}
	c.EnvNames = slices.Sorted(maps.Keys(c.Env))
	return c
}

// Get returns the named container.
func (s *Service) Get(ctx context.Context, cr domain.ContainerRef) (domain.Container, error) {
	if err := validRef(cr); err != nil {
		return domain.Container{}, err
	}
	c, err := s.store.GetContainer(ctx, cr)
	if err != nil {
		return c, err
	}
	return s.decorate(c), nil
}

// validRef refuses a reference no container can have as not found: a
// malformed name in a path is a container that does not exist.
func validRef(cr domain.ContainerRef) error {
	if err := knownProject(cr.Project); err != nil {
		return err
	}
	if domain.ValidateName(cr.Name) != nil {
		return fmt.Errorf("container %q: %w", cr, domain.ErrNotFound)
	}
	return nil
}

// List returns the containers of a project.
func (s *Service) List(ctx context.Context, project string) ([]domain.Container, error) {
	if err := knownProject(project); err != nil {
		return nil, err
	}
	cs, err := s.store.ProjectContainers(ctx, project)
	if err == nil && len(cs) == 0 && project != domain.DefaultProject {
		// An empty list of a project that does not exist is a 404.
		if _, err := s.store.GetProject(ctx, project); err != nil {
			return nil, err
		}
	}
	for i := range cs {
		cs[i] = s.decorate(cs[i])
	}
	return cs, err
}

func (s *Service) change(ctx context.Context, cr domain.ContainerRef, ch domain.Change) (domain.Container, error) {
	if err := validRef(cr); err != nil {
		return domain.Container{}, err
	}
	actor := domain.ActorFrom(ctx)
	cur, err := s.store.GetContainer(ctx, cr)
	if err != nil {
		return cur, err
	}
	if err := adminOnly(ctx, cur, "operate"); err != nil {
		return domain.Container{}, err
	}
	if ch.Action == domain.ActionScale {
		// The published ports are checked by the store, under the lock
		// a change of them takes too.
		if err := replicasFit(cur.Spec, ch.Replicas); err != nil {
			return domain.Container{}, err
		}
	}
	c, err := s.store.ChangeContainer(ctx, cr, ch, actor.String())
	if err != nil {
		return c, err
	}
	return s.decorate(c), nil
}

// reachesOutside names what makes a type admin-only (domain.Type.RequiresAdmin).
const reachesOutside = "host mounts, host networking, devices, privileged mode or added capabilities"

// adminOnly refuses what only an admin may do with c: what only an admin
// may deploy (see reachesOutside), only an admin may operate, or read the
// credentials and logs of. (The spec is fixed at create time, so this
// check cannot race a change of it.)
func adminOnly(ctx context.Context, c domain.Container, what string) error {
	if c.Spec.RequiresAdmin() && !domain.ActorFrom(ctx).Role.Allows(domain.RoleAdmin) {
		return fmt.Errorf("container %q uses %s: only admins may %s it: %w", c.Ref(), reachesOutside, what, domain.ErrForbidden)
	}
	return nil
}

// Start asks for the container to run.
func (s *Service) Start(ctx context.Context, cr domain.ContainerRef) (domain.Container, error) {
	return s.change(ctx, cr, domain.Change{Action: domain.ActionStart})
}

// Stop asks for the container to stop.
func (s *Service) Stop(ctx context.Context, cr domain.ContainerRef) (domain.Container, error) {
	return s.change(ctx, cr, domain.Change{Action: domain.ActionStop})
}

// Restart asks for every replica to be restarted.
func (s *Service) Restart(ctx context.Context, cr domain.ContainerRef) (domain.Container, error) {
	return s.change(ctx, cr, domain.Change{Action: domain.ActionRestart})
}

// Redeploy asks for every replica to be replaced, one at a time as a
// rolling update does, with the image pulled again first when pull (a tag
// such as :latest may have moved). A stopped container is started.
func (s *Service) Redeploy(ctx context.Context, cr domain.ContainerRef, pull bool) (domain.Container, error) {
	return s.change(ctx, cr, domain.Change{Action: domain.ActionRedeploy, Pull: pull})
}

// Remove asks for the container to go; its volumes stay only if keepVolumes.
func (s *Service) Remove(ctx context.Context, cr domain.ContainerRef, keepVolumes bool) (domain.Container, error) {
	return s.change(ctx, cr, domain.Change{Action: domain.ActionRemove, KeepVolumes: keepVolumes})
}

// Scale sets the number of replicas.
func (s *Service) Scale(ctx context.Context, cr domain.ContainerRef, replicas int) (domain.Container, error) {
	if err := validateReplicas(replicas); err != nil {
		return domain.Container{}, err
	}
	return s.change(ctx, cr, domain.Change{Action: domain.ActionScale, Replicas: replicas})
}

// History returns the container's history, also after its removal: of
// the container now under that name, or with all of every earlier one too.
func (s *Service) History(ctx context.Context, cr domain.ContainerRef, all bool) ([]domain.HistoryEntry, error) {
	if err := validRef(cr); err != nil {
		return nil, err
	}
	return s.store.History(ctx, cr, all)
}

// Credentials returns the container's generated and secret values.
func (s *Service) Credentials(ctx context.Context, cr domain.ContainerRef) (map[string]string, error) {
	c, err := s.Get(ctx, cr)
	if err != nil {
		return nil, err
	}
	if err := adminOnly(ctx, c, "read the credentials of"); err != nil {
		return nil, err
	}
	return s.openSecrets(ctx, c)
}

// Logs writes the last tail lines of one replica's logs to w.
func (s *Service) Logs(ctx context.Context, cr domain.ContainerRef, replica int, opts domain.LogOptions, w io.Writer) error {
	c, err := s.Get(ctx, cr)
	if err != nil {
		return err
	}
	if err := adminOnly(ctx, c, "read the logs of"); err != nil {
		return err
	}
	for _, in := range c.Instances {
		if in.Index == replica && in.RuntimeID != "" {
			return s.logs.Logs(ctx, in.RuntimeID, opts, w)
		}
	}
	return fmt.Errorf("replica %d of %q has not been created yet: %w", replica, cr, domain.ErrNotFound)
}

// Update changes a container's environment, image tag or replicas (PATCH):
// the environment is merged into the current values and checked against
// the container's type again; a new image or environment replaces the
// replicas one at a time, each out of the routes until its successor is
// ready, so a container of several replicas keeps serving.
func (s *Service) Update(ctx context.Context, cr domain.ContainerRef, p domain.Patch) (domain.Container, error) {
	if err := validRef(cr); err != nil {
		return domain.Container{}, err
	}
	cur, err := s.store.GetContainer(ctx, cr)
	if err != nil {
		return cur, err
	}
	if err := adminOnly(ctx, cur, "change"); err != nil {
		return domain.Container{}, err
	}
	u := domain.Update{Generation: cur.Generation, Image: cur.Image, Replicas: cur.Replicas, Published: cur.Published, Details: map[string]any{}}
	if p.Image != "" && p.Image != cur.Image {
		if err := catalog.SameRepository(cur.Image, p.Image); err != nil {
			return domain.Container{}, err
		}
		u.Image, u.Reconfigure = p.Image, true
		u.Details["image"] = map[string]string{"from": cur.Image, "to": p.Image}
	}
	if p.Replicas != nil && *p.Replicas != cur.Replicas {
		if err := validateReplicas(*p.Replicas); err != nil {
			return domain.Container{}, err
		}
		if err := replicasFit(cur.Spec, *p.Replicas); err != nil {
			return domain.Container{}, err
		}
		u.Replicas = *p.Replicas
		u.Details["replicas"] = map[string]int{"from": cur.Replicas, "to": *p.Replicas}
	}
	if err := s.patchPublish(ctx, cur, p, &u); err != nil {
		return domain.Container{}, err
	}
	// The current values (the sealed ones opened), then the patch.
	current := maps.Clone(cur.Env)
	if current == nil {
		current = map[string]string{}
	}
	secrets, err := s.openSecrets(ctx, cur)
	if err != nil {
		return domain.Container{}, err
	}
	maps.Copy(current, secrets)
	input := maps.Clone(current)
	maps.Copy(input, p.Env)
	for _, k := range p.LeaveEmpty {
		delete(input, k)
	}
	env, newSecrets, err := catalog.Resolve(cur.Spec, input, p.LeaveEmpty)
	if err != nil {
		return domain.Container{}, err
	}
	var changed []string
	for _, spec := range cur.Spec.Env {
		k := spec.Name
		old, was := current[k]
		now, is := env[k]
		if !is {
			now, is = newSecrets[k]
		}
		if was != is || old != now {
			changed = append(changed, k)
		}
	}
	u.Env, u.Secrets = env, nil
	if len(newSecrets) > 0 {
		plain, err := json.Marshal(newSecrets)
		if err != nil {
			return domain.Container{}, err
		}
		if u.Secrets, err = s.sealer.Seal(plain, []byte(cur.ID)); err != nil {
			return domain.Container{}, fmt.Errorf("seal credentials: %w", err)
		}
	}
	if len(changed) > 0 {
		u.Reconfigure = true
		u.Details["env"] = changed // names only: history is for every viewer
	}
	if !u.Reconfigure && u.Replicas == cur.Replicas {
		return s.decorate(cur), nil // nothing to change
	}
	c, err := s.store.UpdateContainer(ctx, cr, u, domain.ActorFrom(ctx).String())
	if err != nil {
		return c, err
	}
	return s.decorate(c), nil
}

// patchPublish applies a PATCH's publish list to u: checked against the
// container's type, its replicas and the caller's role; a change replaces
// the replicas (Docker binds host ports at create).
func (s *Service) patchPublish(ctx context.Context, cur domain.Container, p domain.Patch, u *domain.Update) error {
	field := "replicas" // what the request changed, to blame
	if p.Publish != nil {
		published, err := domain.ResolvePublish(cur.Spec, *p.Publish, s.publish.Addr)
		if err != nil {
			return err
		}
		if err := s.publishAllowed(domain.ActorFrom(ctx), published, cur.Published); err != nil {
			return err
		}
		if !samePublished(cur.Published, published) {
			u.Published, u.Reconfigure = published, true
			u.Details["publish"] = map[string][]string{"from": domain.PublishedStrings(cur.Published), "to": domain.PublishedStrings(published)}
		}
		if u.Replicas == cur.Replicas {
			field = "publish"
		}
	}
	return domain.PublishFits(field, u.Replicas, u.Published)
}

// samePublished reports whether a and b hold the same bindings, in any order.
func samePublished(a, b []domain.PublishedPort) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	domain.SortPublished(a)
	domain.SortPublished(b)
	return slices.Equal(a, b)
}

// openSecrets returns a container's sealed values, opened.
func (s *Service) openSecrets(ctx context.Context, c domain.Container) (map[string]string, error) {
	out := map[string]string{}
	sealed, err := s.store.SealedSecrets(ctx, c.ID)
	if err != nil || len(sealed) == 0 {
		return out, err
	}
	plain, err := s.sealer.Open(sealed, []byte(c.ID))
	if err != nil {
		return nil, fmt.Errorf("open credentials of %q: %w", c.Ref(), err)
	}
	return out, json.Unmarshal(plain, &out)
}

// CreateProject records a new project; the reconciler creates its network.
func (s *Service) CreateProject(ctx context.Context, np domain.NewProject) (domain.Project, error) {
	if err := np.Validate(); err != nil {
		return domain.Project{}, err
	}
	p, err := s.store.CreateProject(ctx, np, domain.ActorFrom(ctx).String())
	return s.decorateProject(p), err
}

// GetProject returns one project.
func (s *Service) GetProject(ctx context.Context, name string) (domain.Project, error) {
	if err := knownProject(name); err != nil {
		return domain.Project{}, err
	}
	p, err := s.store.GetProject(ctx, name)
	return s.decorateProject(p), err
}

// ListProjects returns every project.
func (s *Service) ListProjects(ctx context.Context) ([]domain.Project, error) {
	ps, err := s.store.ListProjects(ctx)
	for i := range ps {
		ps[i] = s.decorateProject(ps[i])
	}
	return ps, err
}

// UpdateProject changes a project's quotas.
func (s *Service) UpdateProject(ctx context.Context, name string, pp domain.ProjectPatch) (domain.Project, error) {
	if err := knownProject(name); err != nil {
		return domain.Project{}, err
	}
	if err := pp.Validate(); err != nil {
		return domain.Project{}, err
	}
	p, err := s.store.UpdateProject(ctx, name, pp, domain.ActorFrom(ctx).String())
	return s.decorateProject(p), err
}

// DeleteProject deletes an empty project; the reconciler removes its
// network.
func (s *Service) DeleteProject(ctx context.Context, name string) error {
	if err := knownProject(name); err != nil {
		return err
	}
	return s.store.DeleteProject(ctx, name, domain.ActorFrom(ctx).String())
}

func (s *Service) decorateProject(p domain.Project) domain.Project {
	if p.Name != "" {
		p.Network = domain.ProjectNetwork(s.zones.Network, p.Name)
	}
	return p
}

// ClaimMissingHosts records the host names of containers from before host
// names were recorded (an upgrade), so a new container cannot take one. A
// name two old containers share (aliases were not checked before) stays
// with the older; the other is logged.
func (s *Service) ClaimMissingHosts(ctx context.Context) error {
	lost, err := s.store.ClaimMissingHosts(ctx, func(c domain.Container) []string {
		var aliases []string
		if c.Spec.Routing != nil {
			aliases = c.Spec.Routing.Aliases
		}
		return domain.HostNames(s.zones.Host, c.Project, c.Name, aliases)
	})
	for _, h := range lost {
		s.logger.Warn("host name held by two containers from before host names were checked; the older keeps it", "host", h)
	}
	return err
}

// Members lists a project's members.
func (s *Service) Members(ctx context.Context, project string) ([]domain.Member, error) {
	if _, err := s.GetProject(ctx, project); err != nil {
		return nil, err
	}
	return s.store.Members(ctx, project)
}

// SetMember gives a user or API key a role in a project. A project's admin
// may give any role there, admin included: it reaches that project only.
func (s *Service) SetMember(ctx context.Context, project string, m domain.MemberRequest) (domain.Member, error) {
	if err := knownProject(project); err != nil {
		return domain.Member{}, err
	}
	if m.Kind != "user" && m.Kind != "apikey" {
		return domain.Member{}, domain.Invalid("kind", "must be user or apikey (got %q)", m.Kind)
	}
	if m.Name == "" {
		return domain.Member{}, domain.Invalid("name", "is required")
	}
	role := domain.Role(m.Role)
	if !role.Valid() {
		return domain.Member{}, domain.Invalid("role", "must be one of admin, operator, viewer (got %q)", m.Role)
	}
	return s.store.SetMember(ctx, project, m, role, domain.ActorFrom(ctx).String())
}

// RemoveMember takes a user's or API key's role in a project away.
func (s *Service) RemoveMember(ctx context.Context, project, kind, name string) error {
	if err := knownProject(project); err != nil {
		return err
	}
	if kind != "user" && kind != "apikey" {
		return fmt.Errorf("member kind %q: %w", kind, domain.ErrNotFound)
	}
	return s.store.RemoveMember(ctx, project, kind, name, domain.ActorFrom(ctx).String())
}

// knownProject refuses a project name no project can have as not found: a
// malformed name in a path is a project that does not exist.
func knownProject(name string) error {
	if domain.ValidateProjectName("project", name) != nil {
		return fmt.Errorf("project %q: %w", name, domain.ErrNotFound)
	}
	return nil
}
