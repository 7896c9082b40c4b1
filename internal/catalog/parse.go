package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/moorhq/moor/internal/domain"
)

// maxTypeFile bounds a YAML type file; real ones are a few kilobytes.
const maxTypeFile = 1 << 20

// unknownKeyRE matches yaml's message for a key the struct lacks, which
// names a Go type ("domain.Type") that means nothing to the file's author.
var unknownKeyRE = regexp.MustCompile(`field (\S+) not found in type \S+`)

// ParseType reads one moor type file (one YAML document). Unknown keys are
// errors, so a typo ("imgae:") fails loudly instead of being ignored.
// Durations are Go durations ("5s", "1m30s"). Empty protocols become "tcp",
// an empty restart policy "always", unnamed ports "<protocol>-<port>"; the
// result is validated. Source is left empty for the caller to set.
func ParseType(data []byte) (domain.Type, error) {
	if len(data) > maxTypeFile {
		return domain.Type{}, domain.Invalid("yaml", "type file is larger than %d bytes", maxTypeFile)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var t domain.Type
	if err := dec.Decode(&t); err != nil {
		if errors.Is(err, io.EOF) {
			return domain.Type{}, domain.Invalid("yaml", "type file is empty")
		}
		return domain.Type{}, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return domain.Type{}, domain.Invalid("yaml", "a type file holds exactly one YAML document")
	}
	t = normalize(t)
	if err := Validate(t); err != nil {
		return domain.Type{}, err
	}
	return t, nil
}

// Complete finishes a type made from another format (a compose service)
// as the catalog finishes its own: the documented defaults, which
// variables are secret, the HTTP port by the rules for imports (whose
// authors could not say which port serves HTTP), then Validate.
func Complete(t domain.Type) (domain.Type, error) {
	t = normalize(t)
	if _, ok := t.HTTPPort(); !ok {
		if i, reason := chooseHTTPPort(t.Ports, 0); i >= 0 {
			t.Ports[i].HTTP = true
			t.HTTPPortReason = reason
		}
	}
	if err := Validate(t); err != nil {
		return domain.Type{}, err
	}
	return t, nil
}

// yamlError turns a yaml error into a FieldError whose message speaks of
// keys and lines, not of Go types.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			m = unknownKeyRE.ReplaceAllString(m, `unknown key "$1"`)
			m = strings.ReplaceAll(m, "into time.Duration", "into a duration (write it like 5s or 1m30s)")
			msgs[i] = strings.ReplaceAll(m, "domain.", "")
		}
		return domain.Invalid("yaml", "%s", strings.Join(msgs, "; "))
	}
	return domain.Invalid("yaml", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// normalize fills the documented defaults and turns nil lists into empty
// ones, so every consumer sees the same shape (JSON [] rather than null).
// It returns a copy and leaves t untouched.
func normalize(t domain.Type) domain.Type {
	t = cloneType(t)
	if t.Restart == "" {
		t.Restart = domain.RestartAlways
	}
	for i := range t.Ports {
		p := &t.Ports[i]
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		if p.Name == "" && p.Port > 0 && (p.Protocol == "tcp" || p.Protocol == "udp") {
			p.Name = fmt.Sprintf("%s-%d", p.Protocol, p.Port)
		}
	}
	if t.Categories == nil {
		t.Categories = []string{}
	}
	if t.Ports == nil {
		t.Ports = []domain.PortSpec{}
	}
	if t.Env == nil {
		t.Env = []domain.EnvSpec{}
	}
	// Docker takes both spellings; one makes types equal when they mean it.
	for _, caps := range [][]string{t.CapAdd, t.CapDrop} {
		for i, c := range caps {
			caps[i] = strings.TrimPrefix(c, "CAP_")
		}
	}
	if b := t.Backup; b != nil {
		if !b.Pause && len(b.Dump) == 0 && b.DumpFile == "" {
			t.Backup = nil // backup: {} says nothing
		} else if len(b.Dump) > 0 && b.DumpFile == "" {
			b.DumpFile = domain.DefaultDumpFile
		}
	}
	decideSecrets(t.Env)
	explainHTTPPort(&t)
	return t
}

// cloneType deep-copies t so the catalog can hand out types without
// sharing the slices it keeps.
func cloneType(t domain.Type) domain.Type {
	t.Categories = slices.Clone(t.Categories)
	t.Ports = slices.Clone(t.Ports)
	t.Volumes = slices.Clone(t.Volumes)
	t.Command = slices.Clone(t.Command)
	t.Devices = slices.Clone(t.Devices)
	t.CapAdd = slices.Clone(t.CapAdd)
	t.CapDrop = slices.Clone(t.CapDrop)
	t.Labels = maps.Clone(t.Labels)
	if t.Env != nil {
		env := make([]domain.EnvSpec, len(t.Env))
		for i, e := range t.Env {
			e.Choices = slices.Clone(e.Choices)
			env[i] = e
		}
		t.Env = env
	}
	if t.Health != nil {
		h := *t.Health
		h.Test = slices.Clone(h.Test)
		t.Health = &h
	}
	if t.Backup != nil {
		b := *t.Backup
		b.Dump = slices.Clone(b.Dump)
		t.Backup = &b
	}
	return t
}
