package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/moorhq/moor/internal/domain"
)

// Projects manages the groups containers belong to.
type Projects interface {
	CreateProject(ctx context.Context, np domain.NewProject) (domain.Project, error)
	GetProject(ctx context.Context, name string) (domain.Project, error)
	ListProjects(ctx context.Context) ([]domain.Project, error)
	DeleteProject(ctx context.Context, name string) error
	UpdateProject(ctx context.Context, name string, pp domain.ProjectPatch) (domain.Project, error)
	Members(ctx context.Context, project string) ([]domain.Member, error)
	SetMember(ctx context.Context, project string, m domain.MemberRequest) (domain.Member, error)
	RemoveMember(ctx context.Context, project, kind, name string) error
}

// containersPrefix starts every container route; projectPrefix is the same
// routes within a project.
const (
	containersPrefix = "/api/v1/containers"
	projectPrefix    = "/api/v1/projects/{project}"
)

// projectScoped are the routes mirrored under a project.
var projectScoped = []string{containersPrefix, stacksPrefix}

// withProjects returns rs with each container and stack route also
// registered under /api/v1/projects/{project}: the same handler, roles and
// answers, the project read from the path (absent: the default project).
func withProjects(rs []route) []route {
	out := make([]route, 0, 2*len(rs))
	for _, rt := range rs {
		out = append(out, rt)
		if slices.ContainsFunc(projectScoped, func(p string) bool { return strings.HasPrefix(rt.path, p) }) {
			mirror := rt
			mirror.path = projectPrefix + strings.TrimPrefix(rt.path, "/api/v1")
			out = append(out, mirror)
		}
	}
	return out
}

// baseRoute is the route a project route mirrors: its documentation is
// the same.
func baseRoute(path string) string {
	for _, p := range projectScoped {
		if rest, ok := strings.CutPrefix(path, projectPrefix+strings.TrimPrefix(p, "/api/v1")); ok {
			return p + rest
		}
	}
	return path
}

// projectOf is the project a request is about: the path's, or the default
// project.
func projectOf(r *http.Request) string {
	if p := mux.Vars(r)["project"]; p != "" {
		return p
	}
	return domain.DefaultProject
}

// containerRef is the container a request's path names.
func containerRef(r *http.Request) domain.ContainerRef {
	return domain.ContainerRef{Project: projectOf(r), Name: mux.Vars(r)["name"]}
}

// containerPath is a container's address in the API.
func containerPath(c domain.Container) string {
	if c.Project == domain.DefaultProject || c.Project == "" {
		return containersPrefix + "/" + c.Name
	}
	return "/api/v1/projects/" + c.Project + "/containers/" + c.Name
}

func (s *Server) listProjects(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.Lifecycle.ListProjects(r.Context())
	if err != nil {
		return err
	}
	a := domain.ActorFrom(r.Context())
	ps = slices.DeleteFunc(ps, func(p domain.Project) bool { return !a.CanRead(p.Name) })
	if ps == nil {
		ps = []domain.Project{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": ps})
	return nil
}

func (s *Server) createProject(w http.ResponseWriter, r *http.Request) error {
	var np domain.NewProject
	if err := decode(r, &np); err != nil {
		return err
	}
	p, err := s.Lifecycle.CreateProject(r.Context(), np)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/projects/"+p.Name)
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Server) getProject(w http.ResponseWriter, r *http.Request) error {
	p, err := s.Lifecycle.GetProject(r.Context(), mux.Vars(r)["project"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) error {
	if err := s.Lifecycle.DeleteProject(r.Context(), mux.Vars(r)["project"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request) error {
	var pp domain.ProjectPatch
	if err := decode(r, &pp); err != nil {
		return err
	}
	p, err := s.Lifecycle.UpdateProject(r.Context(), mux.Vars(r)["project"], pp)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) error {
	ms, err := s.Lifecycle.Members(r.Context(), mux.Vars(r)["project"])
	if err != nil {
		return err
	}
	if ms == nil {
		ms = []domain.Member{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": ms})
	return nil
}

func (s *Server) setMember(w http.ResponseWriter, r *http.Request) error {
	var m domain.MemberRequest
	if err := decode(r, &m); err != nil {
		return err
	}
	out, err := s.Lifecycle.SetMember(r.Context(), mux.Vars(r)["project"], m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	v := mux.Vars(r)
	if err := s.Lifecycle.RemoveMember(r.Context(), v["project"], v["kind"], v["member"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
