package stack

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moorhq/moor/internal/domain"
)

// keys is a level of the supported-key table: a key moor maps, and the
// table of the keys allowed inside its value (nil: a scalar or a list of
// scalars, whose values the mapping checks).
type keys map[string]keys

// serviceKeys are the service keys moor maps, docs/stacks.md says how.
// Every other key of a service is refused: a key moor cannot honour must
// never be dropped without a word.
var serviceKeys = keys{
	"image":       nil,
	"command":     nil,
	"environment": nil,
	"ports":       nil, // long syntax entries: portKeys
	"expose":      nil,
	"volumes":     nil, // long syntax entries: volumeKeys
	"healthcheck": {"test": nil, "interval": nil, "timeout": nil, "retries": nil, "start_period": nil, "disable": nil},
	"deploy": {
		"replicas":       nil,
		"resources":      {"limits": {"memory": nil, "cpus": nil}},
		"restart_policy": {"condition": nil},
	},
	"scale":        nil,
	"depends_on":   nil, // long syntax entries: dependsOnKeys
	"restart":      nil,
	"mem_limit":    nil,
	"cpus":         nil,
	"privileged":   nil,
	"devices":      nil, // long syntax entries: deviceKeys
	"labels":       nil,
	"network_mode": nil,
	"hostname":     nil,
	"stdin_open":   nil,
	"tty":          nil,
	"cap_add":      nil,
	"cap_drop":     nil,
}

// Keys of the entries of lists whose long syntax is a mapping.
var (
	portKeys      = keys{"target": nil, "published": nil, "host_ip": nil, "protocol": nil, "mode": nil, "name": nil, "app_protocol": nil}
	volumeKeys    = keys{"type": nil, "source": nil, "target": nil, "read_only": nil}
	deviceKeys    = keys{"source": nil, "target": nil, "permissions": nil}
	dependsOnKeys = keys{"condition": nil}
)

// topKeys are the top-level keys moor reads; x-* extensions are allowed
// anywhere (they are YAML anchors' usual home).
var topKeys = map[string]bool{"services": true, "volumes": true, "name": true, "version": true}

// why says why moor refuses the keys people often write; the others get
// the general words of notSupported.
var why = map[string]string{
	"build":          "moor does not build images yet: build and push the image, then give it as image",
	"container_name": "moor names the container STACK-SERVICE itself, and other services reach it by the service name",
	"links":          "services reach each other by service name already; depends_on orders their start",
	"external_links": "services reach each other by service name; containers outside the project are not reachable by links",
	"networks":       "moor puts every service of a project on the project's own network, where services reach each other by service name",
	"env_file":       "moor reads the compose file alone, not files beside it: move the variables into environment",
	"label_file":     "moor reads the compose file alone, not files beside it: move the labels into labels",
	"extends":        "moor reads the compose file alone: write the service out in full",
	"include":        "moor reads the compose file alone: write the services out in full",
	"secrets":        "use environment: variables whose names look like credentials are stored encrypted",
	"configs":        "moor reads the compose file alone; use environment or a volume",
	"entrypoint":     "moor keeps the image's entrypoint; give arguments with command",
	"extra_hosts":    "moor's DNS names the services; extra /etc/hosts entries are not supported",
	"profiles":       "moor deploys every service of the stack",
	"start_interval": "moor's health checks have no start interval",
	"required":       "every service a service depends on must be in the stack",
	"restart":        "moor does not restart a service when one it depends on restarts",
}

func notSupported(field, key string) error {
	if w, ok := why[key]; ok {
		return domain.Invalid(field, "is not supported by moor: %s", w)
	}
	return domain.Invalid(field, "is not supported by moor (docs/stacks.md lists the keys it maps): remove it")
}

// checkKeys refuses what moor does not map, reading the file as written,
// before compose-go loads it: compose-go fills defaults, and would read
// env_file, include and extends files from the disk.
func checkKeys(raw map[string]any) error {
	for _, k := range sortedKeys(raw) {
		if !topKeys[k] && !isExtension(k) {
			return notSupported(k, k)
		}
	}
	services, _ := raw["services"].(map[string]any)
	if len(services) == 0 {
		return domain.Invalid("services", "is required: at least one service")
	}
	for _, name := range sortedKeys(services) {
		field := "services." + name
		if !domain.IsLabel(name) {
			return domain.Invalid(field, "the service name must be a DNS label (lower-case letters, digits and '-', starting and ending with a letter or digit): it names the service's container and other services reach it by it")
		}
		svc, ok := services[name].(map[string]any)
		if !ok {
			continue // compose-go's schema says what it should be
		}
		if _, ok := svc["image"]; !ok {
			if _, build := svc["build"]; build {
				return notSupported(field+".build", "build")
			}
			return domain.Invalid(field+".image", "is required")
		}
		if err := checkLevel(field, svc, serviceKeys); err != nil {
			return err
		}
		lists := []struct {
			key   string
			table keys
		}{{"ports", portKeys}, {"volumes", volumeKeys}, {"devices", deviceKeys}}
		for _, l := range lists {
			items, _ := svc[l.key].([]any)
			for i, item := range items {
				if m, ok := item.(map[string]any); ok {
					if err := checkLevel(fmt.Sprintf("%s.%s[%d]", field, l.key, i), m, l.table); err != nil {
						return err
					}
				}
			}
		}
		deps, _ := svc["depends_on"].(map[string]any)
		for _, dep := range sortedKeys(deps) {
			if m, ok := deps[dep].(map[string]any); ok {
				if err := checkLevel(field+".depends_on."+dep, m, dependsOnKeys); err != nil {
					return err
				}
			}
		}
	}
	if vols, ok := raw["volumes"].(map[string]any); ok {
		for _, name := range sortedKeys(vols) {
			m, _ := vols[name].(map[string]any)
			for _, k := range sortedKeys(m) {
				if !isExtension(k) {
					return domain.Invalid("volumes."+name+"."+k, "is not supported by moor: moor creates the volumes of a stack itself, on the local driver, one per container replica")
				}
			}
		}
	}
	return checkDependencies(services)
}

// checkLevel checks the keys of m against table, and the levels below.
func checkLevel(field string, m map[string]any, table keys) error {
	for _, k := range sortedKeys(m) {
		if isExtension(k) {
			continue
		}
		sub, ok := table[k]
		if !ok {
			return notSupported(field+"."+k, k)
		}
		if inner, isMap := m[k].(map[string]any); isMap && sub != nil {
			if err := checkLevel(field+"."+k, inner, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkDependencies refuses depends_on naming a service the stack lacks,
// or going round in a circle, naming the circle.
func checkDependencies(services map[string]any) error {
	deps := map[string][]string{}
	for _, name := range sortedKeys(services) {
		svc, _ := services[name].(map[string]any)
		switch d := svc["depends_on"].(type) {
		case []any:
			for _, x := range d {
				if s, ok := x.(string); ok {
					deps[name] = append(deps[name], s)
				}
			}
		case map[string]any:
			deps[name] = sortedKeys(d)
		}
		for _, dep := range deps[name] {
			if _, ok := services[dep]; !ok {
				return domain.Invalid("services."+name+".depends_on", "names %q, which is not a service of the stack", dep)
			}
		}
		slices.Sort(deps[name])
	}
	// Depth-first, in name order, so the circle named is the same each time.
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var path []string
	var visit func(string) error
	visit = func(s string) error {
		switch state[s] {
		case done:
			return nil
		case visiting:
			i := slices.Index(path, s)
			circle := append(slices.Clone(path[i:]), s)
			return domain.Invalid("services."+s+".depends_on", "the services depend on each other in a circle: %s", strings.Join(circle, " -> "))
		}
		state[s] = visiting
		path = append(path, s)
		for _, d := range deps[s] {
			if err := visit(d); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[s] = done
		return nil
	}
	for _, name := range sortedKeys(services) {
		if err := visit(name); err != nil {
			return err
		}
	}
	return nil
}

func isExtension(k string) bool { return strings.HasPrefix(k, "x-") }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
