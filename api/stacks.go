package api

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/moorhq/moor/internal/domain"
)

// Stacks manages compose stacks (docs/stacks.md).
type Stacks interface {
	CreateStack(ctx context.Context, project, name, compose string) (domain.Stack, error)
	GetStack(ctx context.Context, project, name string) (domain.Stack, error)
	ListStacks(ctx context.Context, project string) ([]domain.Stack, error)
	UpdateStack(ctx context.Context, project, name, compose string, removeVolumes bool) (domain.Stack, error)
	DeleteStack(ctx context.Context, project, name string, removeVolumes bool) (domain.Stack, error)
}

// stacksPrefix starts the stack routes of the default project; they are
// mirrored under /api/v1/projects/{project}/stacks like the container
// routes.
const stacksPrefix = "/api/v1/stacks"

type (
	stackList struct {
		Stacks []domain.Stack `json:"stacks"`
	}
	stackCreate struct {
		Name    string `json:"name"`
		Compose string `json:"compose"`
	}
	stackUpdate struct {
		Compose string `json:"compose"`
	}
)

// stackPath is a stack's address in the API.
func stackPath(st domain.Stack) string {
	if st.Project == domain.DefaultProject || st.Project == "" {
		return stacksPrefix + "/" + st.Name
	}
	return "/api/v1/projects/" + st.Project + "/stacks/" + st.Name
}

// stackForRole leaves out for viewers what forRole leaves out of
// containers, and the compose file, whose environment it holds.
func stackForRole(r *http.Request, st domain.Stack) domain.Stack {
	if !domain.ActorFrom(r.Context()).RoleIn(st.Project).Allows(domain.RoleOperator) {
		st.Compose = ""
	}
	for i := range st.Containers {
		st.Containers[i] = forRole(r, st.Containers[i])
	}
	return st
}

// acceptedStack answers a change of a stack the reconciler carries out.
func acceptedStack(w http.ResponseWriter, r *http.Request, st domain.Stack, err error) error {
	if err != nil {
		return err
	}
	w.Header().Set("Location", stackPath(st))
	writeJSON(w, http.StatusAccepted, stackForRole(r, st))
	return nil
}

func (s *Server) listStacks(w http.ResponseWriter, r *http.Request) error {
	sts, err := s.Lifecycle.ListStacks(r.Context(), projectOf(r))
	if err != nil {
		return err
	}
	if sts == nil {
		sts = []domain.Stack{}
	}
	for i := range sts {
		sts[i] = stackForRole(r, sts[i])
	}
	writeJSON(w, http.StatusOK, stackList{Stacks: sts})
	return nil
}

func (s *Server) createStack(w http.ResponseWriter, r *http.Request) error {
	var req stackCreate
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Compose == "" {
		return domain.Invalid("compose", "is required: the compose file's text")
	}
	st, err := s.Lifecycle.CreateStack(r.Context(), projectOf(r), req.Name, req.Compose)
	return acceptedStack(w, r, st, err)
}

func (s *Server) getStack(w http.ResponseWriter, r *http.Request) error {
	st, err := s.Lifecycle.GetStack(r.Context(), projectOf(r), mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, stackForRole(r, st))
	return nil
}

func (s *Server) updateStack(w http.ResponseWriter, r *http.Request) error {
	removeVolumes, err := boolParam(r, "remove_volumes")
	if err != nil {
		return err
	}
	var req stackUpdate
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Compose == "" {
		return domain.Invalid("compose", "is required: the compose file's text")
	}
	st, err := s.Lifecycle.UpdateStack(r.Context(), projectOf(r), mux.Vars(r)["name"], req.Compose, removeVolumes)
	return acceptedStack(w, r, st, err)
}

func (s *Server) deleteStack(w http.ResponseWriter, r *http.Request) error {
	removeVolumes, err := boolParam(r, "remove_volumes")
	if err != nil {
		return err
	}
	st, err := s.Lifecycle.DeleteStack(r.Context(), projectOf(r), mux.Vars(r)["name"], removeVolumes)
	return acceptedStack(w, r, st, err)
}
