// Package yaegiload loads moor's provider plugin the way Traefik v3 does
// (pkg/plugins: manifest checks, a Yaegi interpreter with the standard
// library's symbols only, CreateConfig, settings, a wrapper around New), for
// tests and benchmarks. Traefik itself is not needed.
package yaegiload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"go.yaml.in/yaml/v3"
)

// ModuleName is the plugin's module name (experimental.localPlugins.*.moduleName).
const ModuleName = "github.com/moorhq/moor/traefik/moorprovider"

// PP is Traefik's provider plugin interface (pkg/plugins.PP).
type PP interface {
	Init() error
	Provide(cfgChan chan<- json.Marshaler) error
	Stop() error
}

// _PP is the Yaegi wrapper of PP, as in Traefik.
type _PP struct {
	IValue   any
	WInit    func() error
	WProvide func(cfgChan chan<- json.Marshaler) error
	WStop    func() error
}

func (p _PP) Init() error                                 { return p.WInit() }
func (p _PP) Provide(cfgChan chan<- json.Marshaler) error { return p.WProvide(cfgChan) }
func (p _PP) Stop() error                                 { return p.WStop() }

// Manifest is the part of .traefik.yml Traefik reads.
type Manifest struct {
	DisplayName string         `yaml:"displayName"`
	Type        string         `yaml:"type"`
	Runtime     string         `yaml:"runtime"`
	Import      string         `yaml:"import"`
	BasePkg     string         `yaml:"basePkg"`
	Summary     string         `yaml:"summary"`
	UseUnsafe   bool           `yaml:"useUnsafe"`
	TestData    map[string]any `yaml:"testData"`
}

// Check applies Traefik's checks of a local provider plugin's manifest
// (checkLocalPluginManifest), plus: no unsafe.
func (m Manifest) Check() error {
	var errs []error
	if m.Type != "provider" {
		errs = append(errs, fmt.Errorf("type %q, want provider", m.Type))
	}
	if m.Runtime != "" && m.Runtime != "yaegi" {
		errs = append(errs, fmt.Errorf("runtime %q", m.Runtime))
	}
	if m.Import == "" || !strings.HasPrefix(m.Import, ModuleName) {
		errs = append(errs, fmt.Errorf("import %q must start with the module name %q", m.Import, ModuleName))
	}
	if m.DisplayName == "" || m.Summary == "" || m.TestData == nil {
		errs = append(errs, errors.New("displayName, summary and testData are required"))
	}
	if m.UseUnsafe {
		errs = append(errs, errors.New("the plugin must not need unsafe"))
	}
	return errors.Join(errs...)
}

// Load lays the plugin source in srcDir out as goPath/src/<ModuleName> (as
// Traefik's plugins-local), checks its manifest, interprets it and calls
// New with settings decoded onto CreateConfig's result (field names
// matched case-insensitively, as mapstructure does).
func Load(srcDir, goPath string, settings map[string]string) (PP, error) {
	dst := filepath.Join(goPath, "src", filepath.FromSlash(ModuleName))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(srcDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(srcDir, e.Name()))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return nil, err
		}
	}
	raw, err := os.ReadFile(filepath.Join(dst, ".traefik.yml"))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf(".traefik.yml: %w", err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf(".traefik.yml: %w", err)
	}

	i := interp.New(interp.Options{GoPath: goPath, Env: os.Environ()})
	if err := i.Use(stdlib.Symbols); err != nil {
		return nil, err
	}
	// Traefik registers PP under its own package path; Yaegi finds an
	// interface's wrapper by the interface's real package path, which here
	// is this package's.
	ppPath := reflect.TypeOf((*PP)(nil)).Elem().PkgPath()
	if err := i.Use(map[string]map[string]reflect.Value{
		ppPath + "/plugins": {"PP": reflect.ValueOf((*PP)(nil)), "_PP": reflect.ValueOf((*_PP)(nil))},
	}); err != nil {
		return nil, err
	}
	if _, err := i.Eval(fmt.Sprintf(`import "%s"`, m.Import)); err != nil {
		return nil, fmt.Errorf("import plugin: %w", err)
	}
	basePkg := m.BasePkg
	if basePkg == "" {
		basePkg = strings.ReplaceAll(path.Base(m.Import), "-", "_")
	}
	vConfig, err := i.Eval(basePkg + `.CreateConfig()`)
	if err != nil {
		return nil, fmt.Errorf("CreateConfig: %w", err)
	}
	cfg := vConfig.Elem()
	for k, v := range settings {
		f := cfg.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, k) })
		if !f.IsValid() {
			return nil, fmt.Errorf("plugin configuration has no field %q", k)
		}
		f.SetString(v)
	}
	if _, err := i.Eval(`package wrapper

import (
	"context"

	` + basePkg + ` "` + m.Import + `"
	plugins "` + ppPath + `"
)

func NewWrapper(ctx context.Context, config *` + basePkg + `.Config, name string) (plugins.PP, error) {
	p, err := ` + basePkg + `.New(ctx, config, name)
	var pv plugins.PP = p
	return pv, err
}
`); err != nil {
		return nil, fmt.Errorf("wrapper: %w", err)
	}
	fnNew, err := i.Eval("wrapper.NewWrapper")
	if err != nil {
		return nil, err
	}
	results := fnNew.Call([]reflect.Value{reflect.ValueOf(context.Background()), vConfig, reflect.ValueOf("plugin-moor")})
	if len(results) > 1 && results[1].Interface() != nil {
		return nil, results[1].Interface().(error)
	}
	pp, ok := results[0].Interface().(PP)
	if !ok {
		return nil, fmt.Errorf("invalid provider type: %T", results[0].Interface())
	}
	return pp, nil
}
