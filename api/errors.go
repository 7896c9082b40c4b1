package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/moorhq/moor/internal/domain"
)

// errorStatus maps sentinel errors to HTTP statuses: the one table.
var errorStatus = []struct {
	err    error
	status int
	code   string
}{
	{domain.ErrInvalid, http.StatusUnprocessableEntity, "invalid"},
	{domain.ErrNotFound, http.StatusNotFound, "not_found"},
	{domain.ErrConflict, http.StatusConflict, "conflict"},
	{domain.ErrForbidden, http.StatusForbidden, "forbidden"},
	{domain.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{domain.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
}

// requestError is a malformed request: bad JSON, wrong content type, too big.
type requestError struct {
	status int
	code   string
	msg    string
}

func (e *requestError) Error() string { return e.msg }

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// writeError answers with the status the error maps to. Details of 5xx go to
// the log, not the client.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status, detail := http.StatusInternalServerError, errorDetail{Code: "internal", Message: "internal error"}
	var re *requestError
	var fe *domain.FieldError
	switch {
	case errors.As(err, &re):
		status, detail = re.status, errorDetail{Code: re.code, Message: re.msg}
	default:
		for _, m := range errorStatus {
			if errors.Is(err, m.err) {
				status, detail = m.status, errorDetail{Code: m.code, Message: err.Error()}
				break
			}
		}
		if errors.As(err, &fe) {
			detail.Field = fe.Field
		}
	}
	if status >= 500 {
		logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		if status == http.StatusServiceUnavailable {
			detail.Message = "a backend is unavailable; try again shortly"
		}
	}
	writeJSON(w, status, errorBody{Error: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
