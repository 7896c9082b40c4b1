// Package domain holds moor's core types and rules. It imports only the
// standard library so every other package can depend on it.
package domain

import (
	"errors"
	"fmt"
)

// Sentinel errors. Packages wrap them with %w; the api package maps them to
// HTTP status codes in one table.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrForbidden    = errors.New("forbidden")
	ErrUnauthorized = errors.New("unauthorized")
	ErrUnavailable  = errors.New("unavailable")
)

// FieldError reports a rule a request field broke. It unwraps to ErrInvalid.
type FieldError struct {
	Field string // JSON path of the field, e.g. "env.POSTGRES_PASSWORD"
	Rule  string // the rule in plain words
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Rule) }
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid returns a FieldError for field breaking rule.
func Invalid(field, rule string, args ...any) error {
	return &FieldError{Field: field, Rule: fmt.Sprintf(rule, args...)}
}
