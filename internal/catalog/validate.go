package catalog

import (
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/distribution/reference"

	"github.com/moorhq/moor/internal/domain"
)

// Limits on type fields. They keep a type small enough to store, render and
// send over a websocket without surprises; real types are far below them.
const (
	maxTitle       = 200
	maxDescription = 8192
	maxImage       = 512
	maxPattern     = 1024
	maxLabels      = 64
	maxLabelKey    = 255
	maxLabelValue  = 4096
	// MaxValueBytes bounds one environment value (defaults and user input).
	MaxValueBytes = 4096
)

// envNameRE is what Docker takes as a variable name: no '=', no
// whitespace or control characters. Shell scripts read only the POSIX
// subset ([A-Za-z_][A-Za-z0-9_]*), but images written in other languages
// read others ("VENDOR-ID"), and Portainer deploys them.
var envNameRE = regexp.MustCompile(`^[^=\s\x00-\x1f\x7f]{1,256}$`)

// Generators moor knows for EnvSpec.Generate.
const (
	GeneratePassword = "password"
	GenerateHex32    = "hex32"
)

// Hash formats moor knows for EnvSpec.Hash.
const (
	HashBcrypt   = "bcrypt"
	HashArgon2id = "argon2id"
)

// Validate checks t against the catalog rules. The first broken rule is
// returned as a *domain.FieldError naming the field (a JSON path such as
// "ports[0].port") and the rule; it unwraps to domain.ErrInvalid.
//
// Empty protocol and restart policy are accepted: they mean "tcp" and
// "always", which ParseType and ImportPortainer fill in.
func Validate(t domain.Type) error {
	checks := []func(domain.Type) error{
		validateMeta,
		validateImage,
		validatePorts,
		validateEnv,
		validateVolumes,
		validateRuntime,
		validateHostAccess,
		validateCapabilities,
		validateLabels,
		validateRouting,
		validateBackup,
	}
	for _, check := range checks {
		if err := check(t); err != nil {
			return err
		}
	}
	return nil
}

func validateMeta(t domain.Type) error {
	switch {
	case t.ID == "":
		return domain.Invalid("id", "is required")
	case len(t.ID) > domain.MaxNameLength:
		return domain.Invalid("id", "must be at most %d characters", domain.MaxNameLength)
	case !domain.IsLabel(t.ID):
		return domain.Invalid("id", "must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit")
	}
	if strings.TrimSpace(t.Title) == "" {
		return domain.Invalid("title", "is required")
	}
	if err := checkText("title", t.Title, maxTitle, false); err != nil {
		return err
	}
	if err := checkText("description", t.Description, maxDescription, true); err != nil {
		return err
	}
	if t.Logo != "" && !isWebURL(t.Logo) {
		return domain.Invalid("logo", "must be an absolute http or https URL")
	}
	seen := make(map[string]bool, len(t.Categories))
	for i, c := range t.Categories {
		field := fmt.Sprintf("categories[%d]", i)
		if !domain.IsLabel(c) {
			return domain.Invalid(field, "must be lower-case letters, digits and '-' (got %q)", c)
		}
		if seen[c] {
			return domain.Invalid(field, "duplicates %q", c)
		}
		seen[c] = true
	}
	return nil
}

// validateImage accepts what `docker pull` accepts. The reference parser
// rejects whitespace, upper-case repositories and option-like strings
// ("-x"), so an image can never smuggle anything into an engine call.
func validateImage(t domain.Type) error {
	switch {
	case t.Image == "":
		return domain.Invalid("image", "is required")
	case len(t.Image) > maxImage:
		return domain.Invalid("image", "must be at most %d characters", maxImage)
	case strings.IndexFunc(t.Image, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return domain.Invalid("image", "must not contain whitespace or control characters")
	}
	if _, err := reference.ParseNormalizedNamed(t.Image); err != nil {
		return domain.Invalid("image", "is not a valid image reference: %v", err)
	}
	return nil
}

// SameRepository accepts next as a new tag or digest of image, not another
// image (which would be another type, with other settings).
func SameRepository(image, next string) error {
	if err := validateImage(domain.Type{Image: next}); err != nil {
		return err
	}
	a, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return domain.Invalid("image", "cannot change: the current image %q is not a reference: %v", image, err)
	}
	b, _ := reference.ParseNormalizedNamed(next)
	if a.Name() != b.Name() {
		return domain.Invalid("image", "must be %s with another tag or digest (%s is another image: deploy a type of its own)",
			reference.FamiliarName(a), reference.FamiliarName(b))
	}
	return nil
}

func validatePorts(t domain.Type) error {
	names := make(map[string]bool, len(t.Ports))
	ports := make(map[string]bool, len(t.Ports))
	httpPorts := 0
	for i, p := range t.Ports {
		field := fmt.Sprintf("ports[%d]", i)
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if err := uniqueLabel(field+".name", p.Name, names); err != nil {
			return err
		}
		switch {
		case p.Port < 1 || p.Port > 65535:
			return domain.Invalid(field+".port", "must be between 1 and 65535")
		case proto != "tcp" && proto != "udp":
			return domain.Invalid(field+".protocol", "must be tcp or udp")
		case ports[fmt.Sprintf("%d/%s", p.Port, proto)]:
			return domain.Invalid(field+".port", "%d/%s is declared twice", p.Port, proto)
		case p.HTTP && proto != "tcp":
			// Traefik's HTTP routers only reach TCP ports.
			return domain.Invalid(field+".http", "needs protocol tcp")
		}
		names[p.Name] = true
		ports[fmt.Sprintf("%d/%s", p.Port, proto)] = true
		if p.HTTP {
			httpPorts++
		}
		if httpPorts > 1 {
			// A container has one host name, so Traefik routes it to one port.
			return domain.Invalid(field+".http", "only one port may be the HTTP port")
		}
	}
	return nil
}

func validateEnv(t domain.Type) error {
	seen := make(map[string]bool, len(t.Env))
	for i, e := range t.Env {
		field := fmt.Sprintf("env[%d]", i)
		switch {
		case e.Name == "":
			return domain.Invalid(field+".name", "is required")
		case !envNameRE.MatchString(e.Name):
			return domain.Invalid(field+".name", "must match %s (got %q)", envNameRE, e.Name)
		case seen[e.Name]:
			return domain.Invalid(field+".name", "duplicates %q", e.Name)
		}
		seen[e.Name] = true
		if err := validateEnvSpec(field, e); err != nil {
			return err
		}
	}
	return nil
}

func validateEnvSpec(field string, e domain.EnvSpec) error {
	if err := checkText(field+".label", e.Label, maxTitle, false); err != nil {
		return err
	}
	if err := checkText(field+".description", e.Description, maxDescription, true); err != nil {
		return err
	}
	switch e.Generate {
	case "", GeneratePassword, GenerateHex32:
	default:
		return domain.Invalid(field+".generate", "must be %q or %q", GeneratePassword, GenerateHex32)
	}
	if e.Generate != "" && (e.Default != "" || len(e.Choices) > 0) {
		// A generated value is unpredictable by design: a default or a
		// fixed list would silently win over it or be broken by it.
		return domain.Invalid(field+".generate", "cannot be combined with default or choices")
	}
	if e.Generate != "" && e.Secret != nil && !*e.Secret {
		return domain.Invalid(field+".secret", "cannot be false for a generated value: generated values are always secret")
	}
	switch e.Hash {
	case "", HashBcrypt, HashArgon2id:
	default:
		return domain.Invalid(field+".hash", "must be %q or %q", HashBcrypt, HashArgon2id)
	}
	if e.Hash != "" && (e.Generate != "" || len(e.Choices) > 0 || e.Pattern != "") {
		// The user gives the password and keeps it: moor stores only the
		// hash, so it cannot generate one the user would never see.
		return domain.Invalid(field+".hash", "cannot be combined with generate, choices or pattern")
	}
	var pattern *regexp.Regexp
	if e.Pattern != "" {
		var err error
		if pattern, err = compilePattern(e.Pattern); err != nil {
			return domain.Invalid(field+".pattern", "does not compile: %v", err)
		}
	}
	choices := make(map[string]bool, len(e.Choices))
	for j, c := range e.Choices {
		cf := fmt.Sprintf("%s.choices[%d]", field, j)
		if c == "" {
			// An empty value means "not given" to Resolve, so it cannot be picked.
			return domain.Invalid(cf, "must not be empty")
		}
		if err := checkValue(cf, c); err != nil {
			return err
		}
		if choices[c] {
			return domain.Invalid(cf, "duplicates %q", c)
		}
		choices[c] = true
	}
	if e.Default == "" {
		return nil
	}
	if err := checkValue(field+".default", e.Default); err != nil {
		return err
	}
	if len(choices) > 0 && !choices[e.Default] {
		return domain.Invalid(field+".default", "must be one of %s", strings.Join(e.Choices, ", "))
	}
	if pattern != nil && !pattern.MatchString(e.Default) {
		return domain.Invalid(field+".default", "must match the pattern %s", e.Pattern)
	}
	return nil
}

// compilePattern anchors p: a pattern describes the whole value, as in an
// HTML form's pattern attribute, not a substring of it.
func compilePattern(p string) (*regexp.Regexp, error) {
	if len(p) > maxPattern {
		return nil, fmt.Errorf("longer than %d bytes", maxPattern)
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}

func validateVolumes(t domain.Type) error {
	names := make(map[string]bool, len(t.Volumes))
	paths := make(map[string]bool, len(t.Volumes))
	for i, v := range t.Volumes {
		field := fmt.Sprintf("volumes[%d]", i)
		if err := uniqueLabel(field+".name", v.Name, names); err != nil {
			return err
		}
		names[v.Name] = true
		if err := checkMountPath(field+".path", v.Path); err != nil {
			return err
		}
		if v.Path == "/" {
			return domain.Invalid(field+".path", "must not be /")
		}
		if paths[v.Path] {
			return domain.Invalid(field+".path", "%s is mounted twice", v.Path)
		}
		paths[v.Path] = true
		if v.HostPath != "" {
			if err := checkMountPath(field+".host_path", v.HostPath); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkMountPath wants an absolute, clean path: a relative or ".."-laden
// path means something different to Docker than it reads, and ':' would
// break the "src:dst:ro" bind syntax.
func checkMountPath(field, p string) error {
	switch {
	case p == "":
		return domain.Invalid(field, "is required")
	case !strings.HasPrefix(p, "/"):
		return domain.Invalid(field, "must be an absolute path")
	case path.Clean(p) != p:
		return domain.Invalid(field, "must be a clean path (no '..', '.', '//' or trailing '/'): %s", path.Clean(p))
	case strings.ContainsRune(p, ':'):
		return domain.Invalid(field, "must not contain ':'")
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return domain.Invalid(field, "must not contain control characters")
	}
	return nil
}

func validateRuntime(t domain.Type) error {
	if t.Restart != "" && !t.Restart.Valid() {
		return domain.Invalid("restart", "must be %s, %s or %s", domain.RestartAlways, domain.RestartOnFailure, domain.RestartNever)
	}
	r := t.Resources
	switch {
	case r.MemoryMB < 0:
		return domain.Invalid("resources.memory_mb", "must not be negative")
	case r.MemoryMB > 0 && r.MemoryMB < 6:
		// Docker refuses memory limits below 6 MB.
		return domain.Invalid("resources.memory_mb", "must be 0 (no limit) or at least 6")
	case math.IsNaN(r.CPUs) || math.IsInf(r.CPUs, 0) || r.CPUs < 0:
		return domain.Invalid("resources.cpus", "must be a non-negative number")
	}
	for i, arg := range t.Command {
		if strings.ContainsRune(arg, 0) {
			return domain.Invalid(fmt.Sprintf("command[%d]", i), "must not contain NUL")
		}
	}
	if t.Health != nil {
		return validateHealth(*t.Health)
	}
	return nil
}

// validateHostAccess checks the fields that reach the host or name the
// container on it: network, hostname and devices.
func validateHostAccess(t domain.Type) error {
	if t.Network != "" && t.Network != domain.NetworkHost {
		// moor attaches every other container to its own network: another
		// network name would be ignored, or reach a network moor does not
		// manage.
		return domain.Invalid("network", "must be empty (moor's network) or %q (got %q)", domain.NetworkHost, t.Network)
	}
	if t.Hostname != "" && !domain.IsLabel(t.Hostname) {
		return domain.Invalid("hostname", "must be a DNS label of at most %d characters: lower-case letters, digits and '-', starting and ending with a letter or digit (got %q)", domain.MaxNameLength, t.Hostname)
	}
	targets := make(map[string]bool, len(t.Devices))
	for i, d := range t.Devices {
		field := fmt.Sprintf("devices[%d]", i)
		if err := checkDevicePath(field+".host_path", d.HostPath); err != nil {
			return err
		}
		target := d.ContainerPath
		if target == "" {
			target = d.HostPath
		} else if err := checkDevicePath(field+".container_path", target); err != nil {
			return err
		}
		if targets[target] {
			return domain.Invalid(field+".container_path", "%s is given twice", target)
		}
		targets[target] = true
		if !validPermissions(d.Permissions) {
			return domain.Invalid(field+".permissions", "must be empty (rwm) or r, w and m, each at most once (got %q)", d.Permissions)
		}
	}
	return nil
}

// capabilityRE is a Linux capability name as Docker takes it ("NET_ADMIN",
// "CAP_NET_ADMIN", "ALL"): anything else would fail at container create.
var capabilityRE = regexp.MustCompile(`^(CAP_)?[A-Z][A-Z_]{0,63}$`)

// validateCapabilities checks cap_add and cap_drop: known shape, each
// capability once per list (CAP_X and X are the same one).
func validateCapabilities(t domain.Type) error {
	for _, list := range []struct {
		field string
		caps  []string
	}{{"cap_add", t.CapAdd}, {"cap_drop", t.CapDrop}} {
		seen := make(map[string]bool, len(list.caps))
		for i, c := range list.caps {
			field := fmt.Sprintf("%s[%d]", list.field, i)
			if !capabilityRE.MatchString(c) {
				return domain.Invalid(field, "must be a capability name in upper case, such as NET_ADMIN or ALL (got %q)", c)
			}
			name := strings.TrimPrefix(c, "CAP_")
			if seen[name] {
				return domain.Invalid(field, "duplicates %s", name)
			}
			seen[name] = true
		}
	}
	return nil
}

// checkDevicePath wants a mount path under /dev: a device node is all
// `--device` is for.
func checkDevicePath(field, p string) error {
	if err := checkMountPath(field, p); err != nil {
		return err
	}
	if !strings.HasPrefix(p, "/dev/") {
		return domain.Invalid(field, "must be a path under /dev/ (got %q)", p)
	}
	return nil
}

func validPermissions(p string) bool {
	if len(p) > 3 {
		return false
	}
	for i, r := range p {
		if !strings.ContainsRune("rwm", r) || strings.ContainsRune(p[i+1:], r) {
			return false
		}
	}
	return true
}

// validateLabels keeps labels clear of moor's own (moor.*, which tie a
// container to its records) and of Traefik's (traefik.*): moor routes
// through its provider, and a label there would only mislead.
func validateLabels(t domain.Type) error {
	if len(t.Labels) > maxLabels {
		return domain.Invalid("labels", "must be at most %d", maxLabels)
	}
	keys := make([]string, 0, len(t.Labels))
	for k := range t.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first broken rule is the same every time
	for _, k := range keys {
		if err := checkLabelKey(k); err != nil {
			return err
		}
		field := "labels." + k
		if err := checkText(field, t.Labels[k], maxLabelValue, false); err != nil {
			return err
		}
	}
	return nil
}

// checkLabelKey applies validateLabels' rules to one key.
func checkLabelKey(k string) error {
	field := "labels." + k
	switch {
	case k == "":
		return domain.Invalid("labels", "a label name must not be empty")
	case len(k) > maxLabelKey:
		return domain.Invalid(field, "the name must be at most %d bytes", maxLabelKey)
	case !utf8.ValidString(k) || strings.IndexFunc(k, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '=' }) >= 0:
		return domain.Invalid(field, "the name must be valid UTF-8 without spaces, control characters or '='")
	case hasLabelPrefix(k, "moor"):
		return domain.Invalid(field, "moor.* labels are moor's own")
	case hasLabelPrefix(k, "traefik"):
		return domain.Invalid(field, "traefik.* labels are not used: moor routes through its own Traefik provider (see routing)")
	}
	return nil
}

// hasLabelPrefix reports whether k is in the namespace ns ("ns" or
// "ns.*"), case-insensitively as a careless reader would take it.
func hasLabelPrefix(k, ns string) bool {
	return strings.EqualFold(k, ns) || len(k) > len(ns) && strings.EqualFold(k[:len(ns)+1], ns+".")
}

// validateHealth mirrors what the Docker engine accepts, so a bad check
// fails at load time rather than at the first deployment.
func validateHealth(h domain.HealthSpec) error {
	if len(h.Test) == 0 {
		return domain.Invalid("health.test", "is required when health is set")
	}
	switch h.Test[0] {
	case "NONE":
		if len(h.Test) != 1 {
			return domain.Invalid("health.test", "NONE takes no arguments")
		}
	case "CMD":
		if len(h.Test) < 2 {
			return domain.Invalid("health.test", "CMD needs a command")
		}
	case "CMD-SHELL":
		if len(h.Test) != 2 {
			return domain.Invalid("health.test", "CMD-SHELL takes exactly one shell command")
		}
	default:
		return domain.Invalid("health.test[0]", "must be CMD, CMD-SHELL or NONE")
	}
	for i, arg := range h.Test {
		if arg == "" || strings.ContainsRune(arg, 0) {
			return domain.Invalid(fmt.Sprintf("health.test[%d]", i), "must be non-empty and contain no NUL")
		}
	}
	durations := []struct {
		field string
		d     time.Duration
	}{{"interval", h.Interval}, {"timeout", h.Timeout}, {"start_period", h.StartPeriod}}
	for _, d := range durations {
		if d.d != 0 && d.d < time.Millisecond {
			return domain.Invalid("health."+d.field, "must be 0 (Docker's default) or at least 1ms")
		}
	}
	if h.Retries < 0 {
		return domain.Invalid("health.retries", "must not be negative")
	}
	return nil
}

// checkText bounds a human-readable field. Control characters are refused
// because they garble logs and terminals; descriptions may span lines.
func checkText(field, s string, max int, multiline bool) error {
	if len(s) > max {
		return domain.Invalid(field, "must be at most %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return domain.Invalid(field, "must be valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return domain.Invalid(field, "must not contain control characters")
		}
	}
	return nil
}

// checkValue applies the rules every environment value obeys: Docker passes
// env as NUL-terminated strings, and other control characters are almost
// always an injection attempt or a copy-paste accident.
func checkValue(field, v string) error {
	if len(v) > MaxValueBytes {
		return domain.Invalid(field, "must be at most %d bytes", MaxValueBytes)
	}
	if !utf8.ValidString(v) {
		return domain.Invalid(field, "must be valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) && r != '\t' && r != '\n' {
			return domain.Invalid(field, "must not contain control characters other than tab and newline")
		}
	}
	return nil
}

func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}

// headerNameRE is an HTTP header field name (an RFC 9110 token, restricted).
var headerNameRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// validateRouting checks the type's Traefik options. Host names and paths
// end up inside Traefik rules, so they are [a-z0-9-] labels only; the rest
// ends up in middleware settings and is checked for what Traefik accepts.
func validateRouting(t domain.Type) error {
	r := t.Routing
	if r == nil {
		return nil
	}
	if len(r.Aliases) > 0 {
		// One alias would route one host name to every container of the type.
		return domain.Invalid("routing.aliases", "are set per container when it is created, not in a type")
	}
	if err := domain.ValidatePathPrefix("routing.path", r.Path); err != nil {
		return err
	}
	for i, line := range r.BasicAuth {
		field := fmt.Sprintf("routing.basic_auth[%d]", i)
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" || strings.IndexFunc(line, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0 {
			return domain.Invalid(field, "must be an htpasswd line user:hash without spaces")
		}
	}
	names := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		field := "routing.headers." + k
		if !headerNameRE.MatchString(k) {
			return domain.Invalid(field, "must be a header name of letters, digits and '-'")
		}
		if err := checkText(field, r.Headers[k], 1024, false); err != nil {
			return err
		}
	}
	for i, s := range r.IPAllowList {
		if err := domain.ValidateSourceRange(fmt.Sprintf("routing.ip_allow_list[%d]", i), s); err != nil {
			return err
		}
	}
	if rl := r.RateLimit; rl != nil {
		switch {
		case rl.Average < 1:
			return domain.Invalid("routing.rate_limit.average", "must be at least 1")
		case rl.Burst < 0:
			return domain.Invalid("routing.rate_limit.burst", "must not be negative")
		case rl.Period < 0 || rl.Period > 0 && rl.Period < time.Millisecond:
			return domain.Invalid("routing.rate_limit.period", "must be 0 (1s) or at least 1ms")
		}
	}
	if hc := r.HealthCheck; hc != nil {
		if !strings.HasPrefix(hc.Path, "/") || len(hc.Path) > 200 ||
			strings.IndexFunc(hc.Path, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) || c > unicode.MaxASCII }) >= 0 {
			return domain.Invalid("routing.health_check.path", "must be an absolute path of at most 200 printable ASCII characters")
		}
		if hc.Interval < 0 || hc.Interval > 0 && hc.Interval < time.Millisecond {
			return domain.Invalid("routing.health_check.interval", "must be 0 (Traefik's default) or at least 1ms")
		}
		if hc.Timeout < 0 || hc.Timeout > 0 && hc.Timeout < time.Millisecond {
			return domain.Invalid("routing.health_check.timeout", "must be 0 (Traefik's default) or at least 1ms")
		}
		if _, ok := t.HTTPPort(); !ok {
			return domain.Invalid("routing.health_check", "needs an HTTP port")
		}
	}
	seen := map[string]bool{}
	for i, tr := range r.TCP {
		field := fmt.Sprintf("routing.tcp[%d]", i)
		var port *domain.PortSpec
		for j := range t.Ports {
			if t.Ports[j].Name == tr.Port {
				port = &t.Ports[j]
			}
		}
		switch {
		case port == nil:
			return domain.Invalid(field+".port", "must name one of the type's ports (got %q)", tr.Port)
		case port.Protocol != "" && port.Protocol != "tcp":
			return domain.Invalid(field+".port", "must be a tcp port")
		case port.HTTP:
			return domain.Invalid(field+".port", "is the HTTP port, which has an HTTP router already")
		case seen[tr.Port]:
			return domain.Invalid(field+".port", "duplicates %q", tr.Port)
		case !domain.IsLabel(tr.EntryPoint):
			return domain.Invalid(field+".entry_point", "must be a Traefik entry point name of lower-case letters, digits and '-'")
		}
		seen[tr.Port] = true
	}
	return nil
}

// uniqueLabel checks that name is a DNS label not already in seen.
func uniqueLabel(field, name string, seen map[string]bool) error {
	switch {
	case name == "":
		return domain.Invalid(field, "is required")
	case !domain.IsLabel(name):
		return domain.Invalid(field, "must be a DNS label (got %q)", name)
	case seen[name]:
		return domain.Invalid(field, "duplicates %q", name)
	}
	return nil
}

// dumpFileRE is a dump's stored name: a plain file name, no directory.
var dumpFileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// maxDumpArgs bounds backup.dump; a real one has a handful of arguments.
const maxDumpArgs = 64

// validateBackup checks how a type quiesces for a backup. Pause and dump
// are exclusive: a dump runs inside the running container, and a paused
// container runs nothing (the engine refuses an exec in it).
func validateBackup(t domain.Type) error {
	b := t.Backup
	if b == nil {
		return nil
	}
	if b.Pause && len(b.Dump) > 0 {
		return domain.Invalid("backup", "pause and dump are exclusive: the dump runs inside the running container, which a pause would freeze")
	}
	if len(b.Dump) > maxDumpArgs {
		return domain.Invalid("backup.dump", "must have at most %d arguments", maxDumpArgs)
	}
	if len(b.Dump) > 0 && b.Dump[0] == "" {
		return domain.Invalid("backup.dump[0]", "is the command: it must not be empty")
	}
	for i, arg := range b.Dump {
		if strings.ContainsRune(arg, 0) || len(arg) > MaxValueBytes {
			return domain.Invalid(fmt.Sprintf("backup.dump[%d]", i), "must be at most %d bytes and contain no NUL", MaxValueBytes)
		}
	}
	switch {
	case b.DumpFile != "" && len(b.Dump) == 0:
		return domain.Invalid("backup.dump_file", "needs a dump command (backup.dump)")
	case b.DumpFile != "" && !dumpFileRE.MatchString(b.DumpFile):
		return domain.Invalid("backup.dump_file", "must be a file name of letters, digits, '.', '_' and '-' (no directory), at most 128 characters")
	}
	return nil
}
