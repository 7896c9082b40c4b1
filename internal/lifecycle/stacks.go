package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/stack"
)

// Stacks records compose stacks (docs/stacks.md).
type Stacks interface {
	CreateStack(ctx context.Context, ns domain.NewStack, actor string) (domain.Stack, error)
	GetStack(ctx context.Context, project, name string) (domain.Stack, error)
	ListStacks(ctx context.Context, project string) ([]domain.Stack, error)
	UpdateStack(ctx context.Context, project, name string, u domain.StackUpdate, actor string) (domain.Stack, error)
	DeleteStack(ctx context.Context, project, name string, keepVolumes bool, actor string) (domain.Stack, error)
}

// CreateStack deploys a compose file as a stack of project: one container
// per service, all recorded in one transaction (or none).
func (s *Service) CreateStack(ctx context.Context, project, name, compose string) (domain.Stack, error) {
	if err := validProject(project); err != nil {
		return domain.Stack{}, err
	}
	actor := domain.ActorFrom(ctx)
	st, err := stack.Parse(ctx, name, compose)
	if err != nil {
		return domain.Stack{}, err
	}
	if err := stackAllowed(actor, st); err != nil {
		return domain.Stack{}, err
	}
	ncs, err := s.stackContainers(actor, project, st, nil)
	if err != nil {
		return domain.Stack{}, err
	}
	out, err := s.store.CreateStack(ctx, domain.NewStack{Project: project, Name: name, Compose: compose, Containers: ncs}, actor.String())
	return s.decorateStack(out), err
}

// UpdateStack deploys a new version of a stack's compose file: only the
// services whose definition changed are replaced, new ones are created,
// those gone are removed (their volumes too when removeVolumes).
func (s *Service) UpdateStack(ctx context.Context, project, name, compose string, removeVolumes bool) (domain.Stack, error) {
	cur, err := s.GetStack(ctx, project, name)
	if err != nil {
		return cur, err
	}
	actor := domain.ActorFrom(ctx)
	if err := stackContainersAllowed(ctx, cur, "change"); err != nil {
		return domain.Stack{}, err
	}
	st, err := stack.Parse(ctx, name, compose)
	if err != nil {
		return domain.Stack{}, err
	}
	if err := stackAllowed(actor, st); err != nil {
		return domain.Stack{}, err
	}
	current := map[string]domain.Container{}
	for _, c := range cur.Containers {
		current[c.StackService] = c
	}
	ncs, err := s.stackContainers(actor, project, st, current)
	if err != nil {
		return domain.Stack{}, err
	}
	out, err := s.store.UpdateStack(ctx, project, name, domain.StackUpdate{Compose: compose, Containers: ncs, RemoveVolumes: removeVolumes}, actor.String())
	return s.decorateStack(out), err
}

// DeleteStack removes a stack's containers (their volumes too when
// removeVolumes); the stack goes with the last of them.
func (s *Service) DeleteStack(ctx context.Context, project, name string, removeVolumes bool) (domain.Stack, error) {
	cur, err := s.GetStack(ctx, project, name)
	if err != nil {
		return cur, err
	}
	if err := stackContainersAllowed(ctx, cur, "remove"); err != nil {
		return domain.Stack{}, err
	}
	out, err := s.store.DeleteStack(ctx, project, name, !removeVolumes, domain.ActorFrom(ctx).String())
	return s.decorateStack(out), err
}

// GetStack returns a stack with its services and their containers.
func (s *Service) GetStack(ctx context.Context, project, name string) (domain.Stack, error) {
	if err := validProject(project); err != nil {
		return domain.Stack{}, err
	}
	if domain.ValidateName(name) != nil {
		return domain.Stack{}, fmt.Errorf("stack %q: %w", domain.ContainerRef{Project: project, Name: name}, domain.ErrNotFound)
	}
	st, err := s.store.GetStack(ctx, project, name)
	return s.decorateStack(st), err
}

// ListStacks returns a project's stacks.
func (s *Service) ListStacks(ctx context.Context, project string) ([]domain.Stack, error) {
	if err := validProject(project); err != nil {
		return nil, err
	}
	sts, err := s.store.ListStacks(ctx, project)
	if err == nil && len(sts) == 0 && project != domain.DefaultProject {
		if _, err := s.store.GetProject(ctx, project); err != nil {
			return nil, err // no such project: a 404
		}
	}
	for i := range sts {
		sts[i] = s.decorateStack(sts[i])
	}
	return sts, err
}

func validProject(project string) error {
	if err := knownProject(project); err != nil {
		return err
	}
	return nil
}

// stackAllowed refuses, for anyone but an admin, a stack with services
// only admins may deploy, naming each key.
func stackAllowed(actor domain.Actor, st stack.Stack) error {
	if actor.Role.Allows(domain.RoleAdmin) {
		return nil
	}
	var why []string
	for _, svc := range st.Services {
		why = append(why, svc.AdminOnly...)
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("only admins may deploy %s: %w", strings.Join(why, "; "), domain.ErrForbidden)
}

// stackContainersAllowed refuses, for anyone but an admin, to act on a
// stack holding a container only an admin may operate.
func stackContainersAllowed(ctx context.Context, st domain.Stack, what string) error {
	for _, c := range st.Containers {
		if err := adminOnly(ctx, c, what); err != nil {
			return fmt.Errorf("stack %q: %w", st.Name, err)
		}
	}
	return nil
}

// reservedServices are names a stack's service may not have: its bare
// alias on the project's network would capture the names moor's own
// services have there (Traefik, attached to every project's network,
// reaches moor's provider endpoint as "moor").
var reservedServices = []string{"moor", "traefik"}

// stackContainers builds the containers of st's services, through the
// create path's checks (names, replicas, host ports, environment,
// secrets), each error naming its service. A service with a container
// already (current, by service name) keeps its id.
func (s *Service) stackContainers(actor domain.Actor, project string, st stack.Stack, current map[string]domain.Container) ([]domain.NewContainer, error) {
	out := make([]domain.NewContainer, 0, len(st.Services))
	for _, svc := range st.Services {
		field := "services." + svc.Name
		if slices.Contains(reservedServices, svc.Name) {
			return nil, domain.Invalid(field, "%s is a name moor's own services answer to on the networks it attaches Traefik to (Traefik reaches moor's provider at http://moor:8080): a service of that name would capture their traffic; rename the service", svc.Name)
		}
		if err := s.validName(field, project, svc.Container); err != nil {
			return nil, err
		}
		id := uuid.NewString()
		var kept []domain.PublishedPort
		if c, ok := current[svc.Name]; ok && c.DesiredState != domain.DesiredRemoved {
			id, kept = c.ID, c.Published
		}
		req := domain.CreateRequest{Project: project, Name: svc.Container, Publish: svc.Publish, Env: map[string]string{}}
		for k, v := range svc.Env {
			if v == "" {
				req.LeaveEmpty = append(req.LeaveEmpty, k) // set empty in the file: kept empty
			} else {
				req.Env[k] = v
			}
		}
		nc, err := s.newContainer(actor, req, svc.Type, svc.Replicas, id, kept)
		if err != nil {
			return nil, serviceError(field, err)
		}
		nc.Stack, nc.StackService, nc.DefinitionHash = st.Name, svc.Name, svc.Hash
		for _, d := range svc.DependsOn {
			nc.DependsOn = append(nc.DependsOn, domain.Dependency{Service: d.Service, Condition: d.Condition})
		}
		out = append(out, nc)
	}
	return out, nil
}

// serviceError puts a service's field path in front of an error about one
// of its container's fields.
func serviceError(field string, err error) error {
	var fe *domain.FieldError
	if errors.As(err, &fe) {
		return domain.Invalid(field+"."+fe.Field, "%s", fe.Rule)
	}
	return fmt.Errorf("%s: %w", field, err)
}

// decorateStack fills the derived fields of a stack's containers.
func (s *Service) decorateStack(st domain.Stack) domain.Stack {
	if st.Services == nil {
		st.Services = []domain.StackService{}
	}
	if st.Containers == nil {
		st.Containers = []domain.Container{}
	}
	for i := range st.Containers {
		st.Containers[i] = s.decorate(st.Containers[i])
	}
	return st
}
