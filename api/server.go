// Package api serves moor's REST API: authentication, authorisation, one
// route table, JSON errors.
package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/moorhq/moor/internal/auth"
	"github.com/moorhq/moor/internal/domain"
)

// Lifecycle is what the container endpoints drive.
type Lifecycle interface {
	Create(ctx context.Context, req domain.CreateRequest) (domain.Container, error)
	Get(ctx context.Context, cr domain.ContainerRef) (domain.Container, error)
	List(ctx context.Context, project string) ([]domain.Container, error)
	Start(ctx context.Context, cr domain.ContainerRef) (domain.Container, error)
	Stop(ctx context.Context, cr domain.ContainerRef) (domain.Container, error)
	Restart(ctx context.Context, cr domain.ContainerRef) (domain.Container, error)
	Redeploy(ctx context.Context, cr domain.ContainerRef, pull bool) (domain.Container, error)
	Remove(ctx context.Context, cr domain.ContainerRef, keepVolumes bool) (domain.Container, error)
	Scale(ctx context.Context, cr domain.ContainerRef, replicas int) (domain.Container, error)
	Update(ctx context.Context, cr domain.ContainerRef, p domain.Patch) (domain.Container, error)
	History(ctx context.Context, cr domain.ContainerRef, all bool) ([]domain.HistoryEntry, error)
	Credentials(ctx context.Context, cr domain.ContainerRef) (map[string]string, error)
	Logs(ctx context.Context, cr domain.ContainerRef, replica int, opts domain.LogOptions, w io.Writer) error
	Projects
	Stacks
}

// Catalog lists container types.
type Catalog interface {
	Get(id string) (domain.Type, error)
	List() []domain.Type
}

// Keys authenticates and issues API keys.
type Keys interface {
	ActorByKeyHash(ctx context.Context, hash []byte) (domain.Actor, error)
	CreateProjectKey(ctx context.Context, name string, role domain.Role, project string, hash []byte) (string, error)
}

// Events reads the event stream.
type Events interface {
	QueryEvents(ctx context.Context, q domain.EventQuery) ([]domain.Event, error)
}

// Check is a readiness probe: nil when its part is usable.
type Check func(ctx context.Context) error

// Server is the HTTP API.
type Server struct {
	Lifecycle Lifecycle
	Catalog   Catalog
	Webhooks  Webhooks
	Backups   Backups // volume backups; nil: not configured (503)
	Events    Events
	Hub       *Hub // the websocket event stream

	Keys     Keys
	KeyAdmin KeyAdmin // listing and revoking keys
	Users    Users    // managing the people who sign in
	Setup    Setup    // the first admin (nil: off)
	FirstRun FirstRun // the one-time token that allows it
	Sessions Sessions // sign-in for the web UI; nil: API keys only
	// SessionTTL is how long a sign-in lasts (DefaultSessionTTL when 0).
	SessionTTL time.Duration

	Ready   map[string]Check // name -> probe, for /readyz
	Metrics http.Handler     // GET /metrics
	// Instrument, when set, wraps each route's handler (metrics).
	Instrument func(route, method string, h http.Handler) http.Handler
	// LastEvent is the highest event seq this process has heard of.
	LastEvent func() int64
	Logger    *slog.Logger
	Version   string
	// NotFoundPage answers a browser's GET of an address no route has
	// (outside /api/): the dashboard's own "not found" (nil: JSON 404).
	NotFoundPage http.Handler

	// Limits bound each caller (DefaultLimits where a field is 0).
	Limits Limits
	limits callerLimits

	// SignIn throttles sign-in (zero fields: the defaults).
	SignIn SignInLimits
	// CheckPassword checks a password against a stored hash (nil:
	// auth.CheckPassword, bcrypt); tests put a fast one here.
	CheckPassword func(hash, password string) bool

	signInOnce sync.Once
	signIn     *signInGuard
	clock      func() time.Time // tests; nil: time.Now
}

// route is one endpoint and the least role that may call it. Public routes
// have role "".
type route struct {
	method, path string
	role         domain.Role
	handler      func(*Server, http.ResponseWriter, *http.Request) error
}

// routes is the table served: baseRoutes with each container and stack
// route also under /api/v1/projects/{project}/ (see withProjects).
var routes = withProjects(baseRoutes)

var baseRoutes = []route{
	{"GET", "/healthz", "", (*Server).healthz},
	{"GET", "/readyz", "", (*Server).readyz},
	{"GET", "/metrics", domain.RoleViewer, (*Server).metrics},
	{"POST", "/api/v1/session", "", (*Server).login},
	{"GET", "/api/v1/setup", "", (*Server).setupNeeded},
	{"POST", "/api/v1/setup", "", (*Server).setup},
	{"GET", "/api/v1/session", domain.RoleViewer, (*Server).whoami},
	{"DELETE", "/api/v1/session", domain.RoleViewer, (*Server).logout},
	{"GET", "/api/v1/types", domain.RoleViewer, (*Server).listTypes},
	{"GET", "/api/v1/types/{id}", domain.RoleViewer, (*Server).getType},
	{"GET", "/api/v1/containers", domain.RoleViewer, (*Server).listContainers},
	{"POST", "/api/v1/containers", domain.RoleOperator, (*Server).createContainer},
	{"GET", "/api/v1/containers/{name}", domain.RoleViewer, (*Server).getContainer},
	{"DELETE", "/api/v1/containers/{name}", domain.RoleOperator, (*Server).removeContainer},
	{"PATCH", "/api/v1/containers/{name}", domain.RoleOperator, (*Server).updateContainer},
	{"POST", "/api/v1/containers/{name}/start", domain.RoleOperator, (*Server).startContainer},
	{"POST", "/api/v1/containers/{name}/stop", domain.RoleOperator, (*Server).stopContainer},
	{"POST", "/api/v1/containers/{name}/restart", domain.RoleOperator, (*Server).restartContainer},
	{"POST", "/api/v1/containers/{name}/scale", domain.RoleOperator, (*Server).scaleContainer},
	{"POST", "/api/v1/containers/{name}/redeploy", domain.RoleOperator, (*Server).redeployContainer},
	{"GET", "/api/v1/containers/{name}/logs", domain.RoleOperator, (*Server).containerLogs},
	{"GET", "/api/v1/containers/{name}/history", domain.RoleViewer, (*Server).containerHistory},
	{"GET", "/api/v1/containers/{name}/credentials", domain.RoleOperator, (*Server).containerCredentials},
	{"GET", "/api/v1/containers/{name}/backups", domain.RoleViewer, (*Server).listBackups},
	{"POST", "/api/v1/containers/{name}/backups", domain.RoleOperator, (*Server).createBackup},
	{"POST", "/api/v1/containers/{name}/backups/{id}/restore", domain.RoleOperator, (*Server).restoreBackup},
	{"GET", "/api/v1/stacks", domain.RoleViewer, (*Server).listStacks},
	{"POST", "/api/v1/stacks", domain.RoleOperator, (*Server).createStack},
	{"GET", "/api/v1/stacks/{name}", domain.RoleViewer, (*Server).getStack},
	{"PUT", "/api/v1/stacks/{name}", domain.RoleOperator, (*Server).updateStack},
	{"DELETE", "/api/v1/stacks/{name}", domain.RoleOperator, (*Server).deleteStack},
	{"GET", "/api/v1/projects", domain.RoleViewer, (*Server).listProjects},
	{"POST", "/api/v1/projects", domain.RoleAdmin, (*Server).createProject},
	{"GET", "/api/v1/projects/{project}", domain.RoleViewer, (*Server).getProject},
	{"PATCH", "/api/v1/projects/{project}", domain.RoleAdmin, (*Server).updateProject},
	{"DELETE", "/api/v1/projects/{project}", domain.RoleAdmin, (*Server).deleteProject},
	{"GET", "/api/v1/projects/{project}/members", domain.RoleAdmin, (*Server).listMembers},
	{"POST", "/api/v1/projects/{project}/members", domain.RoleAdmin, (*Server).setMember},
	{"DELETE", "/api/v1/projects/{project}/members/{kind}/{member}", domain.RoleAdmin, (*Server).removeMember},
	{"GET", "/api/v1/events", domain.RoleViewer, (*Server).listEvents},
	{"GET", "/api/v1/ws", domain.RoleViewer, (*Server).events},
	{"GET", "/api/v1/openapi.json", domain.RoleViewer, (*Server).openAPI},
	{"POST", "/api/v1/apikeys", domain.RoleAdmin, (*Server).createAPIKey},
	{"GET", "/api/v1/apikeys", domain.RoleAdmin, (*Server).listAPIKeys},
	{"DELETE", "/api/v1/apikeys/{name}", domain.RoleAdmin, (*Server).revokeAPIKey},
	{"GET", "/api/v1/users", domain.RoleAdmin, (*Server).listUsers},
	{"POST", "/api/v1/users", domain.RoleAdmin, (*Server).addUser},
	{"DELETE", "/api/v1/users/{username}", domain.RoleAdmin, (*Server).removeUser},
	{"PUT", "/api/v1/users/{username}/password", domain.RoleViewer, (*Server).setPassword},
	{"POST", "/api/v1/webhooks", domain.RoleAdmin, (*Server).createWebhook},
	{"GET", "/api/v1/webhooks", domain.RoleAdmin, (*Server).listWebhooks},
	{"GET", "/api/v1/webhooks/{name}", domain.RoleAdmin, (*Server).getWebhook},
	{"DELETE", "/api/v1/webhooks/{name}", domain.RoleAdmin, (*Server).deleteWebhook},
}

// Handler returns the router with every route behind authentication and
// authorisation.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if s.NotFoundPage != nil && req.Method == http.MethodGet && !strings.HasPrefix(req.URL.Path, "/api/") &&
			strings.Contains(req.Header.Get("Accept"), "text/html") {
			s.NotFoundPage.ServeHTTP(w, req)
			return
		}
		writeError(w, req, s.Logger, &requestError{http.StatusNotFound, "not_found", "no such endpoint"})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, req, s.Logger, &requestError{http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"})
	})
	for _, rt := range routes {
		h := s.wrap(rt)
		if s.Instrument != nil {
			h = s.Instrument(rt.path, rt.method, h)
		}
		r.Handle(rt.path, h).Methods(rt.method)
	}
	return r
}

func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.role != "" {
			actor, err := s.authenticate(r)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="moor"`)
				writeError(w, r, s.Logger, err)
				return
			}
			if err := authorize(actor, rt, r); err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
			if wait, ok := s.allowRequest(actor, time.Now()); !ok {
				writeError(w, r, s.Logger, tooMany(w, wait, "too many requests from this caller: "+
					strconv.FormatFloat(s.limitsOrDefault().Rate, 'f', -1, 64)+" per second; retry after the time in Retry-After"))
				return
			}
			r = r.WithContext(domain.WithActor(r.Context(), actor))
		}
		if err := rt.handler(s, w, r); err != nil {
			writeError(w, r, s.Logger, err)
		}
	})
}

func (s *Server) authenticate(r *http.Request) (domain.Actor, error) {
	// An Authorization header wins; without one, the dashboard's session
	// cookie, then a browser websocket's key subprotocol.
	h := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(h, "Bearer ")
	if h == "" {
		if a, found, err := s.sessionActor(r); found {
			if err == nil {
				err = sameOrigin(r)
			}
			return a, err
		}
		key, ok = wsKey(r)
	}
	if !ok || key == "" {
		return domain.Actor{}, &requestError{http.StatusUnauthorized, "unauthorized", "an API key is required: Authorization: Bearer <key> (a browser's websocket: subprotocol bearer.<key>)"}
	}
	if !auth.WellFormed(key) {
		return domain.Actor{}, &requestError{http.StatusUnauthorized, "unauthorized", "invalid API key"}
	}
	a, err := s.Keys.ActorByKeyHash(r.Context(), auth.HashKey(key))
	if errors.Is(err, domain.ErrUnauthorized) {
		return a, &requestError{http.StatusUnauthorized, "unauthorized", "invalid API key"}
	}
	return a, err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.Version})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	for name, check := range s.Ready {
		if err := check(ctx); err != nil {
			checks[name] = "unavailable"
			status = http.StatusServiceUnavailable
			s.Logger.Warn("readiness check failed", "check", name, "err", err)
		} else {
			checks[name] = "ok"
		}
	}
	out := map[string]any{"ready": status == http.StatusOK, "checks": checks}
	if s.LastEvent != nil {
		out["last_event_seq"] = s.LastEvent()
	}
	writeJSON(w, status, out)
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.Metrics == nil {
		return &requestError{http.StatusNotFound, "not_found", "metrics are off"}
	}
	s.Metrics.ServeHTTP(w, r)
	return nil
}

func (s *Server) listTypes(w http.ResponseWriter, r *http.Request) error {
	types := s.Catalog.List()
	if c := r.URL.Query().Get("category"); c != "" {
		var out []domain.Type
		for _, t := range types {
			for _, tc := range t.Categories {
				if strings.EqualFold(tc, c) {
					out = append(out, t)
					break
				}
			}
		}
		types = out
	}
	if types == nil {
		types = []domain.Type{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"types": types})
	return nil
}

func (s *Server) getType(w http.ResponseWriter, r *http.Request) error {
	t, err := s.Catalog.Get(mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.Lifecycle.List(r.Context(), projectOf(r))
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []domain.Container{}
	}
	for i := range cs {
		cs[i] = forRole(r, cs[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"containers": cs})
	return nil
}

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) error {
	// An env value of null means "leave empty", which a string map
	// cannot hold.
	var body struct {
		domain.CreateRequest
		Env map[string]*string `json:"env,omitempty"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	req := body.CreateRequest
	req.Project = projectOf(r)
	req.Env, req.LeaveEmpty = splitNull(body.Env)
	c, err := s.Lifecycle.Create(r.Context(), req)
	if err != nil {
		return err
	}
	w.Header().Set("Location", containerPath(c))
	writeJSON(w, http.StatusAccepted, c)
	return nil
}

func (s *Server) getContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Lifecycle.Get(r.Context(), containerRef(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, forRole(r, c))
	return nil
}

// forRole leaves the environment's values out for viewers: they see the
// names (env_names). Secret values are never in a container's JSON.
func forRole(r *http.Request, c domain.Container) domain.Container {
	if !domain.ActorFrom(r.Context()).RoleIn(c.Project).Allows(domain.RoleOperator) {
		c.Env = nil
	}
	return c
}

// accepted answers a change the reconciler will carry out.
func accepted(w http.ResponseWriter, c domain.Container, err error) error {
	if err != nil {
		return err
	}
	w.Header().Set("Location", containerPath(c))
	writeJSON(w, http.StatusAccepted, c)
	return nil
}

func (s *Server) updateContainer(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		domain.Patch
		Env map[string]*string `json:"env,omitempty"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	p := body.Patch
	p.Env, p.LeaveEmpty = splitNull(body.Env)
	c, err := s.Lifecycle.Update(r.Context(), containerRef(r), p)
	return accepted(w, c, err)
}

// splitNull separates the values of an env object from its nulls ("leave
// empty"), which a string map cannot hold.
func splitNull(in map[string]*string) (env map[string]string, null []string) {
	for k, v := range in {
		if v == nil {
			null = append(null, k)
			continue
		}
		if env == nil {
			env = map[string]string{}
		}
		env[k] = *v
	}
	slices.Sort(null)
	return env, null
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) error {
	keep, err := boolParam(r, "keep_volumes")
	if err != nil {
		return err
	}
	c, err := s.Lifecycle.Remove(r.Context(), containerRef(r), keep)
	return accepted(w, c, err)
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Lifecycle.Start(r.Context(), containerRef(r))
	return accepted(w, c, err)
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Lifecycle.Stop(r.Context(), containerRef(r))
	return accepted(w, c, err)
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Lifecycle.Restart(r.Context(), containerRef(r))
	return accepted(w, c, err)
}

func (s *Server) redeployContainer(w http.ResponseWriter, r *http.Request) error {
	var req domain.RedeployRequest
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	c, err := s.Lifecycle.Redeploy(r.Context(), containerRef(r), req.Pull)
	return accepted(w, c, err)
}

func (s *Server) scaleContainer(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Replicas *int `json:"replicas"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Replicas == nil {
		return domain.Invalid("replicas", "is required")
	}
	c, err := s.Lifecycle.Scale(r.Context(), containerRef(r), *req.Replicas)
	return accepted(w, c, err)
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) error {
	tail, err := intParam(r, "tail", 200, 1, 10000)
	if err != nil {
		return err
	}
	replica, err := intParam(r, "replica", 0, 0, domain.MaxReplicas)
	if err != nil {
		return err
	}
	follow, err := boolParam(r, "follow")
	if err != nil {
		return err
	}
	name := containerRef(r)
	if follow {
		return s.followLogs(w, r, name, replica, tail)
	}
	// Buffered so that an error can still be a JSON error, and capped: a
	// few long lines must not take moor's memory.
	buf := &cappedBuffer{max: maxLogBytes}
	if err := s.Lifecycle.Logs(r.Context(), name, replica, domain.LogOptions{Tail: tail}, buf); err != nil && !errors.Is(err, errLogCap) {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, err = w.Write(buf.b.Bytes())
	return err
}

// followLogs streams a replica's log as it grows, until the replica stops
// or the client leaves. It counts as one of the caller's sockets (a
// websocket's quota), and each write has its own deadline, so a client
// that stops reading is let go.
func (s *Server) followLogs(w http.ResponseWriter, r *http.Request, name domain.ContainerRef, replica, tail int) error {
	if _, err := s.Lifecycle.Get(r.Context(), name); err != nil {
		return err // a 404 before the quota's 429
	}
	closeSocket, ok := s.openSocket(domain.ActorFrom(r.Context()))
	if !ok {
		return tooMany(w, 10*time.Second, "too many websockets and log streams open with this key: "+
			strconv.Itoa(s.limitsOrDefault().Websockets)+" at most; close one first")
	}
	defer closeSocket()
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	// The answer starts with the first line, or after a moment without
	// one, so an error found before (no such container) is still JSON.
	t := time.AfterFunc(500*time.Millisecond, func() { fw.Write(nil) })
	defer t.Stop()
	err := s.Lifecycle.Logs(r.Context(), name, replica, domain.LogOptions{Tail: tail, Follow: true}, fw)
	t.Stop()
	if !fw.begin() {
		return err // nothing sent yet: err (or nil) answers normally
	}
	if err != nil && r.Context().Err() == nil {
		s.Logger.Warn("log stream ended", "container", name.String(), "err", err)
	}
	return nil
}

// logWriteTimeout bounds each write of a followed log.
const logWriteTimeout = 30 * time.Second

// flushWriter sends each write at once; the headers go with the first
// (or with an empty write, to start the answer).
type flushWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	ended   bool
}

// begin reports whether the answer has started, and stops it starting
// later (after the handler returned).
func (f *flushWriter) begin() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = true
	return f.started
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return 0, http.ErrHandlerTimeout
	}
	if !f.started {
		f.started = true
		h := f.w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		f.w.WriteHeader(http.StatusOK)
	}
	f.rc.SetWriteDeadline(time.Now().Add(logWriteTimeout))
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// maxLogBytes caps one logs response.
const maxLogBytes = 8 << 20

var errLogCap = errors.New("log output capped")

// cappedBuffer keeps the first max bytes written to it.
type cappedBuffer struct {
	b   bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); len(p) > room {
		c.b.Write(p[:room])
		return room, errLogCap
	}
	return c.b.Write(p)
}

func (s *Server) containerHistory(w http.ResponseWriter, r *http.Request) error {
	all, err := boolParam(r, "all")
	if err != nil {
		return err
	}
	h, err := s.Lifecycle.History(r.Context(), containerRef(r), all)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"history": h})
	return nil
}

func (s *Server) containerCredentials(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Lifecycle.Credentials(r.Context(), containerRef(r))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"credentials": c})
	return nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	after, err := intParam(r, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	tail, err := intParam(r, "tail", 0, 1, 1000)
	if err != nil {
		return err
	}
	q := domain.EventQuery{After: int64(after), Limit: limit, Tail: tail, Project: r.URL.Query().Get("project"),
		Container: r.URL.Query().Get("container"), Kind: r.URL.Query().Get("kind")}
	if err := readableEvents(domain.ActorFrom(r.Context()), &q); err != nil {
		return err
	}
	if len(q.Kind) > 100 {
		return domain.Invalid("kind", "is at most 100 characters")
	}
	evs, err := s.Events.QueryEvents(r.Context(), q)
	if err != nil {
		return err
	}
	// Sequence numbers have no gaps but for pruning: a first event past
	// after+1 means the client missed some for good, and must be told.
	if after > 0 && tail == 0 && !q.Filtered() && len(evs) > 0 && evs[0].Seq > int64(after)+1 {
		return &requestError{status: http.StatusGone, code: "gone",
			msg: fmt.Sprintf("events %d-%d were pruned; reload the state and list again from after=0", after+1, evs[0].Seq-1)}
	}
	if evs == nil {
		evs = []domain.Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
	return nil
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
		Role string `json:"role"`
		// Project limits the key to one project, where it holds Role.
		Project string `json:"project,omitempty"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := auth.ValidateKeyName(req.Name); err != nil {
		return err
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return err
	}
	if req.Project != "" {
		if err := domain.ValidateProjectName("project", req.Project); err != nil {
			return err
		}
	}
	key, hash, err := auth.NewKey()
	if err != nil {
		return err
	}
	id, err := s.Keys.CreateProjectKey(r.Context(), req.Name, role, req.Project, hash)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	out := map[string]string{"id": id, "name": req.Name, "role": string(role), "key": key}
	if req.Project != "" {
		out["project"] = req.Project
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, domain.Invalid(name, "must be a whole number from %d to %d", lo, hi)
	}
	return n, nil
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, domain.Invalid(name, "must be true or false")
	}
	return b, nil
}

// RouteInfo describes an endpoint and the least role that may call it ("" for
// public endpoints).
type RouteInfo struct {
	Method, Path string
	Role         domain.Role
}

// Routes lists every endpoint, for documentation and the authorisation test.
func Routes() []RouteInfo {
	out := make([]RouteInfo, len(routes))
	for i, rt := range routes {
		out[i] = RouteInfo{rt.method, rt.path, rt.role}
	}
	return out
}
