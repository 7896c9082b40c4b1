package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/moorhq/moor/internal/domain"
)

// scope says where a route's least role must be held.
type scope int

const (
	// scopeInstance: an instance-wide role (accounts, webhooks, quotas,
	// metrics with every project's series).
	scopeInstance scope = iota
	// scopeProject: the role in the route's project (the path's, or the
	// default project for /api/v1/containers and /api/v1/stacks).
	scopeProject
	// scopeAny: the role anywhere; the handler shows only what the caller
	// may read (projects, events, the catalog, the caller's own session).
	scopeAny
)

// anywhere are the routes of scopeAny.
var anywhere = []string{
	"GET /api/v1/types", "GET /api/v1/types/{id}", "GET /api/v1/projects", "GET /api/v1/events", "GET /api/v1/ws",
	"GET /api/v1/openapi.json", "GET /api/v1/session", "DELETE /api/v1/session", "PUT /api/v1/users/{username}/password",
}

// scopeOf is where rt's role must be held: a container route's or a
// project's sub-route's in its project; reading a project in it too;
// creating, changing the quotas of and deleting projects instance-wide.
func scopeOf(rt route) scope {
	key := rt.method + " " + rt.path
	switch {
	case slices.Contains(anywhere, key):
		return scopeAny
	case rt.path == projectPrefix && rt.method != http.MethodGet:
		return scopeInstance
	case rt.path == projectPrefix, strings.HasPrefix(rt.path, projectPrefix+"/"),
		slices.ContainsFunc(projectScoped, func(p string) bool { return strings.HasPrefix(rt.path, p) }):
		return scopeProject
	}
	return scopeInstance
}

// authorize checks the actor's role where rt needs it. A project the
// actor holds nothing in answers 403 whether it exists or not: no answer
// tells another project's names.
func authorize(a domain.Actor, rt route, r *http.Request) error {
	var have domain.Role
	sc := scopeOf(rt)
	switch sc {
	case scopeInstance:
		have = a.Role
	case scopeProject:
		have = a.RoleIn(projectOf(r))
	case scopeAny:
		have = a.Best()
	}
	if have.Allows(rt.role) {
		return nil
	}
	where := "" // worded for a refusal only: nothing to build on the way in
	switch sc {
	case scopeInstance:
		where = " instance-wide"
	case scopeProject:
		where = fmt.Sprintf(" in project %q", projectOf(r))
	}
	if have == "" {
		have = "none"
	}
	return fmt.Errorf("%s requires the %s role%s, the caller has %s: %w", rt.path, rt.role, where, have, domain.ErrForbidden)
}

// readableEvents narrows q to the projects a can read: every event for an
// instance-wide role; else its projects' only (events about accounts and
// webhooks, which name no project, are for instance-wide roles).
func readableEvents(a domain.Actor, q *domain.EventQuery) error {
	if a.ReadsAll() {
		return nil
	}
	if q.Project != "" {
		if !a.CanRead(q.Project) {
			return fmt.Errorf("events of project %q require the viewer role there: %w", q.Project, domain.ErrForbidden)
		}
		return nil
	}
	q.Projects = readableProjects(a)
	return nil
}

// readableProjects lists the projects a reaches through its roles per
// project (in no order: the query takes them as a set).
func readableProjects(a domain.Actor) []string {
	out := make([]string, 0, len(a.Projects))
	for p, r := range a.Projects {
		if r.Allows(domain.RoleViewer) {
			out = append(out, p)
		}
	}
	return out
}
