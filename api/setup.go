package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/moorhq/moor/internal/auth"
	"github.com/moorhq/moor/internal/domain"
)

// Setup creates the first admin of a new installation.
type Setup interface {
	HasUsers(ctx context.Context) (bool, error)
	AddFirstAdmin(ctx context.Context, username, passwordHash string) (string, error)
}

// FirstRun lets the person who started moor create its first admin from
// the dashboard: only while no user exists, and only with the one-time
// token moor printed when it started (the log of `make run`), before it
// expires. Like Portainer's first-run page, but a stranger who reaches
// the port first cannot take the installation.
type FirstRun struct {
	Token   string
	Expires time.Time
}

func (s *Server) setupNeeded(w http.ResponseWriter, r *http.Request) error {
	needed := false
	if s.Setup != nil && s.FirstRun.Token != "" && s.now().Before(s.FirstRun.Expires) {
		has, err := s.Setup.HasUsers(r.Context())
		if err != nil {
			return err
		}
		needed = !has
	}
	writeJSON(w, http.StatusOK, map[string]any{"needed": needed})
	return nil
}

func (s *Server) setup(w http.ResponseWriter, r *http.Request) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Token    string `json:"token"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	g := s.signInGuard()
	peer := clientAddr(r, g.lim.TrustedProxies)
	if wait := g.take(addrKey(peer, r.RemoteAddr), s.now()); wait > 0 {
		return tooManyAttempts(w, wait, "too many attempts from this address; try again later")
	}
	switch {
	case s.Setup == nil || s.FirstRun.Token == "":
		return &requestError{http.StatusNotFound, "not_found", "first-run setup is off: add users with `moor user add`"}
	case !s.now().Before(s.FirstRun.Expires):
		return &requestError{http.StatusGone, "expired", "the setup token has expired: restart moor for a new one, or add the admin with `moor user add`"}
	case subtle.ConstantTimeCompare([]byte(req.Token), []byte(s.FirstRun.Token)) != 1:
		return domain.Invalid("token", "is not the setup token moor printed when it started")
	case !domain.IsLabel(req.Username):
		return domain.Invalid("username", "must be a DNS label: lower-case letters, digits and '-', at most 63 characters")
	}
	if err := auth.ValidatePassword(req.Password); err != nil {
		return err
	}
	hash, err := s.hashPassword(r.Context(), req.Password)
	if err != nil {
		return err
	}
	id, err := s.Setup.AddFirstAdmin(r.Context(), req.Username, hash)
	if err != nil {
		return err
	}
	actor := domain.Actor{Kind: "user", ID: id, Name: req.Username, Role: domain.RoleAdmin}
	if err := s.startSession(w, r, actor); err != nil {
		return err
	}
	s.Logger.Info("first admin created", "user", actor.Name)
	writeJSON(w, http.StatusCreated, map[string]any{"user": actor})
	return nil
}
