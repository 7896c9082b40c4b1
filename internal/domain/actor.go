package domain

import (
	"context"
	"encoding/json"
	"time"
)

// Role orders what a caller may do: viewer < operator < admin.
type Role string

const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether r includes need.
func (r Role) Allows(need Role) bool { return r.rank() >= need.rank() && need.rank() > 0 }

// RoleNone is a user's instance-wide role when it has none: it reaches
// only the projects it is a member of.
const RoleNone Role = "none"

// Actor is who caused a change: an API key, a user or moor itself.
type Actor struct {
	Kind string `json:"kind"` // "apikey", "user" or "system"
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	// Role is the instance-wide role: what the actor may do everywhere
	// ("" for none: a user with memberships only, a key limited to a
	// project). Checks of what reaches beyond one project (host ports,
	// privileged types, accounts) read it alone.
	Role Role `json:"role,omitempty"`
	// Project is the one project a limited key reaches.
	Project string `json:"project,omitempty"`
	// Projects are the actor's roles per project (memberships, and a
	// limited key's role in its project).
	Projects map[string]Role `json:"projects,omitempty"`
}

// RoleIn is the actor's role in project: the higher of its instance-wide
// role and its role there.
func (a Actor) RoleIn(project string) Role {
	if p := a.Projects[project]; p.rank() > a.Role.rank() {
		return p
	}
	return a.Role
}

// Best is the actor's highest role anywhere.
func (a Actor) Best() Role {
	best := a.Role
	for _, r := range a.Projects {
		if r.rank() > best.rank() {
			best = r
		}
	}
	return best
}

// ReadsAll reports whether the actor may read every project (an
// instance-wide role).
func (a Actor) ReadsAll() bool { return a.Role.Allows(RoleViewer) }

// CanRead reports whether the actor may read project's containers and
// events.
func (a Actor) CanRead(project string) bool { return a.RoleIn(project).Allows(RoleViewer) }

// String is how the actor appears in history: "apikey:ci".
func (a Actor) String() string { return a.Kind + ":" + a.Name }

// System is moor acting on its own (the reconciler).
var System = Actor{Kind: "system", Name: "moor"}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, or System.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return System
}

// Event is one entry of the change stream, numbered by a rising sequence.
type Event struct {
	Seq         int64     `json:"seq"`
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"`
	ContainerID string    `json:"container_id,omitempty"`
	// Project is the container's project ("" for events about none).
	Project   string          `json:"project,omitempty"`
	Container string          `json:"container,omitempty"`
	Actor     string          `json:"actor"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// EventQuery selects events: those after After, or with Tail the newest
// Tail of them, oldest first either way; Container and Kind (a prefix such
// as "image.pull" or "container.") narrow them.
type EventQuery struct {
	After     int64
	Limit     int
	Tail      int
	Project   string
	Container string
	Kind      string
	// Projects, when not nil, keeps only these projects' events (a caller
	// without an instance-wide role).
	Projects []string
}

// Filtered reports whether q leaves some events out, so a gap in seq
// says nothing about pruning.
func (q EventQuery) Filtered() bool {
	return q.Project != "" || q.Container != "" || q.Kind != "" || q.Projects != nil
}

// HistoryEntry is one line of a container's deployment history.
type HistoryEntry struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Project   string    `json:"project"`
	Container string    `json:"container"`
	// ContainerID tells containers of the same name apart; "" for the
	// rows written at and after a removal.
	ContainerID string          `json:"container_id,omitempty"`
	Action      string          `json:"action"`
	Actor       string          `json:"actor"`
	Details     json.RawMessage `json:"details,omitempty"`
}

// APIKey is a key as admins list it: never the key itself.
type APIKey struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Project is the one project a limited key reaches ("": instance-wide).
	Project    string     `json:"project,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// User is a person who signs in to the dashboard.
type User struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// Sessions counts the user's live sign-ins.
	Sessions int `json:"sessions"`
}
