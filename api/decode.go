package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 64 << 10

// decode reads one JSON object from the body into v, strictly: unknown
// fields, trailing data and oversize bodies are errors.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &requestError{http.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json"}
		}
	}
	return decodeJSON(http.MaxBytesReader(nil, r.Body, MaxBodyBytes), v)
}

// decodeOptional is decode for a body that may be left out (no body, or
// an empty one): v keeps its zero value then.
func decodeOptional(r *http.Request, v any) error {
	body := bufio.NewReader(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if _, err := body.Peek(1); err == io.EOF {
		return nil
	}
	r.Body = io.NopCloser(body)
	return decode(r, v)
}

func decodeJSON(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return &requestError{http.StatusBadRequest, "bad_json", "body must hold exactly one JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &requestError{http.StatusBadRequest, "bad_json", "body must hold exactly one JSON object"}
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &requestError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body is larger than %d bytes", MaxBodyBytes)}
	case errors.Is(err, io.EOF):
		return &requestError{http.StatusBadRequest, "bad_json", "body is empty; a JSON object is required"}
	case errors.As(err, &syn):
		return &requestError{http.StatusBadRequest, "bad_json", fmt.Sprintf("malformed JSON at byte %d", syn.Offset)}
	case errors.As(err, &typ):
		return &requestError{http.StatusBadRequest, "bad_json", fmt.Sprintf("field %q must be %s", typ.Field, typ.Type)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &requestError{http.StatusBadRequest, "unknown_field", strings.TrimPrefix(err.Error(), "json: ")}
	}
	return &requestError{http.StatusBadRequest, "bad_json", "malformed JSON"}
}
