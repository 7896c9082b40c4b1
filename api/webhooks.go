package api

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/moorhq/moor/internal/domain"
)

// Webhooks manages the webhooks that send events to receivers such as n8n.
type Webhooks interface {
	Create(ctx context.Context, name, url string, events []string) (domain.Webhook, string, error)
	List(ctx context.Context) ([]domain.Webhook, error)
	Get(ctx context.Context, name string) (domain.Webhook, error)
	Delete(ctx context.Context, name string) error
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name   string   `json:"name"`
		URL    string   `json:"url"`
		Events []string `json:"events"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	hook, secret, err := s.Webhooks.Create(r.Context(), req.Name, req.URL, req.Events)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/api/v1/webhooks/"+hook.Name)
	writeJSON(w, http.StatusCreated, struct {
		domain.Webhook
		Secret string `json:"secret"`
	}{hook, secret})
	return nil
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) error {
	hooks, err := s.Webhooks.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": hooks})
	return nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) error {
	hook, err := s.Webhooks.Get(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, hook)
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := s.Webhooks.Delete(r.Context(), mux.Vars(r)["name"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
