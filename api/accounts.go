package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/moorhq/moor/internal/auth"
	"github.com/moorhq/moor/internal/domain"
)

// KeyAdmin lists and revokes API keys.
type KeyAdmin interface {
	ListAPIKeys(ctx context.Context) ([]domain.APIKey, error)
	RevokeAPIKey(ctx context.Context, name string) (domain.APIKey, error)
}

// Users manages the people who sign in.
type Users interface {
	AddUser(ctx context.Context, username, passwordHash string, role domain.Role) (string, error)
	ListUsers(ctx context.Context) ([]domain.User, error)
	RemoveUser(ctx context.Context, username string) error
	SetPassword(ctx context.Context, username, passwordHash string, keepSession []byte) error
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.KeyAdmin.ListAPIKeys(r.Context())
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []domain.APIKey{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"apikeys": keys})
	return nil
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request) error {
	k, err := s.KeyAdmin.RevokeAPIKey(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	users, err := s.Users.ListUsers(r.Context())
	if err != nil {
		return err
	}
	if users == nil {
		users = []domain.User{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": users})
	return nil
}

func (s *Server) addUser(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Role     string `json:"role"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if !domain.IsLabel(req.Username) {
		return domain.Invalid("username", "must be a DNS label: lower-case letters, digits and '-', at most 63 characters")
	}
	// "none": no instance-wide role, the projects the user is made a
	// member of only.
	role := domain.RoleNone
	if req.Role != string(domain.RoleNone) {
		var err error
		if role, err = auth.ParseRole(req.Role); err != nil {
			return domain.Invalid("role", "must be one of admin, operator, viewer, or none (projects' roles only) (got %q)", req.Role)
		}
	}
	if err := auth.ValidatePassword(req.Password); err != nil {
		return err
	}
	hash, err := s.hashPassword(r.Context(), req.Password)
	if err != nil {
		return err
	}
	id, err := s.Users.AddUser(r.Context(), req.Username, hash, role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, domain.User{ID: id, Username: req.Username, Role: role, CreatedAt: s.now()})
	return nil
}

func (s *Server) removeUser(w http.ResponseWriter, r *http.Request) error {
	name := mux.Vars(r)["username"]
	if a := domain.ActorFrom(r.Context()); a.Kind == "user" && a.Name == name {
		return fmt.Errorf("you cannot remove yourself; another admin can: %w", domain.ErrConflict)
	}
	if err := s.Users.RemoveUser(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// setPassword changes a password: an admin's for anyone, a user's for
// themselves with the current password. The user's other sessions end.
func (s *Server) setPassword(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Password        string `json:"password"`
		CurrentPassword string `json:"current_password,omitempty"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	name := mux.Vars(r)["username"]
	a := domain.ActorFrom(r.Context())
	self := a.Kind == "user" && a.Name == name
	if !self && !a.Role.Allows(domain.RoleAdmin) {
		return fmt.Errorf("changing another user's password requires the admin role: %w", domain.ErrForbidden)
	}
	if err := auth.ValidatePassword(req.Password); err != nil {
		return err
	}
	var keep []byte
	if self {
		_, hash, err := s.Sessions.UserByName(r.Context(), name)
		if err != nil {
			return err
		}
		if req.CurrentPassword == "" {
			return domain.Invalid("current_password", "is required to change your own password")
		}
		if !s.checkPassword(r.Context(), hash, req.CurrentPassword) {
			return domain.Invalid("current_password", "is not your current password")
		}
		if c, err := r.Cookie(SessionCookie); err == nil {
			keep = auth.HashKey(c.Value)
		}
	}
	hash, err := s.hashPassword(r.Context(), req.Password)
	if err != nil {
		return err
	}
	if err := s.Users.SetPassword(r.Context(), name, hash, keep); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// errHashBusy answers when every password-hashing slot stays taken.
var errHashBusy = &requestError{http.StatusServiceUnavailable, "busy", "password hashing is busy; try again shortly"}

// hashPassword hashes a new password in one of the bounded slots sign-in
// uses, so account changes cannot take every core either.
func (s *Server) hashPassword(ctx context.Context, pw string) (string, error) {
	release, ok := s.signInGuard().hashSlot(ctx)
	if !ok {
		return "", errHashBusy
	}
	defer release()
	return auth.HashPassword(pw)
}

// checkPassword is CheckPassword in a bounded slot.
func (s *Server) checkPassword(ctx context.Context, hash, pw string) bool {
	release, ok := s.signInGuard().hashSlot(ctx)
	if !ok {
		return false
	}
	defer release()
	check := s.CheckPassword
	if check == nil {
		check = auth.CheckPassword
	}
	return check(hash, pw)
}
