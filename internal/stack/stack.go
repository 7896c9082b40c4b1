// Package stack reads a compose file into moor's own service definitions:
// one catalog-like type per service, with its environment, replicas,
// published ports, dependencies and a hash to tell changed services from
// unchanged ones. It is pure: no database, no Docker, no file system.
// docs/stacks.md lists the keys it maps and those it refuses.
package stack

import (
	"context"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/moorhq/moor/internal/domain"
)

// MaxComposeBytes bounds a compose file; real ones are a few kilobytes.
const MaxComposeBytes = 1 << 20

// TypeID and Source are what every service's synthesized type says.
const (
	TypeID = "compose"
	Source = "compose"
)

// Dependency conditions, as compose names them.
const (
	ServiceStarted               = types.ServiceConditionStarted
	ServiceHealthy               = types.ServiceConditionHealthy
	ServiceCompletedSuccessfully = types.ServiceConditionCompletedSuccessfully
	composeFile                  = "compose.yaml" // the name errors would otherwise show
)

// Stack is a parsed compose file.
type Stack struct {
	Name     string
	Services []Service // in start order: dependencies first
	// Volumes are the named volumes the file declares, by their moor names
	// (VolumeSpec.Name), sorted.
	Volumes []string
}

// Service is one compose service as moor deploys it: a container of the
// project named Container.
type Service struct {
	Name      string // the compose service name, a DNS label; other services reach it by it
	Container string // STACK-SERVICE
	// Type is what the container is created from, as a catalog type would
	// be: ID "compose", Source "compose", validated by catalog.Validate.
	// Type.Env declares the variables (names only, secret by name as the
	// catalog decides); their values are in Env.
	Type domain.Type
	// Env are the environment values, interpolated; a variable set to ""
	// is kept (pass it as left empty to catalog.Resolve, which otherwise
	// takes "" for "not given").
	Env      map[string]string
	Replicas int // deploy.replicas or scale, default 1
	Publish  []domain.PublishRequest
	// DependsOn are the services to start first, by name.
	DependsOn []Dependency
	// Hash is the sha256 (hex) of what the container is created from:
	// Type, Env and Publish. Equal definitions hash equal whatever their
	// key order, list order of ports, volumes, devices and capabilities,
	// or syntax (short or long); any other change changes it. Replicas and
	// DependsOn are left out: a new replica count is a scale, not a new
	// definition, and the order of starts does not change a container.
	Hash string
	// AdminOnly says why deploying the service needs an admin, one phrase
	// per key ("services.web.privileged: privileged mode"); empty when an
	// operator may deploy it. It is non-empty exactly when
	// Type.RequiresAdmin().
	AdminOnly []string
}

// Dependency is a service to start before another.
type Dependency struct {
	Service string
	// Condition is ServiceStarted, ServiceHealthy or
	// ServiceCompletedSuccessfully.
	Condition string
}

// Parse reads a compose file's text (YAML) and returns its services in
// start order (dependencies first; by name among equals). name is the
// stack's name, a DNS label. Errors wrap domain.ErrInvalid and name the
// field: "services.web.cap_add", "volumes.data.driver".
//
// Variables are interpolated from an empty environment: ${X:-d} gives d,
// ${X} gives "" (as compose does for an unset variable), ${X:?msg} is an
// error naming the field.
func Parse(ctx context.Context, name, compose string) (Stack, error) {
	if err := domain.ValidateName(name); err != nil {
		return Stack{}, err
	}
	if len(compose) > MaxComposeBytes {
		return Stack{}, domain.Invalid("compose", "must be at most %d bytes", MaxComposeBytes)
	}
	raw, err := decodeRaw(compose)
	if err != nil {
		return Stack{}, err
	}
	if err := checkKeys(raw); err != nil {
		return Stack{}, err
	}
	project, err := load(ctx, name, compose)
	if err != nil {
		return Stack{}, err
	}
	volumes, err := volumeNames(project)
	if err != nil {
		return Stack{}, err
	}
	st := Stack{Name: name, Volumes: sortedValues(volumes)}
	usedBy := map[string]string{} // volume -> the service mounting it
	for _, svcName := range order(project) {
		svc, err := convert(name, project.Services[svcName], volumes, usedBy)
		if err != nil {
			return Stack{}, err
		}
		st.Services = append(st.Services, svc)
	}
	return st, nil
}

// decodeRaw reads the file as written, for checkKeys.
func decodeRaw(compose string) (map[string]any, error) {
	dec := yaml.NewDecoder(strings.NewReader(compose))
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, domain.Invalid("compose", "is empty")
		}
		return nil, domain.Invalid("compose", "is not a compose file: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		// compose-go would merge further documents as override files.
		return nil, domain.Invalid("compose", "must be one YAML document")
	}
	return raw, nil
}

// load runs compose-go, the reference parser, on the text alone: no
// working directory, no environment, no include, extends or env files.
func load(ctx context.Context, name, compose string) (*types.Project, error) {
	details := types.ConfigDetails{
		ConfigFiles: []types.ConfigFile{{Filename: composeFile, Content: []byte(compose)}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName(name, true)
		// A relative bind path would be made absolute against a directory
		// that means nothing here: kept as written, convert refuses it.
		o.ResolvePaths = false
		o.SkipInclude, o.SkipExtends = true, true
		loader.WithDiscardEnvFiles(o)
		o.Interpolate.Substitute = func(s string, m template.Mapping) (string, error) {
			// An unset variable is no news worth a log line per request.
			return template.SubstituteWithOptions(s, m, template.WithoutLogging)
		}
	})
	if err != nil {
		return nil, composeError(err)
	}
	return p, nil
}

var (
	interpolateRE = regexp.MustCompile(`^error while interpolating (\S+): (.*)$`)
	serviceRE     = regexp.MustCompile(`^service "?([a-z0-9-]+)"? (.*)$`)
)

// composeError makes a compose-go error a field error, naming the field
// when compose-go does.
func composeError(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	msg := strings.TrimSpace(err.Error())
	msg = strings.TrimPrefix(msg, "validating "+composeFile+": ")
	msg = strings.TrimPrefix(msg, "failed to parse "+composeFile+": ")
	msg = strings.TrimSuffix(msg, ": invalid compose project")
	if m := interpolateRE.FindStringSubmatch(msg); m != nil {
		return domain.Invalid(m[1], "%s", m[2])
	}
	if m := serviceRE.FindStringSubmatch(msg); m != nil {
		return domain.Invalid("services."+m[1], "%s", m[2])
	}
	if strings.HasPrefix(msg, "services.") {
		// "services.web.ports must be a array", "services.web: can't set ..."
		field, rule, _ := strings.Cut(msg, " ")
		return domain.Invalid(strings.TrimSuffix(field, ":"), "%s", rule)
	}
	return domain.Invalid("compose", "%s", msg)
}

// order is the start order: a service after those it depends on, by name
// among those ready together (checkKeys refused circles).
func order(p *types.Project) []string {
	waiting := map[string]int{}
	dependents := map[string][]string{}
	for name, s := range p.Services {
		waiting[name] = len(s.DependsOn)
		for dep := range s.DependsOn {
			dependents[dep] = append(dependents[dep], name)
		}
	}
	var ready, out []string
	for name, n := range waiting {
		if n == 0 {
			ready = append(ready, name)
		}
	}
	for len(ready) > 0 {
		slices.Sort(ready)
		next := ready[0]
		ready = ready[1:]
		out = append(out, next)
		for _, d := range dependents[next] {
			if waiting[d]--; waiting[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	return out
}

// volumeNames maps the declared volumes' compose names to moor's: a DNS
// label, since moor's Docker volume names use '_' as a separator.
func volumeNames(p *types.Project) (map[string]string, error) {
	out := map[string]string{}
	taken := map[string]string{}
	for _, name := range sortedKeys(p.Volumes) {
		field := "volumes." + name
		moor := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
		switch {
		case !domain.IsLabel(moor):
			return nil, domain.Invalid(field, "the volume name must be at most %d letters, digits, '-', '_' or '.', starting and ending with a letter or digit", domain.MaxNameLength)
		case taken[moor] != "":
			return nil, domain.Invalid(field, "is the same name as volume %q to moor, which names volumes in lower case with '-' for '_' and '.': rename one", taken[moor])
		}
		taken[moor] = name
		out[name] = moor
	}
	return out, nil
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}
