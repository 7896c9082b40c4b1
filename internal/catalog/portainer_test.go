package catalog

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// portainerFiles are copies of the official Portainer App Templates
// (../shared/testdata/portainer), kept here so the package tests alone.
var portainerFiles = []string{"templates-v2.json", "templates-v3.json"}

// fieldFiles are moor's own templates, written from Portainer's documented
// format, for the fields the official files do not use (labels, network,
// hostname, devices, volume suffixes and bare-name binds).
var fieldFiles = []string{"fields-v2.json", "fields-v3.json"}

// ImportPortainer is importPortainer's types and skipped templates.
func ImportPortainer(data []byte, source string) ([]domain.Type, []Skipped, error) {
	r, err := importPortainer(data, source)
	return r.types, r.skipped, err
}

func readPortainer(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "portainer", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// rawTypes returns the Portainer type of every template in the file.
func rawTypes(t *testing.T, data []byte) []int {
	t.Helper()
	var f struct{ Templates []struct{ Type int } }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	types := make([]int, len(f.Templates))
	for i, tpl := range f.Templates {
		types[i] = tpl.Type
	}
	return types
}

var skipIndexRE = regexp.MustCompile(`:templates\[(\d+)\]$`)

func TestImportPortainerAccountsForEveryTemplate(t *testing.T) {
	for _, name := range portainerFiles {
		t.Run(name, func(t *testing.T) {
			data := readPortainer(t, name)
			kinds := rawTypes(t, data)
			types, skipped, err := ImportPortainer(data, name)
			if err != nil {
				t.Fatal(err)
			}
			containers := 0
			for _, k := range kinds {
				if k == 1 {
					containers++
				}
			}
			skippedContainers := 0
			for _, s := range skipped {
				m := skipIndexRE.FindStringSubmatch(s.Source)
				if m == nil || !strings.HasPrefix(s.Source, name+":") {
					t.Fatalf("skip source %q does not locate the template", s.Source)
				}
				i, _ := strconv.Atoi(m[1])
				if s.Reason == "" || s.Title == "" {
					t.Errorf("skip %+v lacks a reason or title", s)
				}
				if kinds[i] == 1 {
					skippedContainers++
				} else if want := fmt.Sprintf("type %d ", kinds[i]); !strings.HasPrefix(s.Reason, want) {
					t.Errorf("skip of a type %d template: reason %q", kinds[i], s.Reason)
				}
			}
			if containers != len(types)+skippedContainers {
				t.Errorf("%d type-1 templates, but %d imported + %d skipped", containers, len(types), skippedContainers)
			}
			if len(kinds) != len(types)+len(skipped) {
				t.Errorf("%d templates, but %d imported + %d skipped", len(kinds), len(types), len(skipped))
			}
			ids := map[string]bool{}
			for _, ty := range types {
				if err := Validate(ty); err != nil {
					t.Errorf("%s: %v", ty.ID, err)
				}
				if !strings.HasPrefix(ty.ID, "portainer-") || ids[ty.ID] || ty.Source != SourcePortainer {
					t.Errorf("bad or repeated id %q (source %q)", ty.ID, ty.Source)
				}
				ids[ty.ID] = true
			}
			t.Logf("%s: %d templates, %d type 1; imported %d, skipped %d (%d of type 1)",
				name, len(kinds), containers, len(types), len(skipped), skippedContainers)
		})
	}
}

func TestImportPortainerSpotChecks(t *testing.T) {
	for _, name := range portainerFiles {
		t.Run(name, func(t *testing.T) {
			types, skipped, err := ImportPortainer(readPortainer(t, name), name)
			if err != nil {
				t.Fatal(err)
			}
			byID := map[string]domain.Type{}
			for _, ty := range types {
				byID[ty.ID] = ty
			}
			get := func(id string) domain.Type {
				t.Helper()
				ty, ok := byID[id]
				if !ok {
					t.Fatalf("%s not imported", id)
				}
				return ty
			}

			nginx := get("portainer-nginx")
			wantPorts := []domain.PortSpec{
				{Name: "http", Port: 80, Protocol: "tcp", HTTP: true},
				{Name: "tcp-443", Port: 443, Protocol: "tcp"},
			}
			if !reflect.DeepEqual(nginx.Ports, wantPorts) {
				t.Errorf("nginx ports = %+v", nginx.Ports)
			}
			wantVols := []domain.VolumeSpec{{Name: "nginx", Path: "/etc/nginx"}, {Name: "html", Path: "/usr/share/nginx/html"}}
			if !reflect.DeepEqual(nginx.Volumes, wantVols) || nginx.Image != "nginx:latest" || nginx.Restart != domain.RestartAlways {
				t.Errorf("nginx = %+v", nginx)
			}

			if v := get("portainer-httpd").Volumes; v[0].Path != "/usr/local/apache2/htdocs" {
				t.Errorf("httpd volume path not cleaned: %+v", v)
			}
			jenkins := get("portainer-jenkins")
			if p, ok := jenkins.HTTPPort(); !ok || p.Port != 8080 {
				t.Errorf("jenkins HTTP port = %+v", p)
			}
			mysql := get("portainer-mysql")
			if p, ok := mysql.HTTPPort(); ok {
				t.Errorf("mysql has an HTTP port: %+v", p)
			}
			wantEnv := []domain.EnvSpec{
				{Name: "MYSQL_ROOT_PASSWORD", Label: "Root password", Generate: GeneratePassword, Secret: yes},
				{Name: "MYSQL_ROOT_HOST", Default: "%", Choices: []string{"%"}, Secret: no}, // preset with a value: fixed
			}
			if !reflect.DeepEqual(mysql.Env, wantEnv) {
				t.Errorf("mysql env = %+v", mysql.Env)
			}

			minio := get("portainer-minio")
			if want := []string{"server", "/data", "--console-address", ":9001"}; !reflect.DeepEqual(minio.Command, want) {
				t.Errorf("minio command = %q", minio.Command)
			}

			datadog := get("portainer-datadog-agent")
			if !datadog.RequiresAdmin() || datadog.Volumes[0].HostPath != "/var/run/docker.sock" || !datadog.Volumes[0].ReadOnly {
				t.Errorf("datadog volumes = %+v", datadog.Volumes)
			}
			if s := get("portainer-sematext-docker-agent"); !s.Privileged || !reflect.DeepEqual(s.Categories, []string{"log-management", "monitoring"}) {
				t.Errorf("sematext = %+v", s)
			}
			if d := get("portainer-plone").Description; !strings.Contains(d, "admin/admin") {
				t.Errorf("plone note not in description: %q", d)
			}
			if d := get("portainer-gitlab-ce").Description; strings.ContainsAny(d, "<>") {
				t.Errorf("HTML left in description: %q", d)
			}

			reasons := map[string]string{}
			for _, s := range skipped {
				reasons[s.Title] = s.Reason
			}
			// Portainer gives interactive templates stdin and a TTY; so
			// does moor, and bash then waits instead of exiting.
			if u := get("portainer-ubuntu"); !u.Interactive || !reflect.DeepEqual(u.Command, []string{"/bin/bash"}) || u.RequiresAdmin() {
				t.Errorf("ubuntu = %+v", u)
			}
			if get("portainer-nginx").Interactive {
				t.Error("nginx is interactive")
			}
			if r := reasons["SQL Server Express"]; !strings.Contains(r, `platform "windows"`) {
				t.Errorf("SQL Server Express skip reason = %q", r)
			}
			// Stack templates name a compose file in another repository,
			// which moor does not fetch: each is skipped saying so.
			stacks := 0
			for title, r := range reasons {
				if strings.HasPrefix(r, "type 2 (") || strings.HasPrefix(r, "type 3 (") {
					stacks++
					if !strings.Contains(r, "is in another repository (https://") {
						t.Errorf("%s skip reason = %q", title, r)
					}
				}
			}
			if stacks == 0 {
				t.Error("no stack template skipped")
			}
			if r := reasons["Grafana Dashboard"]; name == "templates-v3.json" && !strings.HasPrefix(r, "type 3 (compose stack): its compose file is in another repository") {
				t.Errorf("Grafana skip reason = %q", r)
			}
			if r := reasons["Swarm monitoring"]; !strings.HasPrefix(r, "type 2 (swarm stack): its compose file is in another repository") {
				t.Errorf("Swarm monitoring skip reason = %q", r)
			}
		})
	}
}

func TestImportPortainerOPCRouterSelect(t *testing.T) {
	// The v2 file has OPC Router as a container with a select env.
	types, _, err := ImportPortainer(readPortainer(t, "templates-v2.json"), "v2")
	if err != nil {
		t.Fatal(err)
	}
	for _, ty := range types {
		if ty.ID != "portainer-opc-router" {
			continue
		}
		eula := ty.Env[2]
		if eula.Name != "OR_I_ACCEPT_EULA" || !reflect.DeepEqual(eula.Choices, []string{"true"}) || eula.Default != "true" {
			t.Errorf("EULA env = %+v", eula)
		}
		if p, _ := ty.HTTPPort(); p.Port != 8080 {
			t.Errorf("HTTP port = %+v, want 8080 (ranked above 8081)", p)
		}
		return
	}
	t.Fatal("portainer-opc-router not imported")
}

func TestImportPortainerGolden(t *testing.T) {
	for golden, files := range map[string][]string{
		"portainer.golden":        portainerFiles,
		"portainer-fields.golden": fieldFiles,
	} {
		t.Run(golden, func(t *testing.T) { checkGolden(t, golden, files) })
	}
}

// checkGolden compares the summary of the import of files with
// testdata/golden.
func checkGolden(t *testing.T, golden string, files []string) {
	var b strings.Builder
	for _, name := range files {
		r, err := importPortainer(readPortainer(t, name), name)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(summarize(name, r))
	}
	golden = filepath.Join("testdata", golden)
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("imported catalog differs from %s; run go test ./internal/catalog -run Golden -update and review the diff", golden)
	}
}

// summarize renders an import result one fact per line, so a change in
// the mapping shows up as a readable diff of the golden file.
func summarize(source string, r portainerResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %d imported, %d skipped\n", source, len(r.types), len(r.skipped))
	for i, t := range r.types {
		fmt.Fprintf(&b, "type %s %q image=%s restart=%s categories=%s", t.ID, t.Title, t.Image, t.Restart, strings.Join(t.Categories, ","))
		if t.Privileged {
			b.WriteString(" privileged")
		}
		if t.RequiresAdmin() {
			b.WriteString(" admin-only")
		}
		if t.Interactive {
			b.WriteString(" interactive")
		}
		b.WriteString("\n")
		if t.Description != "" {
			fmt.Fprintf(&b, "  description %q\n", t.Description)
		}
		for _, p := range t.Ports {
			fmt.Fprintf(&b, "  port %s %d/%s", p.Name, p.Port, p.Protocol)
			if p.HTTP {
				fmt.Fprintf(&b, " http (%s)", t.HTTPPortReason)
			}
			b.WriteString("\n")
		}
		for _, e := range t.Env {
			fmt.Fprintf(&b, "  env %s", e.Name)
			if e.Default != "" {
				fmt.Fprintf(&b, " default=%q", e.Default)
			}
			if len(e.Choices) > 0 {
				fmt.Fprintf(&b, " choices=%q", e.Choices)
			}
			if e.Generate != "" {
				fmt.Fprintf(&b, " generate=%s", e.Generate)
			}
			if e.IsSecret() {
				b.WriteString(" secret")
			}
			if e.Required {
				b.WriteString(" required")
			}
			if e.Hash != "" {
				fmt.Fprintf(&b, " hash=%s", e.Hash)
			}
			if e.Label != "" {
				fmt.Fprintf(&b, " label=%q", e.Label)
			}
			b.WriteString("\n")
		}
		for _, v := range t.Volumes {
			fmt.Fprintf(&b, "  volume %s %s", v.Name, v.Path)
			if v.HostPath != "" {
				fmt.Fprintf(&b, " host=%s", v.HostPath)
			}
			if v.ReadOnly {
				b.WriteString(" ro")
			}
			b.WriteString("\n")
		}
		if len(t.Command) > 0 {
			fmt.Fprintf(&b, "  command %q\n", t.Command)
		}
		if t.Network != "" {
			fmt.Fprintf(&b, "  network %s\n", t.Network)
		}
		if t.Hostname != "" {
			fmt.Fprintf(&b, "  hostname %s\n", t.Hostname)
		}
		for _, d := range t.Devices {
			fmt.Fprintf(&b, "  device %s", d.HostPath)
			if d.ContainerPath != "" {
				fmt.Fprintf(&b, " -> %s", d.ContainerPath)
			}
			if d.Permissions != "" {
				fmt.Fprintf(&b, " %s", d.Permissions)
			}
			b.WriteString("\n")
		}
		for _, k := range slices.Sorted(maps.Keys(t.Labels)) {
			fmt.Fprintf(&b, "  label %s=%q\n", k, t.Labels[k])
		}
		for _, d := range r.dropped[i] {
			fmt.Fprintf(&b, "  dropped %s: %s\n", d.Field, d.Reason)
		}
	}
	for _, s := range r.skipped {
		fmt.Fprintf(&b, "skip %s %q: %s\n", s.Source, s.Title, s.Reason)
	}
	return b.String()
}

func TestImportPortainerSynthetic(t *testing.T) {
	file := `{"version": "2", "templates": [
		{"type": 1, "title": "Web App", "image": "web:1", "registry": "registry.example.com",
		 "ports": ["8443/tcp", "127.0.0.1:3000:3000/tcp", "3000/tcp", "53/udp", "9999"],
		 "restart_policy": "on-failure",
		 "command": "sh -c 'echo \"hi there\"' a\\ b \"x\\\"y\" ''",
		 "env": [{"name": "LEVEL", "select": [{"text": "Low", "value": "low"}, {"text": "High", "value": "high", "default": true}]},
		         {"name": "NOSEL", "default": "b", "select": [{"value": "a"}, {"value": "b"}, {"value": ""}]},
		         {"name": "API_TOKEN"}, {"name": "DB_PASSWORD", "default": "given"}],
		 "volumes": [{"container": "/srv/data/"}, {"container": "/other/data"}, {"container": "/x/_"}],
		 "categories": ["Web Apps", "web apps", "!!"], "logo": "javascript:alert(1)"},
		{"type": 1, "title": "Web App", "image": "web:2"},
		{"type": 1, "title": "Web App 2", "image": "web:3"},
		{"type": 1, "title": "Web App", "image": "web:4"},
		{"type": 1, "title": "!!!", "image": "x"},
		{"type": 1, "title": "Broken", "image": "Bad/Image"},
		{"type": 1, "title": "Range", "image": "x", "ports": ["8000-8010/tcp"]},
		{"type": 1, "title": "Quote", "image": "x", "command": "echo 'oops"},
		{"type": 1, "title": "Policy", "image": "x", "restart_policy": "sometimes"},
		{"type": 1, "title": "No image"},
		{"type": 1, "title": "Root", "image": "x", "volumes": [{"container": "/"}]},
		{"type": "one", "title": "Malformed"},
		{"type": 9, "title": "Future"},
		{"type": 1, "title": "Udp", "image": "x", "ports": ["53/sctp"]},
		{"type": 1, "title": "Zero", "image": "x", "ports": ["0/tcp"]},
		{"type": 1, "title": "Backwards", "image": "x", "ports": ["8010-8000/tcp"]}
	]}`
	types, skipped, err := ImportPortainer([]byte(file), "t.json")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(types))
	for i, ty := range types {
		ids[i] = ty.ID
	}
	// The second "Web App" takes -2, so "Web App 2", whose own ID is
	// portainer-web-app-2, gets -2 appended; the skipped "Broken" etc. take
	// nothing; a title with no letters or digits becomes "template".
	wantIDs := []string{"portainer-web-app", "portainer-web-app-2", "portainer-web-app-2-2", "portainer-web-app-3", "portainer-template", "portainer-range", "portainer-udp"}
	if !reflect.DeepEqual(ids, wantIDs) {
		t.Errorf("ids = %q, want %q", ids, wantIDs)
	}
	web := types[0]
	if web.Image != "registry.example.com/web:1" || web.Restart != domain.RestartOnFailure || web.Logo != "" {
		t.Errorf("web = %+v", web)
	}
	if !reflect.DeepEqual(web.Categories, []string{"web-apps"}) {
		t.Errorf("categories = %q", web.Categories)
	}
	wantPorts := []domain.PortSpec{
		{Name: "tcp-8443", Port: 8443, Protocol: "tcp"},
		{Name: "http", Port: 3000, Protocol: "tcp", HTTP: true},
		{Name: "udp-53", Port: 53, Protocol: "udp"},
		{Name: "tcp-9999", Port: 9999, Protocol: "tcp"},
	}
	if !reflect.DeepEqual(web.Ports, wantPorts) {
		t.Errorf("ports = %+v", web.Ports)
	}
	if want := []string{"sh", "-c", `echo "hi there"`, "a b", `x"y`, ""}; !reflect.DeepEqual(web.Command, want) {
		t.Errorf("command = %q, want %q", web.Command, want)
	}
	wantEnv := []domain.EnvSpec{
		{Name: "LEVEL", Choices: []string{"low", "high"}, Default: "high", Secret: no},
		{Name: "NOSEL", Choices: []string{"a", "b"}, Default: "b", Secret: no},
		{Name: "API_TOKEN", Secret: yes},
		{Name: "DB_PASSWORD", Default: "given", Secret: yes},
	}
	if !reflect.DeepEqual(web.Env, wantEnv) {
		t.Errorf("env = %+v", web.Env)
	}
	// Named after the last path element, made unique, "volN" when the
	// element is no label.
	wantVols := []domain.VolumeSpec{{Name: "data", Path: "/srv/data"}, {Name: "data-2", Path: "/other/data"}, {Name: "vol3", Path: "/x/_"}}
	if !reflect.DeepEqual(web.Volumes, wantVols) {
		t.Errorf("volumes = %+v", web.Volumes)
	}

	// Docker takes port ranges and sctp, so Portainer deploys such a
	// template: moor imports it without those ports (it publishes none).
	r, _ := importPortainer([]byte(file), "t.json")
	for i, want := range map[int]string{5: `"8000-8010/tcp": port ranges are not imported`, 6: `"53/sctp": sctp ports are not supported`} {
		if d := r.dropped[i]; len(d) != 1 || d[0].Field != "ports[0]" || d[0].Reason != want || len(r.types[i].Ports) != 0 {
			t.Errorf("%s: dropped %+v, ports %+v; want %s", r.types[i].ID, d, r.types[i].Ports, want)
		}
	}
	wantSkips := map[string]string{
		"Broken":    "image: is not a valid image reference",
		"Quote":     "command: unterminated ' quote",
		"Policy":    `restart_policy "sometimes"`,
		"No image":  "no image",
		"Root":      "volumes[0].path: must not be /",
		"Malformed": "malformed template",
		"Future":    "type 9 is not supported",
		"Zero":      "container port must be a number from 1 to 65535",
		"Backwards": "port ranges are not supported",
	}
	got := map[string]string{}
	for _, s := range skipped {
		got[s.Title] = s.Reason
	}
	if len(got) != len(wantSkips) {
		t.Errorf("skipped %v", got)
	}
	for title, want := range wantSkips {
		if !strings.Contains(got[title], want) {
			t.Errorf("skip of %q: reason %q, want it to contain %q", title, got[title], want)
		}
	}
}

func TestImportPortainerFileErrors(t *testing.T) {
	tests := []struct{ name, data, want string }{
		{"not json", "nope", "not a Portainer App Templates file"},
		{"v1 array", `[{"type": 1}]`, "not a Portainer App Templates file"},
		{"no version", `{"templates": []}`, `must be "2" or "3"`},
		{"v4", `{"version": "4", "templates": []}`, `got "4"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ImportPortainer([]byte(tt.data), "f.json")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "f.json: ") {
				t.Errorf("err = %v, want it to name f.json and contain %q", err, tt.want)
			}
		})
	}
	types, skipped, err := ImportPortainer([]byte(`{"version": "3", "templates": []}`), "empty")
	if err != nil || len(types) != 0 || len(skipped) != 0 {
		t.Errorf("empty file: %v %v %v", types, skipped, err)
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"   ", nil, false},
		{"/bin/bash", []string{"/bin/bash"}, false},
		{"  a   b\tc\n", []string{"a", "b", "c"}, false},
		{`--port 80 --root /srv`, []string{"--port", "80", "--root", "/srv"}, false},
		{`a 'b c' "d e"`, []string{"a", "b c", "d e"}, false},
		{`'it''s'`, []string{"its"}, false},
		{`"a\"b\\c\$d\e"`, []string{`a"b\c$d\e`}, false},
		{`a\ b\\`, []string{"a b\\"}, false},
		{`x"y"z`, []string{"xyz"}, false},
		{`'' ""`, []string{"", ""}, false},
		{`'$HOME'`, []string{"$HOME"}, false},
		{`'open`, nil, true},
		{`"open`, nil, true},
		{`trailing\`, nil, true},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if (err != nil) != tt.err || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in    string
		port  int
		proto string
		err   bool
	}{
		{"80/tcp", 80, "tcp", false},
		{"53/udp", 53, "udp", false},
		{"53/UDP", 53, "udp", false},
		{"8080:80/tcp", 80, "tcp", false},
		{"127.0.0.1:8080:80/tcp", 80, "tcp", false},
		{"[::1]:8080:80", 80, "tcp", false},
		{"443", 443, "tcp", false},
		{" 22/tcp ", 22, "tcp", false},
		{"0/tcp", 0, "", true},
		{"65536/tcp", 0, "", true},
		{"http/tcp", 0, "", true},
		{"80/sctp", 0, "", true},
		{"80-81/tcp", 0, "", true},
		{"", 0, "", true},
	}
	for _, tt := range tests {
		port, proto, err := parsePort(tt.in)
		if (err != nil) != tt.err || port != tt.port || proto != tt.proto {
			t.Errorf("parsePort(%q) = %d, %q, %v", tt.in, port, proto, err)
		}
	}
}

func TestSlugAndUniqueID(t *testing.T) {
	if got := slug("  Héllo, World!! (v2) ", 63); got != "h-llo-world-v2" {
		t.Errorf("slug = %q", got)
	}
	if got := slug(strings.Repeat("ab-", 30), 10); got != "ab-ab-ab-a" {
		t.Errorf("slug = %q", got)
	}
	long := "portainer-" + strings.Repeat("x", 53)
	taken := map[string]bool{long: true}
	got := uniqueID(long, taken)
	if len(got) > 63 || !domain.IsLabel(got) || !strings.HasSuffix(got, "-2") {
		t.Errorf("uniqueID = %q", got)
	}
}

// TestImportPortainerFields checks, one case per rule, what moor's own
// template files (fieldFiles) become; the golden file has the rest.
func TestImportPortainerFields(t *testing.T) {
	type result struct {
		types   map[string]domain.Type
		dropped map[string][]Dropped // by type ID
		skipped map[string]string    // title -> reason
	}
	results := map[string]result{}
	for _, name := range fieldFiles {
		r, err := importPortainer(readPortainer(t, name), name)
		if err != nil {
			t.Fatal(err)
		}
		res := result{map[string]domain.Type{}, map[string][]Dropped{}, map[string]string{}}
		for i, ty := range r.types {
			res.types[ty.ID] = ty
			res.dropped[ty.ID] = r.dropped[i]
			for _, d := range r.dropped[i] {
				if d.Source != fmt.Sprintf("%s:templates[%d]", name, indexOf(t, name, ty.Title)) || d.Title != ty.Title || d.Field == "" || d.Reason == "" {
					t.Errorf("%s: incomplete dropped field %+v", ty.ID, d)
				}
			}
		}
		for _, s := range r.skipped {
			res.skipped[s.Title] = s.Reason
		}
		results[name] = res
	}
	dropped := func(r result, id, field string) string {
		for _, d := range r.dropped[id] {
			if d.Field == field {
				return d.Reason
			}
		}
		return ""
	}
	v2, v3 := results["fields-v2.json"], results["fields-v3.json"]

	tests := []struct {
		name  string
		check func() string // "" when right, else what is wrong
	}{
		{":ro and :rw suffixes are read-only flags", func() string {
			want := []domain.VolumeSpec{
				{Name: "localtime", Path: "/etc/localtime", HostPath: "/etc/localtime", ReadOnly: true},
				{Name: "timezone", Path: "/etc/timezone", HostPath: "/etc/timezone", ReadOnly: true}, // readonly wins over :rw
				{Name: "cache", Path: "/cache"},
				{Name: "www", Path: "/srv/www", HostPath: "/srv/www", ReadOnly: true},
			}
			if v := v2.types["portainer-time-synced"].Volumes; !reflect.DeepEqual(v, want) {
				return fmt.Sprintf("volumes %+v", v)
			}
			if r := dropped(v2, "portainer-time-synced", "volumes[3].container"); !strings.Contains(r, `"Z"`) {
				return "the Z option is not reported: " + r
			}
			return ""
		}},
		{"a bind of a bare name is a named volume", func() string {
			ty := v2.types["portainer-named-data"]
			want := []domain.VolumeSpec{
				{Name: "portainer-data", Path: "/data"},
				{Name: "app-config-1", Path: "/config", ReadOnly: true},
				{Name: "logs", Path: "/logs", ReadOnly: true},
			}
			if !reflect.DeepEqual(ty.Volumes, want) || ty.RequiresAdmin() {
				return fmt.Sprintf("volumes %+v, admin-only %v", ty.Volumes, ty.RequiresAdmin())
			}
			return ""
		}},
		{"host networking is kept and admin-only; a Traefik port label gives the HTTP port", func() string {
			ty := v2.types["portainer-media-server"]
			if ty.Network != domain.NetworkHost || !ty.RequiresAdmin() {
				return fmt.Sprintf("network %q, admin-only %v", ty.Network, ty.RequiresAdmin())
			}
			if want := []domain.PortSpec{{Name: "http", Port: 8096, Protocol: "tcp", HTTP: true}}; !reflect.DeepEqual(ty.Ports, want) {
				return fmt.Sprintf("ports %+v", ty.Ports)
			}
			return ""
		}},
		{"other labels are carried, traefik.* and moor.* are not", func() string {
			if l := v2.types["portainer-media-server"].Labels; !reflect.DeepEqual(l, map[string]string{"com.example.vendor": "Acme"}) {
				return fmt.Sprintf("media labels %v", l)
			}
			web := v2.types["portainer-labelled-web"]
			if want := map[string]string{"com.example.license": "MIT", "org.example.yacht": "Yacht writes label"}; !reflect.DeepEqual(web.Labels, want) {
				return fmt.Sprintf("web labels %v", web.Labels)
			}
			for _, f := range []string{"labels.moor.id", "labels.MOOR.name", "labels.has space", "labels.com.example.multiline"} {
				if dropped(v2, web.ID, f) == "" {
					return f + " not reported"
				}
			}
			if r := dropped(v2, "portainer-media-server", "labels.traefik.http.routers.media.rule"); !strings.Contains(r, "own Traefik provider") {
				return "router label: " + r
			}
			if web.RequiresAdmin() {
				return "labels made the type admin-only"
			}
			return ""
		}},
		{"the label's port beats the ranking, and is added when unlisted", func() string {
			web := v2.types["portainer-labelled-web"]
			if p, _ := web.HTTPPort(); p.Port != 9000 || p.Name != "http" {
				return fmt.Sprintf("web HTTP port %+v", p)
			}
			if r := dropped(v2, "portainer-labelled-web", "labels.traefik.http.services.web-admin.loadbalancer.server.port"); !strings.Contains(r, "second") {
				return "second service port: " + r
			}
			api := v3.types["portainer-port-from-label"]
			want := []domain.PortSpec{{Name: "tcp-5432", Port: 5432, Protocol: "tcp"}, {Name: "http", Port: 3000, Protocol: "tcp", HTTP: true}}
			if !reflect.DeepEqual(api.Ports, want) {
				return fmt.Sprintf("api ports %+v", api.Ports)
			}
			if r := dropped(v2, "portainer-odd-fields", "labels.traefik.http.services.odd.loadbalancer.server.port"); !strings.Contains(r, "not a port number") {
				return "bad port label: " + r
			}
			return ""
		}},
		{"devices in both shapes, admin-only; bad entries dropped alone", func() string {
			ty := v2.types["portainer-zigbee-bridge"]
			want := []domain.DeviceSpec{
				{HostPath: "/dev/ttyUSB0", ContainerPath: "/dev/ttyACM0"},
				{HostPath: "/dev/dri"},
				{HostPath: "/dev/snd", Permissions: "rw"},
				{HostPath: "/dev/net/tun"},
				{HostPath: "/dev/bus/usb"},
			}
			if !reflect.DeepEqual(ty.Devices, want) || !ty.RequiresAdmin() {
				return fmt.Sprintf("devices %+v, admin-only %v", ty.Devices, ty.RequiresAdmin())
			}
			for _, f := range []string{"devices[5]", "devices[6]", "devices[7]", "devices[8]"} {
				if dropped(v2, ty.ID, f) == "" {
					return f + " not reported"
				}
			}
			if dropped(v2, "portainer-odd-fields", "devices") == "" {
				return "devices that are not a list are not reported"
			}
			return ""
		}},
		{"hostname: a DNS label, lower-cased; else dropped", func() string {
			if h := v2.types["portainer-zigbee-bridge"].Hostname; h != "zigbee-bridge" {
				return "zigbee hostname " + h
			}
			if h := v3.types["portainer-home-automation"].Hostname; h != "homeassistant" {
				return "home hostname " + h
			}
			if v2.types["portainer-odd-fields"].Hostname != "" || dropped(v2, "portainer-odd-fields", "hostname") == "" {
				return "dotted hostname kept or not reported"
			}
			if dropped(v3, "portainer-hostname-too-long", "hostname") == "" {
				return "long hostname not reported"
			}
			return ""
		}},
		{"other networks, unknown and unsupported keys are reported", func() string {
			odd := v2.types["portainer-odd-fields"]
			if odd.Network != "" || odd.Logo != "" || odd.RequiresAdmin() {
				return fmt.Sprintf("odd %+v", odd)
			}
			for _, f := range []string{"network", "logo", "administrator_only", "hosts", "cap_add"} {
				if dropped(v2, odd.ID, f) == "" {
					return f + " not reported"
				}
			}
			for _, f := range []string{"name", "maintainer", "sysctls"} { // descriptive, or empty
				if r := dropped(v2, odd.ID, f); r != "" {
					return f + " reported: " + r
				}
			}
			if dropped(v3, "portainer-hostname-too-long", "network") == "" {
				return `network "none" not reported`
			}
			return ""
		}},
		{"a template is skipped only for what Portainer cannot deploy either", func() string {
			want := map[string]string{
				"Relative Bind":         `volumes[0].bind "./data": neither an absolute host path nor a volume name`,
				"Bad Mount Option":      `unknown mount option "bogus"`,
				"Labels As Object":      "malformed template",
				"Hostname Not A String": "malformed template",
			}
			skipped := maps.Clone(v2.skipped)
			maps.Copy(skipped, v3.skipped)
			if len(skipped) != len(want) {
				return fmt.Sprintf("skipped %v", skipped)
			}
			for title, reason := range want {
				if !strings.Contains(skipped[title], reason) {
					return fmt.Sprintf("%s: %q, want %q", title, skipped[title], reason)
				}
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if msg := tt.check(); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// indexOf is the position of the template titled title in testdata file
// name.
func indexOf(t *testing.T, name, title string) int {
	t.Helper()
	var f struct{ Templates []struct{ Title string } }
	if err := json.Unmarshal(readPortainer(t, name), &f); err != nil {
		t.Fatal(err)
	}
	for i, tpl := range f.Templates {
		if tpl.Title == title {
			return i
		}
	}
	t.Fatalf("%s has no template %q", name, title)
	return -1
}

func TestTraefikPort(t *testing.T) {
	tests := []struct {
		name, value string
		port        int
		ok          bool
	}{
		{"traefik.http.services.app.loadbalancer.server.port", "8080", 8080, true},
		{"traefik.http.services.my-app_1.loadbalancer.server.port", " 80 ", 80, true},
		{"TRAEFIK.HTTP.SERVICES.APP.LOADBALANCER.SERVER.PORT", "443", 443, true},
		{"traefik.http.services.app.loadbalancer.server.port", "0", 0, false},
		{"traefik.http.services.app.loadbalancer.server.port", "65536", 0, false},
		{"traefik.http.services.app.loadbalancer.server.port", "${PORT}", 0, false},
		{"traefik.http.services.loadbalancer.server.port", "80", 0, false}, // no service name
		{"traefik.http.services.a.b.loadbalancer.server.port", "80", 0, false},
		{"traefik.tcp.services.app.loadbalancer.server.port", "5432", 0, false}, // TCP: not the HTTP port
		{"traefik.http.services.app.loadbalancer.server.scheme", "http", 0, false},
		{"com.example.port", "80", 0, false},
	}
	for _, tt := range tests {
		port, ok := traefikPort(tt.name, tt.value)
		if port != tt.port || ok != tt.ok {
			t.Errorf("traefikPort(%q, %q) = %d, %v; want %d, %v", tt.name, tt.value, port, ok, tt.port, tt.ok)
		}
	}
}

func TestUnsupportedPort(t *testing.T) {
	tests := map[string]string{
		"8000-8010":                         "port ranges are not imported",
		"127.0.0.1:8000-8010:8000-8010/udp": "port ranges are not imported",
		"5000-5000/tcp":                     "port ranges are not imported",
		"53/sctp":                           "sctp ports are not supported",
		"9000-9001/SCTP":                    "sctp ports are not supported",
		"8010-8000/tcp":                     "", // Docker refuses these: the template is skipped
		"8000-/tcp":                         "",
		"0-10/tcp":                          "",
		"x/sctp":                            "",
		"+80/sctp":                          "",
		"80/icmp":                           "",
		"":                                  "",
	}
	for in, want := range tests {
		if got := unsupportedPort(in); got != want {
			t.Errorf("unsupportedPort(%q) = %q, want %q", in, got, want)
		}
	}
}
