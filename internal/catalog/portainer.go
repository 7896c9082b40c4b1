package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moorhq/moor/internal/domain"
)

// Portainer App Templates (v2 and v3) are read into moor types here.
// Portainer's format: https://docs.portainer.io/advanced/app-templates/format
//
// Mapping decisions (all deterministic, so the same file always yields the
// same catalog):
//   - Only type 1 (container) templates are imported. Types 2 (swarm
//     stack), 3 (compose stack) and 4 (edge stack) are skipped with reasons.
//   - Windows templates are skipped: moor runs Linux containers.
//   - interactive (Portainer opens stdin and a TTY, e.g. for "Ubuntu"
//     running /bin/bash) -> Interactive: moor does the same, so the shell
//     waits instead of exiting at once.
//   - ID: "portainer-" + the title as a DNS label; a title already used in
//     the same file gets "-2", "-3"... in file order.
//   - Ports: the container port of "8080:80/tcp", "80/tcp", "53/udp" or "80".
//     Portainer says nothing of which port speaks HTTP: chooseHTTPPort
//     (httpport.go) picks it, and the type says why (HTTPPortReason).
//   - Env: select -> choices, with the `default: true` option as default;
//     preset (a value Portainer hides and fixes) -> secret, and a preset
//     with a value keeps it as the only choice. Which names are secret,
//     which passwords are generated and which required: secret.go.
//   - Volumes: a named volume per container path, named after the path's
//     last element ("/var/lib/mysql" -> "mysql"), "volN" when that is not a
//     label; a "bind" path becomes HostPath (the type then needs the admin
//     role), a bare-name "bind" names the volume; ":ro"/":rw" after the
//     container path set ReadOnly (convertVolumes).
//   - Labels, network, hostname, devices and keys moor does not read: see
//     portainer_fields.go. What an imported template goes without is
//     reported (Dropped); a template is skipped only for what Portainer
//     cannot deploy either, or moor cannot run (stacks, Windows).
//   - Command: split like a shell would split words (quotes and backslash
//     escapes, no expansion), as Portainer itself does. It is not wrapped in
//     "sh -c": it is the CMD appended to the image's ENTRYPOINT, and many
//     images (minio, filebrowser) expect bare arguments there.
//   - restart_policy: always and unless-stopped -> always; on-failure; no.
//   - note (HTML) is appended to the description, both made text by
//     htmlToText (line breaks, list items and links kept), because it often
//     carries the default credentials.

type ptFile struct {
	Version   string            `json:"version"`
	Templates []json.RawMessage `json:"templates"`
}

type ptTemplate struct {
	Type          int        `json:"type"`
	Title         string     `json:"title"`
	Description   string     `json:"description"`
	Note          string     `json:"note"`
	Categories    []string   `json:"categories"`
	Platform      string     `json:"platform"`
	Logo          string     `json:"logo"`
	Image         string     `json:"image"`
	Registry      string     `json:"registry"`
	Command       string     `json:"command"`
	Env           []ptEnv    `json:"env"`
	Ports         []string   `json:"ports"`
	Volumes       []ptVolume `json:"volumes"`
	Privileged    bool       `json:"privileged"`
	Interactive   bool       `json:"interactive"`
	RestartPolicy string     `json:"restart_policy"`
	Network       string     `json:"network"`
	Hostname      string     `json:"hostname"`
	Labels        []ptLabel  `json:"labels"`
	// Devices is not in Portainer's format (Portainer ignores it); some
	// collections carry it in Yacht's or Docker's shape, read leniently.
	Devices json.RawMessage `json:"devices"`
	// Repository holds a stack template's compose file (types 2 and 3).
	Repository *ptRepository `json:"repository"`
}

// ptRepository is where a stack template's compose file lives.
type ptRepository struct {
	URL       string `json:"url"`
	Stackfile string `json:"stackfile"`
}

// ptLabel is a label as Portainer writes it ({name, value}); Yacht's
// templates, which Portainer collections often copy, say "label" for name.
type ptLabel struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Value string `json:"value"`
}

type ptEnv struct {
	Name        string     `json:"name"`
	Label       string     `json:"label"`
	Description string     `json:"description"`
	Default     string     `json:"default"`
	Preset      bool       `json:"preset"`
	Select      []ptChoice `json:"select"`
	// Type "container" asks for another container's name.
	Type string `json:"type"`
}

type ptChoice struct {
	Text    string `json:"text"`
	Value   string `json:"value"`
	Default bool   `json:"default"`
}

type ptVolume struct {
	Container string `json:"container"`
	Bind      string `json:"bind"`
	ReadOnly  bool   `json:"readonly"`
}

// renamed records a template whose ID got a suffix because its title was
// already taken in the same file.
type renamed struct {
	Source, Title, ID string
}

// portainerResult is what importPortainer makes of a file, with what Load
// needs to report: where each type came from and which IDs got a suffix.
type portainerResult struct {
	types   []domain.Type
	where   []string    // where[i] locates types[i]: "<source>:templates[<index>]"
	dropped [][]Dropped // dropped[i]: what types[i] was imported without
	skipped []Skipped
	renamed []renamed
}

// importPortainer converts a Portainer App Templates file (version "2" or
// "3") into validated moor types with Source "portainer", in file order.
// Templates that cannot be imported are returned as Skipped, with Source
// "<source>:templates[<index>]" and a reason. The error is for the file as
// a whole: not JSON, or not a v2/v3 templates file; it wraps
// domain.ErrInvalid.
func importPortainer(data []byte, source string) (portainerResult, error) {
	var f ptFile
	if err := json.Unmarshal(data, &f); err != nil {
		return portainerResult{}, fmt.Errorf("%s: %w", source, domain.Invalid("json", "not a Portainer App Templates file: %v", err))
	}
	if f.Version != "2" && f.Version != "3" {
		return portainerResult{}, fmt.Errorf("%s: %w", source, domain.Invalid("version", "must be \"2\" or \"3\" (Portainer App Templates), got %q", f.Version))
	}
	var r portainerResult
	taken := map[string]bool{}
	for i, raw := range f.Templates {
		where := fmt.Sprintf("%s:templates[%d]", source, i)
		t, title, dropped, err := convertTemplate(raw)
		if err == nil {
			err = Validate(t)
		}
		if err != nil {
			r.skipped = append(r.skipped, Skipped{Source: where, Title: title, Reason: err.Error()})
			continue
		}
		// The ID is made unique only now, so a skipped template never
		// takes a name from a later one.
		id := uniqueID(t.ID, taken)
		if id != t.ID {
			r.renamed = append(r.renamed, renamed{Source: where, Title: title, ID: id})
		}
		taken[id] = true
		t.ID = id
		for j := range dropped {
			dropped[j].Source, dropped[j].Title = where, title
		}
		r.types = append(r.types, t)
		r.where = append(r.where, where)
		r.dropped = append(r.dropped, dropped)
	}
	return r, nil
}

// convertTemplate maps one template. It also returns the title, as far as
// it could be read, for the skip report, and the fields the type leaves
// out (Field and Reason set).
//
// A template is refused whole only for what Portainer cannot deploy either:
// Portainer decodes the file into typed fields (a wrong type there fails
// the whole file for it) and hands the rest to Docker. What only moor
// cannot use is left out of the type and reported instead.
func convertTemplate(raw json.RawMessage) (domain.Type, string, []Dropped, error) {
	var p ptTemplate
	if err := json.Unmarshal(raw, &p); err != nil {
		var named struct{ Title string }
		_ = json.Unmarshal(raw, &named) // best effort: the title only labels the skip
		return domain.Type{}, cleanText(named.Title, false), nil, fmt.Errorf("malformed template: %v", err)
	}
	title := cleanText(p.Title, false)
	if err := checkTemplate(p); err != nil {
		return domain.Type{}, title, nil, err
	}
	var dropped dropList
	labels, labelPort := convertLabels(p.Labels, &dropped)
	ports, err := convertPorts(p.Ports, labelPort, &dropped)
	if err != nil {
		return domain.Type{}, title, nil, err
	}
	command, err := splitCommand(p.Command)
	if err != nil {
		return domain.Type{}, title, nil, fmt.Errorf("command: %v", err)
	}
	restart, err := convertRestart(p.RestartPolicy)
	if err != nil {
		return domain.Type{}, title, nil, err
	}
	volumes, err := convertVolumes(p.Volumes, &dropped)
	if err != nil {
		return domain.Type{}, title, nil, err
	}
	t := domain.Type{
		ID:          portainerID(title),
		Title:       cut(title, maxTitle, "title", &dropped),
		Description: cut(describe(p.Description, p.Note), maxDescription, "description", &dropped),
		Image:       imageRef(p.Registry, p.Image),
		Categories:  convertCategories(p.Categories),
		Ports:       ports,
		Env:         convertEnvs(p.Env, &dropped),
		Volumes:     volumes,
		Command:     command,
		Restart:     restart,
		Privileged:  p.Privileged,
		Source:      SourcePortainer,
	}
	if isWebURL(p.Logo) {
		t.Logo = p.Logo
	} else if strings.TrimSpace(p.Logo) != "" {
		dropped.add("logo", "not an absolute http or https URL")
	}
	t.Labels = labels
	t.Interactive = p.Interactive
	t.Network = convertNetwork(p.Network, &dropped)
	t.Hostname = convertHostname(p.Hostname, &dropped)
	t.Devices = convertDevices(p.Devices, &dropped)
	dropped = append(dropped, unknownFields(raw)...)
	if i, reason := chooseHTTPPort(t.Ports, labelPort); i >= 0 {
		t.Ports[i].HTTP = true
		t.Ports[i].Name = "http"
		t.HTTPPortReason = reason
	}
	return normalize(t), title, dropped, nil
}

// checkTemplate refuses what moor cannot run, before any mapping.
func checkTemplate(p ptTemplate) error {
	switch p.Type {
	case 1:
	case 2, 3:
		kind := map[int]string{2: "swarm stack", 3: "compose stack"}[p.Type]
		if r := p.Repository; r != nil && r.URL != "" {
			// Its compose file is elsewhere: moor fetches nothing from
			// other repositories (and none is reachable offline).
			return fmt.Errorf("type %d (%s): its compose file is in another repository (%s, %s), which moor does not fetch; "+
				"deploy it as a compose stack from that file (POST /api/v1/stacks, docs/stacks.md)", p.Type, kind, r.URL, r.Stackfile)
		}
		return fmt.Errorf("type %d (%s) is not supported without a compose file; deploy one as a compose stack (docs/stacks.md)", p.Type, kind)
	case 4:
		return errors.New("type 4 (edge stack) is not supported")
	default:
		return fmt.Errorf("type %d is not supported (only 1, container)", p.Type)
	}
	switch {
	case p.Platform != "" && !strings.EqualFold(p.Platform, "linux"):
		return fmt.Errorf("platform %q is not supported: moor runs Linux containers", p.Platform)
	case strings.TrimSpace(p.Title) == "":
		return errors.New("no title")
	case strings.TrimSpace(p.Image) == "":
		return errors.New("no image")
	}
	return nil
}

// portainerID derives the type ID from the title.
func portainerID(title string) string {
	const prefix = "portainer-"
	s := slug(title, domain.MaxNameLength-len(prefix))
	if s == "" {
		s = "template"
	}
	return prefix + s
}

// uniqueID returns base, or base with the first free "-N" suffix (N >= 2),
// shortened so the result stays a DNS label.
func uniqueID(base string, taken map[string]bool) string {
	if !taken[base] {
		return base
	}
	for n := 2; ; n++ {
		suffix := "-" + strconv.Itoa(n)
		stem := base
		if len(stem)+len(suffix) > domain.MaxNameLength {
			stem = strings.TrimRight(stem[:domain.MaxNameLength-len(suffix)], "-")
		}
		if id := stem + suffix; !taken[id] {
			return id
		}
	}
}

// slug lower-cases s and turns every run of other characters than [a-z0-9]
// into one '-', trimmed at both ends, at most max bytes long.
func slug(s string, max int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := b.String()
	if len(out) > max {
		out = out[:max]
	}
	return strings.Trim(out, "-")
}

// imageRef applies Portainer's optional registry field, which prefixes the
// image name.
func imageRef(registry, image string) string {
	image = strings.TrimSpace(image)
	registry = strings.TrimRight(strings.TrimSpace(registry), "/")
	if registry == "" || strings.HasPrefix(image, registry+"/") {
		return image
	}
	return registry + "/" + image
}

// describe joins the description and the note, both as text (they often
// hold HTML: line breaks, lists, links with the default credentials).
func describe(description, note string) string {
	d := cleanText(htmlToText(description), true)
	n := cleanText(htmlToText(note), true)
	switch {
	case n == "":
		return d
	case d == "":
		return n
	}
	return d + "\n\n" + n
}

// cleanText trims s and replaces control characters, which Validate
// refuses, by spaces: a stray one should not cost a whole template.
func cleanText(s string, multiline bool) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?")))
}

// convertCategories makes Portainer's free-form categories ("Log
// Management") labels ("log-management"), dropping empty and repeated ones.
func convertCategories(in []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, c := range in {
		s := slug(c, domain.MaxNameLength)
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// convertPorts reads Portainer port strings and drops repeats of the same
// container port; labelPort (a Traefik label named it) is added when the
// template does not list it. Ports Docker takes but moor does not (ranges, sctp)
// are dropped: moor publishes no host ports, so the container listens on
// them all the same.
func convertPorts(in []string, labelPort int, dropped *dropList) ([]domain.PortSpec, error) {
	out := []domain.PortSpec{}
	seen := map[string]bool{}
	for i, s := range in {
		port, proto, err := parsePort(s)
		if err != nil {
			if why := unsupportedPort(s); why != "" {
				dropped.add(fmt.Sprintf("ports[%d]", i), "%q: %s", s, why)
				continue
			}
			return nil, fmt.Errorf("ports[%d] %q: %v", i, s, err)
		}
		key := fmt.Sprintf("%d/%s", port, proto)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, domain.PortSpec{Name: fmt.Sprintf("%s-%d", proto, port), Port: port, Protocol: proto})
	}
	// A Traefik label may name a port the template does not list: it is
	// the one the application serves HTTP on (chooseHTTPPort picks it).
	if labelPort > 0 && !seen[fmt.Sprintf("%d/tcp", labelPort)] {
		out = append(out, domain.PortSpec{Name: fmt.Sprintf("tcp-%d", labelPort), Port: labelPort, Protocol: "tcp"})
	}
	return out, nil
}

// markHTTP makes the TCP port numbered port the HTTP port, if listed.
// parsePort returns the container port of "[ip:][host:]container[/proto]".
func parsePort(s string) (int, string, error) {
	spec, proto, found := strings.Cut(strings.TrimSpace(s), "/")
	proto = strings.ToLower(proto)
	if !found {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return 0, "", fmt.Errorf("protocol %q is not tcp or udp", proto)
	}
	// The container port is always last; host IP and port come before it.
	if i := strings.LastIndex(spec, ":"); i >= 0 {
		spec = spec[i+1:]
	}
	if strings.Contains(spec, "-") {
		return 0, "", errors.New("port ranges are not supported")
	}
	n, err := strconv.Atoi(spec)
	if err != nil || n < 1 || n > 65535 {
		return 0, "", errors.New("container port must be a number from 1 to 65535")
	}
	return n, proto, nil
}

// convertEnvs maps the variables; a repeated name keeps its first entry,
// as Docker would end up with one value anyway.
func convertEnvs(in []ptEnv, dropped *dropList) []domain.EnvSpec {
	out := make([]domain.EnvSpec, 0, len(in))
	var src []ptEnv
	seen := map[string]bool{}
	for i, e := range in {
		s := convertEnv(e)
		if seen[s.Name] {
			dropped.add(fmt.Sprintf("env[%d]", i), "repeats %s", s.Name)
			continue
		}
		seen[s.Name] = true
		out = append(out, s)
		src = append(src, e)
	}
	// Generation needs the other variables (DB_PASS beside DB_HOST).
	for i := range out {
		decideGeneration(out, i, src[i])
	}
	return out
}

// cut shortens text that is longer than max bytes (at a character's
// boundary, with an ellipsis), and logs it: a long text should not cost
// the template.
func cut(s string, max int, field string, dropped *dropList) string {
	if len(s) <= max {
		return s
	}
	end := max - len("…")
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	dropped.add(field, "cut to %d bytes", max)
	return s[:end] + "…"
}

func convertEnv(e ptEnv) domain.EnvSpec {
	s := domain.EnvSpec{
		Name:        strings.TrimSpace(e.Name),
		Label:       cleanText(e.Label, false),
		Description: cleanText(e.Description, true),
		Default:     e.Default,
	}
	if s.Description == "" && e.Type == "container" {
		s.Description = "Name of another container: moor's container DNS name reaches it."
	}
	switch {
	case len(e.Select) > 0:
		s.Choices, s.Default = selectChoices(e.Select, e.Default)
	case e.Preset:
		// A preset with a value is fixed by the template, public like
		// the file: a single choice. One without a value is what
		// Portainer hides while the user types it (an API token, a root
		// password): secret.
		if s.Default != "" {
			s.Choices = []string{s.Default}
		} else {
			yes := true
			s.Secret = &yes
		}
	}
	return s
}

// decideGeneration applies the rule in secret.go to an imported variable:
// generate a password the container checks itself, require one of an
// outside service, and never touch a hash beyond reading its format.
func decideGeneration(env []domain.EnvSpec, i int, src ptEnv) {
	s := &env[i]
	if src.Preset || len(src.Select) > 0 || s.Default != "" && !isHashName(s.Name) {
		return
	}
	switch {
	case isHashName(s.Name):
		s.Hash = hashFormat(s.Default)
	case !isPasswordName(s.Name):
	case outsideCredential(env, i):
		s.Required = true
	default:
		s.Generate = GeneratePassword
	}
}

// selectChoices returns the option values, empty and repeated ones
// dropped, and the default: the option marked default, else fallback if
// it is one of the values.
func selectChoices(options []ptChoice, fallback string) ([]string, string) {
	var choices []string
	def := ""
	for _, o := range options {
		if o.Value == "" || slices.Contains(choices, o.Value) {
			continue
		}
		choices = append(choices, o.Value)
		if o.Default && def == "" {
			def = o.Value
		}
	}
	if def == "" && slices.Contains(choices, fallback) {
		def = fallback
	}
	return choices, def
}

// convertVolumes maps volumes as Docker reads the bind Portainer makes of
// each ("BIND:CONTAINER[:ro]", or a new volume when bind is empty): a
// "bind" that is an absolute path is a host path; one that is a bare name
// is a named volume, which moor makes per container like the others. The
// container path may end in Docker's options (":ro", ":rw", ":ro,z"...).
func convertVolumes(in []ptVolume, dropped *dropList) ([]domain.VolumeSpec, error) {
	var out []domain.VolumeSpec
	taken := map[string]bool{}
	for i, v := range in {
		field := fmt.Sprintf("volumes[%d]", i)
		container, opts, _ := strings.Cut(strings.TrimSpace(v.Container), ":")
		if container == "" {
			return nil, fmt.Errorf("%s: no container path", field)
		}
		readOnly, err := mountOptions(opts, field, dropped)
		if err != nil {
			return nil, err
		}
		vs := domain.VolumeSpec{Path: path.Clean(container), ReadOnly: v.ReadOnly || readOnly}
		name := path.Base(vs.Path)
		switch bind := strings.TrimSpace(v.Bind); {
		case bind == "":
		case strings.HasPrefix(bind, "/"):
			vs.HostPath = path.Clean(bind)
		case dockerVolumeNameRE.MatchString(bind):
			name = bind
		default:
			return nil, fmt.Errorf("%s.bind %q: neither an absolute host path nor a volume name", field, bind)
		}
		name = slug(name, 32)
		if !domain.IsLabel(name) {
			name = "vol" + strconv.Itoa(i+1)
		}
		vs.Name = uniqueID(name, taken)
		taken[vs.Name] = true
		out = append(out, vs)
	}
	return out, nil
}

// dockerVolumeNameRE is what Docker accepts as a volume name: a bind source
// that is not a path must be one.
var dockerVolumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// mountOptions reads the options of a "PATH:OPTIONS" container path and
// reports whether they make the mount read-only. Options moor does not
// apply (SELinux relabelling, propagation, nocopy) are reported dropped;
// anything else Docker refuses too, so it fails the template.
func mountOptions(opts, field string, dropped *dropList) (bool, error) {
	if opts == "" {
		return false, nil
	}
	readOnly := false
	for _, o := range strings.Split(opts, ",") {
		switch o = strings.TrimSpace(o); o {
		case "ro":
			readOnly = true
		case "rw":
		case "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private", "rprivate", "consistent", "cached", "delegated":
			dropped.add(field+".container", "mount option %q is not applied", o)
		default:
			return false, fmt.Errorf("%s.container: unknown mount option %q (Docker takes ro, rw, z, Z, nocopy and propagation modes)", field, o)
		}
	}
	return readOnly, nil
}

func convertRestart(policy string) (domain.RestartPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(policy)) {
	case "", "always", "unless-stopped":
		// moor has no "stopped by hand" state apart from its own desired
		// state, so unless-stopped and always mean the same here.
		return domain.RestartAlways, nil
	case "on-failure":
		return domain.RestartOnFailure, nil
	case "no":
		return domain.RestartNever, nil
	}
	return "", fmt.Errorf("restart_policy %q is not always, unless-stopped, on-failure or no", policy)
}

// splitCommand splits s into words the way a POSIX shell does, without
// any expansion: whitespace separates words, single quotes keep everything,
// double quotes keep everything but backslash escapes of \ " $ and `, and
// a backslash outside quotes escapes the next character.
func splitCommand(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quote  rune
		escape bool
	)
	for _, r := range s {
		switch {
		case escape:
			if quote == '"' && !strings.ContainsRune(`\"$`+"`", r) {
				cur.WriteRune('\\')
			}
			cur.WriteRune(r)
			escape = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escape = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escape, inWord = true, true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	switch {
	case quote != 0:
		return nil, fmt.Errorf("unterminated %c quote", quote)
	case escape:
		return nil, errors.New("ends with a lone backslash")
	case inWord:
		words = append(words, cur.String())
	}
	return words, nil
}
