package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/moorhq/moor/internal/domain"
)

// The Portainer template fields that reach outside the image's defaults
// (labels, network, hostname, devices) and the report of what an imported
// template lost. The mapping rules are in docs/catalog.md.

// Dropped is a field of an imported template that its type goes without:
// moor does not support it, or its value is unusable. The template itself
// was imported.
type Dropped struct {
	Source string `json:"source"` // file and position, e.g. "templates.json:templates[3]"
	Title  string `json:"title"`
	Field  string `json:"field"` // e.g. "network", "labels.traefik.enable", "cap_add"
	Reason string `json:"reason"`
}

// dropList collects one template's dropped fields.
type dropList []Dropped

func (d *dropList) add(field, reason string, args ...any) {
	*d = append(*d, Dropped{Field: field, Reason: fmt.Sprintf(reason, args...)})
}

// traefikPortRE matches the Traefik label that names the port a service
// is reached on: traefik.http.services.<name>.loadbalancer.server.port.
var traefikPortRE = regexp.MustCompile(`(?i)^traefik\.http\.services\.[^.]+\.loadbalancer\.server\.port$`)

// traefikPort returns the port a Traefik service label names, if the label
// is one and its value a port number.
func traefikPort(name, value string) (int, bool) {
	if !traefikPortRE.MatchString(name) {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil || n < 1 || n > 65535 {
		return 0, false
	}
	return n, true
}

// convertLabels returns the labels the container gets and the HTTP port a
// Traefik label names (0: none). Traefik's labels are not carried: moor
// routes through its own provider and Traefik reads no Docker labels, but
// the service port they give is the port the template's author routes to.
// moor's own labels (moor.*) and unusable ones are dropped too. As in
// Portainer, a label without a name is ignored and a later one of the same
// name wins.
func convertLabels(in []ptLabel, dropped *dropList) (map[string]string, int) {
	var out map[string]string
	port := 0
	for i, l := range in {
		name := strings.TrimSpace(l.Name)
		if name == "" {
			name = strings.TrimSpace(l.Label)
		}
		if name == "" {
			continue
		}
		field := "labels." + name
		if !printable(name) {
			field = fmt.Sprintf("labels[%d]", i)
		}
		if traefikPortRE.MatchString(name) {
			p, ok := traefikPort(name, l.Value)
			switch {
			case !ok:
				dropped.add(field, "%q is not a port number", l.Value)
			case port != 0 && port != p:
				dropped.add(field, "a second Traefik service port (%d); the HTTP port is %d, from the first", p, port)
			default:
				port = p
			}
			continue
		}
		if err := checkLabelKey(name); err != nil {
			dropped.add(field, "%s", ruleOf(err))
			continue
		}
		if err := checkText(field, l.Value, maxLabelValue, false); err != nil {
			dropped.add(field, "%s", ruleOf(err))
			continue
		}
		if _, ok := out[name]; !ok && len(out) == maxLabels {
			dropped.add(field, "more than %d labels", maxLabels)
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = l.Value
	}
	return out, port
}

// printable reports whether a name from a template can be shown in a log
// line as it is.
func printable(s string) bool {
	return len(s) <= 80 && strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) }) < 0
}

// ruleOf is the rule of a FieldError, without the field it names.
func ruleOf(err error) string {
	if fe, ok := err.(*domain.FieldError); ok {
		return fe.Rule
	}
	return err.Error()
}

// unsupportedPort says why a port entry parsePort refuses is one Docker
// takes all the same (a range, an sctp port), or "" when Docker refuses it
// too.
func unsupportedPort(s string) string {
	spec, proto, _ := strings.Cut(strings.TrimSpace(s), "/")
	if i := strings.LastIndex(spec, ":"); i >= 0 {
		spec = spec[i+1:]
	}
	first, last, isRange := strings.Cut(spec, "-")
	if !validPortNumber(first) || isRange && (!validPortNumber(last) || atoi(last) < atoi(first)) {
		return ""
	}
	switch strings.ToLower(proto) {
	case "sctp":
		return "sctp ports are not supported"
	case "", "tcp", "udp":
		if isRange {
			return "port ranges are not imported"
		}
	}
	return ""
}

func validPortNumber(s string) bool {
	n := atoi(s)
	return n >= 1 && n <= 65535
}

// atoi is strconv.Atoi, -1 for anything but a decimal number.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || strings.TrimLeft(s, "0123456789") != "" {
		return -1
	}
	return n
}

// convertNetwork keeps host networking. Any other network name is dropped:
// moor attaches containers to its own network (Portainer, too, falls back
// to another network when the named one does not exist).
func convertNetwork(network string, dropped *dropList) string {
	switch n := strings.TrimSpace(network); n {
	case "":
		return ""
	case domain.NetworkHost:
		return domain.NetworkHost
	default:
		dropped.add("network", "%q: moor attaches containers to its own network (only \"host\" is kept)", n)
		return ""
	}
}

// convertHostname keeps a host name that is a DNS label, in lower case
// (host names are case-insensitive).
func convertHostname(hostname string, dropped *dropList) string {
	h := strings.ToLower(strings.TrimSpace(hostname))
	if h == "" || domain.IsLabel(h) {
		return h
	}
	dropped.add("hostname", "%q is not a DNS label (lower-case letters, digits and '-', at most %d)", strings.TrimSpace(hostname), domain.MaxNameLength)
	return ""
}

// convertDevices reads "devices", which Portainer's format lacks (Portainer
// ignores it), in the two shapes template collections use: Docker's
// "HOST[:CONTAINER[:PERMISSIONS]]" strings and Yacht's {"host",
// "container"} objects. An entry that is neither, or names no device under
// /dev, is dropped; it never costs the template, which Portainer deploys
// without it.
func convertDevices(raw json.RawMessage, dropped *dropList) []domain.DeviceSpec {
	if isEmptyJSON(raw) {
		return nil
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		dropped.add("devices", "not a list")
		return nil
	}
	var out []domain.DeviceSpec
	for i, e := range entries {
		field := fmt.Sprintf("devices[%d]", i)
		d, ok := parseDevice(e)
		if !ok {
			dropped.add(field, `neither "HOST[:CONTAINER[:PERMISSIONS]]" nor {"host": ..., "container": ...}`)
			continue
		}
		// Checked here, one entry at a time: Validate would refuse the
		// whole template for one bad entry.
		candidate := domain.Type{Devices: append(slices.Clone(out), d)}
		if err := validateHostAccess(candidate); err != nil {
			dropped.add(field, "%s", ruleOf(err))
			continue
		}
		out = append(out, d)
	}
	return out
}

func parseDevice(raw json.RawMessage) (domain.DeviceSpec, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		parts := strings.Split(strings.TrimSpace(s), ":")
		d := domain.DeviceSpec{HostPath: parts[0]}
		switch len(parts) {
		case 1:
		case 2:
			// Docker reads "HOST:rw" as permissions, "HOST:/dev/x" as a path.
			if strings.HasPrefix(parts[1], "/") {
				d.ContainerPath = parts[1]
			} else {
				d.Permissions = parts[1]
			}
		case 3:
			d.ContainerPath, d.Permissions = parts[1], parts[2]
		default:
			return d, false
		}
		return normalizeDevice(d), d.HostPath != ""
	}
	var o struct {
		Host        string `json:"host"`
		Container   string `json:"container"`
		Permissions string `json:"permissions"`
	}
	if json.Unmarshal(raw, &o) != nil || strings.TrimSpace(o.Host) == "" {
		return domain.DeviceSpec{}, false
	}
	return normalizeDevice(domain.DeviceSpec{
		HostPath: strings.TrimSpace(o.Host), ContainerPath: strings.TrimSpace(o.Container), Permissions: strings.TrimSpace(o.Permissions),
	}), true
}

// normalizeDevice leaves out what says nothing: a container path equal to
// the host path, and "rwm", the default permissions.
func normalizeDevice(d domain.DeviceSpec) domain.DeviceSpec {
	if d.ContainerPath == d.HostPath {
		d.ContainerPath = ""
	}
	if d.Permissions == "rwm" {
		d.Permissions = ""
	}
	return d
}

// templateKeys are the template keys convertTemplate reads, or has no use
// for by design: id (the template's number in the file), name (the
// default container name: a moor user names each container) and
// maintainer (found in collections) describe the template, not the
// container; repository and stackfile belong to stacks.
var templateKeys = map[string]bool{
	"type": true, "title": true, "description": true, "note": true, "categories": true,
	"platform": true, "logo": true, "image": true, "registry": true, "command": true,
	"env": true, "ports": true, "volumes": true, "privileged": true, "interactive": true,
	"restart_policy": true, "network": true, "hostname": true, "labels": true, "devices": true,
	"id": true, "name": true, "maintainer": true, "repository": true, "stackfile": true,
}

// unsupportedKeys say why a key Portainer knows is not imported.
var unsupportedKeys = map[string]string{
	"administrator_only": "moor decides who may deploy a type from what it does (host paths, host networking, devices and privileged mode need an admin)",
	"hosts":              "extra /etc/hosts entries are not supported",
}

// unknownFields reports the keys of a template that convertTemplate does
// not read and that hold something, in key order. Keys match in any case,
// as encoding/json matches them (Portainer's decoder too).
func unknownFields(raw json.RawMessage) []Dropped {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil {
		return nil
	}
	var out dropList
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if templateKeys[strings.ToLower(k)] || isEmptyJSON(keys[k]) {
			continue
		}
		field := k
		switch {
		case k == "":
			field = "(the empty key)"
		case !printable(k):
			field = fmt.Sprintf("(a key of %d bytes)", len(k))
		}
		if why, ok := unsupportedKeys[strings.ToLower(k)]; ok {
			out.add(field, "%s", why)
			continue
		}
		out.add(field, "not in Portainer's template format (Portainer ignores it too)")
	}
	return out
}

// isEmptyJSON reports whether raw is absent, null, false, "", [] or {}: a
// key that holds nothing loses nothing when it is dropped.
func isEmptyJSON(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "false", `""`, "[]", "{}":
		return true
	}
	return false
}
