package client

import (
	"context"
	"io"
	"net/url"
	"strconv"

	"github.com/moorhq/moor/internal/domain"
)

// Whoami is the caller as moor sees it (GET /api/v1/session): for a key,
// kind "apikey", its name and role.
func (c *Client) Whoami(ctx context.Context) (domain.Actor, error) {
	var out struct {
		User domain.Actor `json:"user"`
	}
	err := c.do(ctx, "GET", "/api/v1/session", nil, nil, &out)
	return out.User, err
}

// Health is GET /healthz: moor answers, and its version.
func (c *Client) Health(ctx context.Context) (version string, err error) {
	var out struct {
		Version string `json:"version"`
	}
	err = c.do(ctx, "GET", "/healthz", nil, nil, &out)
	return out.Version, err
}

// Types lists the catalog, of one category when category is not "".
func (c *Client) Types(ctx context.Context, category string) ([]domain.Type, error) {
	var q url.Values
	if category != "" {
		q = url.Values{"category": {category}}
	}
	var out struct {
		Types []domain.Type `json:"types"`
	}
	err := c.do(ctx, "GET", "/api/v1/types", q, nil, &out)
	return out.Types, err
}

// Type is one container type.
func (c *Client) Type(ctx context.Context, id string) (domain.Type, error) {
	var t domain.Type
	err := c.do(ctx, "GET", "/api/v1/types/"+seg(id), nil, nil, &t)
	return t, err
}

// Containers lists every container.
func (c *Client) Containers(ctx context.Context) ([]domain.Container, error) {
	var out struct {
		Containers []domain.Container `json:"containers"`
	}
	err := c.do(ctx, "GET", c.containers(), nil, nil, &out)
	return out.Containers, err
}

// Container is one container by name.
func (c *Client) Container(ctx context.Context, name string) (domain.Container, error) {
	var out domain.Container
	err := c.do(ctx, "GET", c.containers()+"/"+seg(name), nil, nil, &out)
	return out, err
}

// Create asks for a container. req.LeaveEmpty names variables sent as
// null: left empty, no default, nothing generated.
func (c *Client) Create(ctx context.Context, req domain.CreateRequest) (domain.Container, error) {
	body := struct {
		domain.CreateRequest
		Env map[string]*string `json:"env,omitempty"`
	}{req, nullable(req.Env, req.LeaveEmpty)}
	var out domain.Container
	err := c.do(ctx, "POST", c.containers(), nil, body, &out)
	return out, err
}

// Start, Stop and Restart change a container's desired state; moor carries
// the change out after answering.
func (c *Client) Start(ctx context.Context, name string) (domain.Container, error) {
	return c.action(ctx, name, "start")
}

// Stop: see Start.
func (c *Client) Stop(ctx context.Context, name string) (domain.Container, error) {
	return c.action(ctx, name, "stop")
}

// Restart: see Start.
func (c *Client) Restart(ctx context.Context, name string) (domain.Container, error) {
	return c.action(ctx, name, "restart")
}

// Redeploy replaces every replica, one at a time; with pull the image is
// pulled again first.
func (c *Client) Redeploy(ctx context.Context, name string, pull bool) (domain.Container, error) {
	var out domain.Container
	err := c.do(ctx, "POST", c.containers()+"/"+seg(name)+"/redeploy", nil, domain.RedeployRequest{Pull: pull}, &out)
	return out, err
}

func (c *Client) action(ctx context.Context, name, action string) (domain.Container, error) {
	var out domain.Container
	err := c.do(ctx, "POST", c.containers()+"/"+seg(name)+"/"+action, nil, nil, &out)
	return out, err
}

// Scale sets the number of replicas.
func (c *Client) Scale(ctx context.Context, name string, replicas int) (domain.Container, error) {
	var out domain.Container
	err := c.do(ctx, "POST", c.containers()+"/"+seg(name)+"/scale", nil, map[string]int{"replicas": replicas}, &out)
	return out, err
}

// Update changes a container's environment, image tag or replicas
// (PATCH); LeaveEmpty names go as null.
func (c *Client) Update(ctx context.Context, name string, p domain.Patch) (domain.Container, error) {
	body := struct {
		domain.Patch
		Env map[string]*string `json:"env,omitempty"`
	}{p, nullable(p.Env, p.LeaveEmpty)}
	var out domain.Container
	err := c.do(ctx, "PATCH", c.containers()+"/"+seg(name), nil, body, &out)
	return out, err
}

// Remove asks for a container's removal, its volumes too unless
// keepVolumes.
func (c *Client) Remove(ctx context.Context, name string, keepVolumes bool) (domain.Container, error) {
	var q url.Values
	if keepVolumes {
		q = url.Values{"keep_volumes": {"true"}}
	}
	var out domain.Container
	err := c.do(ctx, "DELETE", c.containers()+"/"+seg(name), q, nil, &out)
	return out, err
}

// LogOptions choose the log lines of a replica.
type LogOptions struct {
	Replica int
	Tail    int  // 0: moor's default (200)
	Follow  bool // keep streaming until the replica stops or ctx ends
}

// Logs returns a replica's log as text; the caller closes it. With Follow
// it streams until the replica stops or ctx is done.
func (c *Client) Logs(ctx context.Context, name string, opts LogOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if opts.Tail > 0 {
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	if opts.Replica > 0 {
		q.Set("replica", strconv.Itoa(opts.Replica))
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	resp, err := c.request(ctx, "GET", c.containers()+"/"+seg(name)+"/logs", q, nil, opts.Follow)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// History is a container's deployment history (kept after removal); with
// all, of earlier containers of the same name too.
func (c *Client) History(ctx context.Context, name string, all bool) ([]domain.HistoryEntry, error) {
	var out struct {
		History []domain.HistoryEntry `json:"history"`
	}
	var q url.Values
	if all {
		q = url.Values{"all": {"true"}}
	}
	err := c.do(ctx, "GET", c.containers()+"/"+seg(name)+"/history", q, nil, &out)
	return out.History, err
}

// Credentials are a container's secret values.
func (c *Client) Credentials(ctx context.Context, name string) (map[string]string, error) {
	var out struct {
		Credentials map[string]string `json:"credentials"`
	}
	err := c.do(ctx, "GET", c.containers()+"/"+seg(name)+"/credentials", nil, nil, &out)
	return out.Credentials, err
}

// Events lists up to limit events after seq after, oldest first.
func (c *Client) Events(ctx context.Context, eq domain.EventQuery) ([]domain.Event, error) {
	q := url.Values{"after": {strconv.FormatInt(eq.After, 10)}}
	if eq.Limit > 0 {
		q.Set("limit", strconv.Itoa(eq.Limit))
	}
	if eq.Tail > 0 {
		q.Set("tail", strconv.Itoa(eq.Tail))
	}
	if eq.Container != "" {
		q.Set("container", eq.Container)
	}
	if eq.Kind != "" {
		q.Set("kind", eq.Kind)
	}
	var out struct {
		Events []domain.Event `json:"events"`
	}
	err := c.do(ctx, "GET", "/api/v1/events", q, nil, &out)
	return out.Events, err
}

// NewKey is an API key just created: Key is shown this once.
type NewKey struct {
	ID      string      `json:"id"`
	Name    string      `json:"name"`
	Role    domain.Role `json:"role"`
	Project string      `json:"project,omitempty"`
	Key     string      `json:"key"`
}

// APIKeys lists every key (never the key itself).
func (c *Client) APIKeys(ctx context.Context) ([]domain.APIKey, error) {
	var out struct {
		Keys []domain.APIKey `json:"apikeys"`
	}
	err := c.do(ctx, "GET", "/api/v1/apikeys", nil, nil, &out)
	return out.Keys, err
}

// CreateAPIKey makes a key; with a project, limited to it (holding role
// there and nothing elsewhere).
func (c *Client) CreateAPIKey(ctx context.Context, name string, role domain.Role, project string) (NewKey, error) {
	var out NewKey
	body := map[string]string{"name": name, "role": string(role)}
	if project != "" {
		body["project"] = project
	}
	err := c.do(ctx, "POST", "/api/v1/apikeys", nil, body, &out)
	return out, err
}

// Members lists a project's members.
func (c *Client) Members(ctx context.Context, project string) ([]domain.Member, error) {
	var out struct {
		Members []domain.Member `json:"members"`
	}
	err := c.do(ctx, "GET", "/api/v1/projects/"+seg(project)+"/members", nil, nil, &out)
	return out.Members, err
}

// SetMember gives a user or API key a role in a project.
func (c *Client) SetMember(ctx context.Context, project string, m domain.MemberRequest) (domain.Member, error) {
	var out domain.Member
	err := c.do(ctx, "POST", "/api/v1/projects/"+seg(project)+"/members", nil, m, &out)
	return out, err
}

// RemoveMember takes a member's role in a project away.
func (c *Client) RemoveMember(ctx context.Context, project, kind, name string) error {
	return c.do(ctx, "DELETE", "/api/v1/projects/"+seg(project)+"/members/"+seg(kind)+"/"+seg(name), nil, nil, nil)
}

// RevokeAPIKey revokes a key at once.
func (c *Client) RevokeAPIKey(ctx context.Context, name string) (domain.APIKey, error) {
	var out domain.APIKey
	err := c.do(ctx, "DELETE", "/api/v1/apikeys/"+seg(name), nil, nil, &out)
	return out, err
}

// Users lists the people who sign in.
func (c *Client) Users(ctx context.Context) ([]domain.User, error) {
	var out struct {
		Users []domain.User `json:"users"`
	}
	err := c.do(ctx, "GET", "/api/v1/users", nil, nil, &out)
	return out.Users, err
}

// AddUser adds a user.
func (c *Client) AddUser(ctx context.Context, username, password string, role domain.Role) (domain.User, error) {
	var out domain.User
	err := c.do(ctx, "POST", "/api/v1/users", nil, map[string]string{"username": username, "password": password, "role": string(role)}, &out)
	return out, err
}

// RemoveUser removes a user and ends their sessions.
func (c *Client) RemoveUser(ctx context.Context, username string) error {
	return c.do(ctx, "DELETE", "/api/v1/users/"+seg(username), nil, nil, nil)
}

// SetPassword sets a user's password; current is needed only when a user
// changes their own (an API key never is one).
func (c *Client) SetPassword(ctx context.Context, username, password, current string) error {
	body := map[string]string{"password": password}
	if current != "" {
		body["current_password"] = current
	}
	return c.do(ctx, "PUT", "/api/v1/users/"+seg(username)+"/password", nil, body, nil)
}

// nullable is an env object as the API reads it: values, and null for the
// variables to leave empty.
func nullable(env map[string]string, empty []string) map[string]*string {
	out := make(map[string]*string, len(env)+len(empty))
	for k, v := range env {
		out[k] = &v
	}
	for _, k := range empty {
		out[k] = nil
	}
	return out
}

// containers is the path of the container routes: those of c's project,
// or of the default project.
func (c *Client) containers() string { return c.inProject("containers") }

// stacks is the path of the stack routes, as containers.
func (c *Client) stacks() string { return c.inProject("stacks") }

// inProject is the path of a kind of thing of c's project: under
// /api/v1/projects/PROJECT, or /api/v1 for the default project.
func (c *Client) inProject(kind string) string {
	if c.ContainerProject() == domain.DefaultProject {
		return "/api/v1/" + kind
	}
	return "/api/v1/projects/" + seg(c.project) + "/" + kind
}

// InProject returns a client like c whose container and stack calls reach
// project ("" or "default": the default project). c is unchanged.
func (c *Client) InProject(project string) *Client {
	cp := *c
	cp.project = project
	return &cp
}

// ContainerProject is the project the container calls reach.
func (c *Client) ContainerProject() string {
	if c.project == "" {
		return domain.DefaultProject
	}
	return c.project
}

// Projects lists every project the caller may see.
func (c *Client) Projects(ctx context.Context) ([]domain.Project, error) {
	var out struct {
		Projects []domain.Project `json:"projects"`
	}
	err := c.do(ctx, "GET", "/api/v1/projects", nil, nil, &out)
	return out.Projects, err
}

// Project is one project by name.
func (c *Client) Project(ctx context.Context, name string) (domain.Project, error) {
	var out domain.Project
	err := c.do(ctx, "GET", "/api/v1/projects/"+seg(name), nil, nil, &out)
	return out, err
}

// CreateProject makes a project (its network comes with it).
func (c *Client) CreateProject(ctx context.Context, np domain.NewProject) (domain.Project, error) {
	var out domain.Project
	err := c.do(ctx, "POST", "/api/v1/projects", nil, np, &out)
	return out, err
}

// DeleteProject deletes an empty project; moor refuses one that still has
// containers (409, naming them) and the default project.
func (c *Client) DeleteProject(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/api/v1/projects/"+seg(name), nil, nil, nil)
}
