package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/moorhq/moor/internal/domain"
)

// Backups takes and lists a container's volume backups (backups.Service).
type Backups interface {
	Create(ctx context.Context, cr domain.ContainerRef) (domain.BackupsStarted, error)
	List(ctx context.Context, cr domain.ContainerRef) ([]domain.Backup, error)
	Restore(ctx context.Context, cr domain.ContainerRef, id string) (domain.Restore, error)
}

// backupList is the answer of GET .../backups.
type backupList struct {
	Backups []domain.Backup `json:"backups"`
}

func (s *Server) backups() (Backups, error) {
	if s.Backups == nil {
		return nil, fmt.Errorf("backups are not configured on this server: %w", domain.ErrUnavailable)
	}
	return s.Backups, nil
}

func (s *Server) createBackup(w http.ResponseWriter, r *http.Request) error {
	b, err := s.backups()
	if err != nil {
		return err
	}
	started, err := b.Create(r.Context(), containerRef(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, started)
	return nil
}

func (s *Server) listBackups(w http.ResponseWriter, r *http.Request) error {
	b, err := s.backups()
	if err != nil {
		return err
	}
	bs, err := b.List(r.Context(), containerRef(r))
	if err != nil {
		return err
	}
	if bs == nil {
		bs = []domain.Backup{}
	}
	writeJSON(w, http.StatusOK, backupList{bs})
	return nil
}

func (s *Server) restoreBackup(w http.ResponseWriter, r *http.Request) error {
	b, err := s.backups()
	if err != nil {
		return err
	}
	rs, err := b.Restore(r.Context(), containerRef(r), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, rs)
	return nil
}
