package domain

import (
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Webhook sends the events whose kind matches one of Events to URL, each
// as a signed POST, in order.
type Webhook struct {
	ID              string     `json:"id"`
	Name            string     `json:"name"`
	URL             string     `json:"url"`
	Events          []string   `json:"events"`
	Cursor          int64      `json:"cursor"` // last event delivered or skipped
	Failures        int        `json:"failures"`
	LastError       string     `json:"last_error,omitempty"`
	LastDeliveredAt *time.Time `json:"last_delivered_at,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	CreatedBy       string     `json:"created_by"`
	// SealedSecret is the signing secret as stored (encrypted).
	SealedSecret []byte `json:"-"`
}

var eventPattern = regexp.MustCompile(`^(\*|[a-z][a-z0-9_]*(\.\*|(\.[a-z][a-z0-9_]*)+(\.\*)?)?)$`)

// Matches reports whether an event kind is one the webhook asked for:
// "*", an exact kind, or a prefix such as "container.*".
func (w Webhook) Matches(kind string) bool {
	for _, p := range w.Events {
		if p == "*" || p == kind {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(kind, prefix) {
			return true
		}
	}
	return false
}

// Validate checks what a user gives: name, URL and event patterns.
func (w Webhook) Validate() error {
	if !IsLabel(w.Name) {
		return Invalid("name", "must be a DNS label: lower-case letters, digits and '-', at most 63 characters")
	}
	u, err := url.Parse(w.URL)
	switch {
	case len(w.URL) > 2048:
		return Invalid("url", "must be at most 2048 characters")
	case err != nil || !u.IsAbs() || u.Host == "" || u.Scheme != "http" && u.Scheme != "https":
		return Invalid("url", "must be an absolute http or https URL")
	case u.User != nil:
		return Invalid("url", "must not carry a user or password (the signature authenticates moor)")
	case u.Fragment != "":
		return Invalid("url", "must not have a fragment")
	}
	if len(w.Events) == 0 || len(w.Events) > 32 {
		return Invalid("events", "must list 1 to 32 event kinds, e.g. [\"container.*\"] or [\"*\"]")
	}
	for _, p := range w.Events {
		if !eventPattern.MatchString(p) {
			return Invalid("events", "%q is not an event kind: use \"*\", a kind such as \"container.running\", or a prefix such as \"container.*\"", p)
		}
	}
	return nil
}
