// Package catalog is moor's catalog of container types: the builtin types
// embedded in the binary, moor type files (YAML) and Portainer App
// Templates (JSON, v2 and v3) from an optional directory. It also checks a
// user's environment values against a type (Resolve).
package catalog

import (
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moorhq/moor/internal/domain"
)

// builtinFS holds the types every moor ships with.
//
//go:embed builtin/*.yaml
var builtinFS embed.FS

// Type sources, as set in domain.Type.Source.
const (
	SourceBuiltin   = "builtin"
	SourceDir       = "dir"
	SourcePortainer = "portainer"
)

// Catalog is the set of deployable types. It is immutable after Load and
// safe for concurrent use: it hands out deep copies.
type Catalog struct {
	types   map[string]domain.Type
	ids     []string // sorted
	skipped []Skipped
	dropped []Dropped
}

// Skipped is a template that was not imported, and why.
type Skipped struct {
	Source string `json:"source"` // file and position, e.g. "templates.json:templates[3]"
	Title  string `json:"title"`
	Reason string `json:"reason"`
}

// Load builds the catalog: the builtin types, then from dir (if not "")
// every *.yaml / *.yml moor type file, then every *.json Portainer App
// Templates file, each group in file name order. Names starting with '.'
// and subdirectories are ignored.
//
// Precedence, so the result never depends on luck:
//   - a type file may replace a builtin type by using its ID (to point it at
//     a mirror, say); two type files with one ID are an error;
//   - a Portainer template whose ID is already taken is skipped.
//
// A type file that does not parse or validate fails Load: it was written
// for moor, and a typo should stop the start, not hide a type. Portainer
// templates are third-party input: each one moor cannot use is logged and
// kept in Skipped(), and only a file that is not a v2/v3 templates file
// fails Load. A template imported without some of its fields is logged
// once per field and kept in Dropped(). Errors name the file; callers add
// their own prefix.
func Load(dir string, logger *slog.Logger) (*Catalog, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &loader{types: map[string]domain.Type{}, origin: map[string]string{}, logger: logger}
	if err := l.addBuiltin(); err != nil {
		return nil, fmt.Errorf("builtin types: %w", err)
	}
	if dir != "" {
		if err := l.addDir(dir); err != nil {
			return nil, err
		}
	}
	c := &Catalog{types: l.types, skipped: l.skipped, dropped: l.dropped}
	for id := range l.types {
		c.ids = append(c.ids, id)
	}
	slices.Sort(c.ids)
	for _, s := range c.skipped {
		logger.Info("catalog: template skipped", "source", s.Source, "title", s.Title, "reason", s.Reason)
	}
	for _, d := range c.dropped {
		logger.Info("catalog: template field dropped", "source", d.Source, "title", d.Title, "field", d.Field, "reason", d.Reason)
	}
	logger.Info("catalog loaded", "dir", dir, "types", len(c.ids), "skipped", len(c.skipped), "dropped_fields", len(c.dropped))
	return c, nil
}

// Get returns the type with the given ID.
func (c *Catalog) Get(id string) (domain.Type, error) {
	t, ok := c.types[id]
	if !ok {
		return domain.Type{}, fmt.Errorf("type %q: %w", id, domain.ErrNotFound)
	}
	return cloneType(t), nil
}

// List returns every type, sorted by ID.
func (c *Catalog) List() []domain.Type {
	out := make([]domain.Type, len(c.ids))
	for i, id := range c.ids {
		out[i] = cloneType(c.types[id])
	}
	return out
}

// Skipped returns the templates Load did not import, in load order.
func (c *Catalog) Skipped() []Skipped { return slices.Clone(c.skipped) }

// Dropped returns the fields imported templates went without, in load
// order.
func (c *Catalog) Dropped() []Dropped { return slices.Clone(c.dropped) }

// loader accumulates one Load call's results.
type loader struct {
	types   map[string]domain.Type
	origin  map[string]string // type ID -> where it was defined, for messages
	skipped []Skipped
	dropped []Dropped
	logger  *slog.Logger
}

func (l *loader) addBuiltin() error {
	names, err := fs.Glob(builtinFS, "builtin/*.yaml")
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		data, err := builtinFS.ReadFile(name)
		if err != nil {
			return err
		}
		t, err := ParseType(data)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if prev, ok := l.origin[t.ID]; ok {
			return fmt.Errorf("%s: type %q is already defined by %s", name, t.ID, prev)
		}
		t.Source = SourceBuiltin
		l.types[t.ID] = t
		l.origin[t.ID] = SourceBuiltin
	}
	return nil
}

func (l *loader) addDir(dir string) error {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return err
	}
	var yamls, jsons []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || e.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".yaml", ".yml":
			yamls = append(yamls, filepath.Join(dir, name))
		case ".json":
			jsons = append(jsons, filepath.Join(dir, name))
		}
	}
	for _, file := range yamls {
		if err := l.addTypeFile(file); err != nil {
			return err
		}
	}
	for _, file := range jsons {
		if err := l.addPortainerFile(file); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) addTypeFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	t, err := ParseType(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	switch prev, ok := l.origin[t.ID]; {
	case ok && prev == SourceBuiltin:
		l.logger.Info("catalog: type file replaces builtin type", "id", t.ID, "file", file)
	case ok:
		return fmt.Errorf("%s: type %q is already defined by %s: %w", file, t.ID, prev, domain.ErrConflict)
	}
	t.Source = SourceDir
	l.types[t.ID] = t
	l.origin[t.ID] = file
	return nil
}

func (l *loader) addPortainerFile(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	r, err := importPortainer(data, file)
	if err != nil {
		return err
	}
	for _, rn := range r.renamed {
		l.logger.Info("catalog: Portainer title used twice, type renamed", "source", rn.Source, "title", rn.Title, "id", rn.ID)
	}
	l.skipped = append(l.skipped, r.skipped...)
	for i, t := range r.types {
		if prev, ok := l.origin[t.ID]; ok {
			l.skipped = append(l.skipped, Skipped{
				Source: r.where[i],
				Title:  t.Title,
				Reason: fmt.Sprintf("id %q is already defined by %s", t.ID, prev),
			})
			continue
		}
		l.types[t.ID] = t
		l.origin[t.ID] = r.where[i]
		l.dropped = append(l.dropped, r.dropped[i]...)
	}
	return nil
}
