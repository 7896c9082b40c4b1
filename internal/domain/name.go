package domain

import "regexp"

// nameRE is a DNS label in lower case: it is safe in a Traefik rule, a DNS
// name, a Docker object name and a file name.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// MaxNameLength is the longest DNS label.
const MaxNameLength = 63

// ValidateName checks a container name against the DNS label rule.
func ValidateName(name string) error {
	if name == "" {
		return Invalid("name", "is required")
	}
	if len(name) > MaxNameLength {
		return Invalid("name", "must be at most %d characters", MaxNameLength)
	}
	if !nameRE.MatchString(name) {
		return Invalid("name", "must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit")
	}
	return nil
}

// IsLabel reports whether s is a valid lower-case DNS label.
func IsLabel(s string) bool { return nameRE.MatchString(s) }
