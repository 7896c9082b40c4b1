package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/traefik/genconf/dynamic"

	"github.com/moorhq/moor/internal/domain"
)

// assembler keeps the configuration as rendered fragments, one per router,
// service and middleware, so a change of one container re-renders only its
// own fragments; the body is the fragments joined in key order. Its output
// is byte for byte Render(Build(containers)) (TestAssemblerMatchesBuild).
// Not safe for concurrent use.
type assembler struct {
	opts     Options
	byName   map[string]*domain.Container
	nameOf   map[string]string   // id -> name
	names    []string            // sorted; nil when the set changed
	owned    map[string]*owned   // name -> the fragment keys it rendered
	hostsOf  map[string][]string // name -> host names routed to it
	dirty    map[string]bool     // names to re-render
	claims   bool                // alias claims must be recomputed
	sections [5]section          // http routers, services, middlewares; tcp routers, services
	lastSize int
	buf      bytes.Buffer
	enc      *json.Encoder

	// owners maps every routed host name to its container's name; it is
	// replaced, never changed, so readers may hold it. status holds each
	// container's status for the status pages, safe for concurrent use.
	owners map[string]string
	status sync.Map // name -> domain.Status
	// backends holds where each container's HTTP port is served, for
	// moor's embedded router; changed in place, published as a copy.
	backends map[string]Backend
}

// Backend is where a container's HTTP traffic goes: the URLs of its ready
// replicas. NeedsTraefik is set when its routing has options the embedded
// router does not apply (basic auth, an IP allow list): it must not route
// around them.
type Backend struct {
	URLs         []string
	NeedsTraefik bool
}

const (
	secRouters = iota
	secServices
	secMiddlewares
	secTCPRouters
	secTCPServices
)

type owned struct {
	keys [5][]string
}

// section is one map of the configuration (e.g. http.routers): fragments
// kept in key order, so the body is written without sorting or lookups
// unless the key set changed.
type section struct {
	idx    map[string]int // key -> position in keys and vals
	keys   []string
	vals   [][]byte
	sorted bool
}

func newSection() section { return section{idx: map[string]int{}, sorted: true} }

func (s *section) len() int { return len(s.keys) }

func (s *section) set(k string, b []byte) {
	if i, ok := s.idx[k]; ok {
		s.vals[i] = b
		return
	}
	s.idx[k] = len(s.keys)
	s.keys = append(s.keys, k)
	s.vals = append(s.vals, b)
	s.sorted = false
}

func (s *section) del(k string) {
	i, ok := s.idx[k]
	if !ok {
		return
	}
	last := len(s.keys) - 1
	s.keys[i], s.vals[i] = s.keys[last], s.vals[last]
	s.idx[s.keys[i]] = i
	s.keys, s.vals = s.keys[:last], s.vals[:last]
	delete(s.idx, k)
	s.sorted = false
}

func (s *section) write(b *bytes.Buffer) {
	if !s.sorted {
		order := make([]int, len(s.keys))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(x, y int) int { return strings.Compare(s.keys[x], s.keys[y]) })
		keys, vals := make([]string, len(order)), make([][]byte, len(order))
		for j, i := range order {
			keys[j], vals[j] = s.keys[i], s.vals[i]
			s.idx[keys[j]] = j
		}
		s.keys, s.vals, s.sorted = keys, vals, true
	}
	for i, v := range s.vals {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(v)
	}
}

func newAssembler(o Options) *assembler {
	a := &assembler{opts: o}
	a.enc = json.NewEncoder(&a.buf)
	a.enc.SetEscapeHTML(false)
	a.reset()
	return a
}

// reset forgets every container and renders moor's own objects.
func (a *assembler) reset() {
	a.byName, a.nameOf, a.owned, a.names = map[string]*domain.Container{}, map[string]string{}, map[string]*owned{}, nil
	a.hostsOf, a.dirty, a.claims = map[string][]string{}, map[string]bool{}, true
	a.backends = map[string]Backend{}
	for i := range a.sections {
		a.sections[i] = newSection()
	}
	a.status.Range(func(k, _ any) bool { a.status.Delete(k); return true })
	// moor's own objects: what Build puts in for zero containers.
	cfg, _ := Build(nil, a.opts)
	a.addFragments(cfg)
}

// replaceAll makes cs the whole state (their names become route names:
// routeNames).
func (a *assembler) replaceAll(cs []domain.Container) {
	cs = routeNames(cs)
	a.reset()
	for i := range cs {
		a.put(cs[i])
	}
}

// update replaces the containers with the given ids by cs (the ones of
// them that still exist).
func (a *assembler) update(ids []string, cs []domain.Container) {
	cs = routeNames(cs)
	present := make(map[string]bool, len(cs))
	for _, c := range cs {
		present[c.ID] = true
	}
	for _, id := range ids {
		if name, ok := a.nameOf[id]; ok && !present[id] {
			a.remove(name)
		}
	}
	for i := range cs {
		if old, ok := a.nameOf[cs[i].ID]; ok && old != cs[i].Name {
			a.remove(old)
		}
		a.put(cs[i])
	}
}

func hasAliases(c *domain.Container) bool {
	return c != nil && c.Spec.Routing != nil && len(c.Spec.Routing.Aliases) > 0
}

func (a *assembler) put(c domain.Container) {
	old, ok := a.byName[c.Name]
	if !ok {
		a.names = nil
		a.claims = true
	} else if hasAliases(old) || hasAliases(&c) {
		a.claims = true
	}
	a.byName[c.Name] = &c
	if c.ID != "" {
		a.nameOf[c.ID] = c.Name
	}
	a.dirty[c.Name] = true
}

func (a *assembler) remove(name string) {
	if c, ok := a.byName[name]; ok {
		delete(a.nameOf, c.ID)
	}
	delete(a.byName, name)
	delete(a.hostsOf, name)
	delete(a.backends, name)
	delete(a.dirty, name)
	a.status.Delete(name)
	a.dropFragments(name)
	a.names = nil
	a.claims = true
}

func (a *assembler) dropFragments(name string) {
	if o, ok := a.owned[name]; ok {
		for s, keys := range o.keys {
			for _, k := range keys {
				a.sections[s].del(k)
			}
		}
		delete(a.owned, name)
	}
}

// render returns the body. It fails, as Build does, on a container whose
// name, aliases or path may not reach a rule.
func (a *assembler) render() ([]byte, error) {
	if a.names == nil {
		a.names = make([]string, 0, len(a.byName))
		for n := range a.byName {
			a.names = append(a.names, n)
		}
		slices.Sort(a.names)
	}
	for n := range a.dirty {
		if err := domain.ValidateName(n); err != nil {
			return nil, fmt.Errorf("container %q: %w", n, err)
		}
	}
	if a.claims {
		// As hostsOf: every own name first, then aliases in name order.
		owners := make(map[string]string, len(a.names)+len(a.names)/8)
		for _, n := range a.names {
			owners[a.opts.Host(n)] = n
		}
		for _, n := range a.names {
			c := a.byName[n]
			hosts := []string{a.opts.Host(n)}
			if c.Spec.Routing != nil {
				for _, al := range c.Spec.Routing.Aliases {
					if _, taken := owners[al]; !taken {
						owners[al] = n
						hosts = append(hosts, al)
					}
				}
			}
			if !slices.Equal(hosts, a.hostsOf[n]) {
				a.hostsOf[n] = hosts
				a.dirty[n] = true
			}
		}
		a.owners = owners
		a.claims = false
	}
	for n := range a.dirty {
		c := a.byName[n]
		if err := a.renderContainer(c, a.hostsOf[n]); err != nil {
			return nil, err
		}
		a.status.Store(n, pageStatus(c))
		delete(a.dirty, n)
	}

	b := bytes.NewBuffer(make([]byte, 0, a.lastSize+4096))
	b.WriteString(`{"http":{"routers":{`)
	a.sections[secRouters].write(b)
	b.WriteString(`},"services":{`)
	a.sections[secServices].write(b)
	b.WriteString(`},"middlewares":{`)
	a.sections[secMiddlewares].write(b)
	b.WriteString(`}}`)
	if a.sections[secTCPRouters].len() > 0 {
		b.WriteString(`,"tcp":{"routers":{`)
		a.sections[secTCPRouters].write(b)
		b.WriteString(`},"services":{`)
		a.sections[secTCPServices].write(b)
		b.WriteString(`}}`)
	}
	b.WriteString("}\n")
	a.lastSize = b.Len()
	return b.Bytes(), nil
}

// pageStatus is the status a status page tells: a running container asked
// to stop is stopping (its replicas drain, then stop).
func pageStatus(c *domain.Container) domain.Status {
	if c.Status == domain.StatusRunning && c.DesiredState == domain.DesiredStopped {
		return domain.StatusStopping
	}
	return c.Status
}

// lookup returns the container a host name is routed to, and its status.
// Safe for concurrent use with render through the owners map passed in.
func lookup(owners map[string]string, status *sync.Map, host string) (string, domain.Status, bool) {
	name, ok := owners[host]
	if !ok {
		return "", "", false
	}
	st, _ := status.Load(name)
	s, _ := st.(domain.Status)
	return name, s, true
}

// renderContainer renders c's fragments for hosts, validating as Build.
func (a *assembler) renderContainer(c *domain.Container, hosts []string) error {
	r := c.Spec.Routing
	if r == nil {
		r = &domain.Routing{}
	}
	for j, al := range r.Aliases {
		if err := domain.ValidateHost(fmt.Sprintf("container %s: aliases[%d]", c.Name, j), al); err != nil {
			return err
		}
	}
	if err := domain.ValidatePathPrefix("container "+c.Name+": path", r.Path); err != nil {
		return err
	}
	h := &dynamic.HTTPConfiguration{Routers: map[string]*dynamic.Router{}, Services: map[string]*dynamic.Service{},
		Middlewares: map[string]*dynamic.Middleware{}}
	t := &dynamic.TCPConfiguration{Routers: map[string]*dynamic.TCPRouter{}, Services: map[string]*dynamic.TCPService{}}
	if p, ok := c.Spec.HTTPPort(); ok {
		buildHTTP(h, c, r, p, hosts, a.opts)
	}
	for _, tr := range r.TCP {
		if err := buildTCP(t, c, tr, hosts); err != nil {
			return err
		}
	}
	b := Backend{NeedsTraefik: len(r.BasicAuth) > 0 || len(r.IPAllowList) > 0}
	if s := h.Services[c.Name]; s != nil && s.LoadBalancer != nil {
		for _, srv := range s.LoadBalancer.Servers {
			b.URLs = append(b.URLs, srv.URL)
		}
	}
	a.backends[c.Name] = b
	o := &owned{}
	o.keys = a.addFragments(&dynamic.Configuration{HTTP: h, TCP: t})
	if old, ok := a.owned[c.Name]; ok {
		// Drop the keys it no longer has; the others were overwritten in
		// place, which keeps the sections sorted.
		for sec, keys := range old.keys {
			for _, k := range keys {
				if !slices.Contains(o.keys[sec], k) {
					a.sections[sec].del(k)
				}
			}
		}
	}
	a.owned[c.Name] = o
	return nil
}

// addFragments renders every object of cfg into its section and returns
// the keys per section.
func (a *assembler) addFragments(cfg *dynamic.Configuration) [5][]string {
	var keys [5][]string
	add := func(s int, k string, v any) {
		// Keys are labels with '_' suffixes (Build validated them): no
		// character of them needs escaping in JSON.
		a.buf.Reset()
		a.buf.WriteByte('"')
		a.buf.WriteString(k)
		a.buf.WriteString(`":`)
		a.enc.Encode(v)
		frag := bytes.Clone(bytes.TrimRight(a.buf.Bytes(), "\n"))
		a.sections[s].set(k, frag)
		keys[s] = append(keys[s], k)
	}
	if h := cfg.HTTP; h != nil {
		for k, v := range h.Routers {
			add(secRouters, k, v)
		}
		for k, v := range h.Services {
			add(secServices, k, v)
		}
		for k, v := range h.Middlewares {
			add(secMiddlewares, k, v)
		}
	}
	if t := cfg.TCP; t != nil {
		for k, v := range t.Routers {
			add(secTCPRouters, k, v)
		}
		for k, v := range t.Services {
			add(secTCPServices, k, v)
		}
	}
	return keys
}
