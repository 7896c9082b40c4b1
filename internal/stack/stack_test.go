package stack

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/moorhq/moor/internal/domain"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden parses one compose file per supported key (testdata/keys) and
// realistic stacks (testdata/stacks), and compares what moor makes of each
// with its .golden file.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(file[len("testdata/"):], ".yaml"), func(t *testing.T) {
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			st, err := Parse(context.Background(), "shop", string(text))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for _, s := range st.Services {
				if s.Type.RequiresAdmin() != (len(s.AdminOnly) > 0) {
					t.Errorf("%s: RequiresAdmin %v but AdminOnly %q", s.Name, s.Type.RequiresAdmin(), s.AdminOnly)
				}
			}
			got, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", file, golden, got)
			}
		})
	}
}

// parseErr parses compose and returns the field error it must fail with.
func parseErr(t *testing.T, compose string) *domain.FieldError {
	t.Helper()
	_, err := Parse(context.Background(), "shop", compose)
	if err == nil {
		t.Fatalf("Parse accepted:\n%s", compose)
	}
	var fe *domain.FieldError
	if !errors.As(err, &fe) || !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("error %v (%T) is not a field error wrapping ErrInvalid", err, err)
	}
	return fe
}

// TestEveryOtherServiceKeyRefused takes every key compose-go knows for a
// service and checks that each one moor does not map is refused, naming
// the service and the key: none is ever dropped without a word.
func TestEveryOtherServiceKeyRefused(t *testing.T) {
	var all []string
	var collect func(reflect.Type)
	collect = func(rt reflect.Type) {
		for f := range rt.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case f.Anonymous:
				collect(f.Type)
			case tag != "" && tag != "-" && !strings.HasPrefix(tag, "#"):
				all = append(all, tag)
			}
		}
	}
	collect(reflect.TypeFor[types.ServiceConfig]())
	if len(all) < 80 {
		t.Fatalf("only %d keys found in compose-go's ServiceConfig: %v", len(all), all)
	}
	refused := 0
	for _, key := range all {
		if _, ok := serviceKeys[key]; ok {
			continue
		}
		refused++
		fe := parseErr(t, "services:\n  web:\n    image: nginx:1.27\n    "+key+": 1\n")
		if fe.Field != "services.web."+key || !strings.Contains(fe.Rule, "is not supported by moor") {
			t.Errorf("%s: %v", key, fe)
		}
	}
	for key := range serviceKeys {
		if !slices.Contains(all, key) {
			t.Errorf("supported key %q is not a compose service key", key)
		}
	}
	t.Logf("%d service keys mapped, %d refused", len(serviceKeys), refused)
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name, compose, field, rule string
	}{
		{"build", "services: {web: {build: .}}", "services.web.build", "does not build images"},
		{"build beside image", "services: {web: {image: x, build: .}}", "services.web.build", "does not build images"},
		{"no image", "services: {web: {command: [x]}}", "services.web.image", "is required"},
		{"container_name", "services: {web: {image: x, container_name: w}}", "services.web.container_name", "STACK-SERVICE"},
		{"links", "services: {web: {image: x, links: [db]}, db: {image: x}}", "services.web.links", "by service name"},
		{"service networks", "services: {web: {image: x, networks: [default]}}", "services.web.networks", "project's own network"},
		{"env_file", "services: {web: {image: x, env_file: .env}}", "services.web.env_file", "move the variables into environment"},
		{"extends", "services: {web: {image: x, extends: {file: base.yml, service: web}}}", "services.web.extends", "compose file alone"},
		{"entrypoint", "services: {web: {image: x, entrypoint: [sh]}}", "services.web.entrypoint", "entrypoint"},
		{"extra_hosts", "services: {web: {image: x, extra_hosts: [\"a:1.2.3.4\"]}}", "services.web.extra_hosts", "not supported"},
		{"user", "services: {web: {image: x, user: \"1000\"}}", "services.web.user", "not supported"},
		{"deploy.mode", "services: {web: {image: x, deploy: {mode: global}}}", "services.web.deploy.mode", "not supported"},
		{"deploy.placement", "services: {web: {image: x, deploy: {placement: {constraints: [a]}}}}", "services.web.deploy.placement", "not supported"},
		{"reservations", "services: {web: {image: x, deploy: {resources: {reservations: {memory: 1g}}}}}", "services.web.deploy.resources.reservations", "not supported"},
		{"limits.pids", "services: {web: {image: x, deploy: {resources: {limits: {pids: 5}}}}}", "services.web.deploy.resources.limits.pids", "not supported"},
		{"restart_policy.max_attempts", "services: {web: {image: x, deploy: {restart_policy: {condition: any, max_attempts: 3}}}}", "services.web.deploy.restart_policy.max_attempts", "not supported"},
		{"healthcheck.start_interval", "services: {web: {image: x, healthcheck: {test: [CMD, x], start_interval: 1s}}}", "services.web.healthcheck.start_interval", "start interval"},
		{"depends_on restart", "services: {web: {image: x, depends_on: {db: {condition: service_started, restart: true}}}, db: {image: x}}", "services.web.depends_on.db.restart", "not supported"},
		{"depends_on required", "services: {web: {image: x, depends_on: {db: {condition: service_started, required: false}}}, db: {image: x}}", "services.web.depends_on.db.required", "must be in the stack"},
		{"ports long syntax", "services: {web: {image: x, ports: [{target: 80, x: 1}]}}", "services.web.ports[0].x", "not supported"},
		{"volumes bind options", "services: {web: {image: x, volumes: [{type: bind, source: /a, target: /a, bind: {propagation: shared}}]}}", "services.web.volumes[0].bind", "not supported"},
		{"volume nocopy", "services: {web: {image: x, volumes: [\"data:/d:nocopy\"]}}\nvolumes: {data: }", "services.web.volumes[0]", "mount options"},
		{"selinux", "services: {web: {image: x, volumes: [\"/a:/a:z\"]}}", "services.web.volumes[0]", "mount options"},
		{"tmpfs volume", "services: {web: {image: x, volumes: [{type: tmpfs, target: /t}]}}", "services.web.volumes[0]", "type tmpfs"},
		{"relative bind", "services: {web: {image: x, volumes: [\"./data:/data\"]}}", "services.web.volumes[0]", "relative"},
		{"home bind", "services: {web: {image: x, volumes: [\"~/data:/data\"]}}", "services.web.volumes[0]", "relative"},
		{"anonymous volume", "services: {web: {image: x, volumes: [/data]}}", "services.web.volumes[0]", "anonymous"},
		{"undeclared volume", "services: {web: {image: x, volumes: [\"data:/d\"]}}", "services.web", "undefined volume data"},
		{"shared volume", "services: {a: {image: x, volumes: [\"data:/d\"]}, b: {image: x, volumes: [\"data:/e\"]}}\nvolumes: {data: }", "services.b.volumes[0]", "mounted by service a too"},
		{"volume driver", "services: {web: {image: x}}\nvolumes: {d: {driver: nfs}}", "volumes.d.driver", "local driver"},
		{"external volume", "services: {web: {image: x}}\nvolumes: {d: {external: true}}", "volumes.d.external", "not supported"},
		{"volume names alike", "services: {web: {image: x}}\nvolumes: {db_data: , db-data: }", "volumes.db_data", "same name"},
		{"networks", "services: {web: {image: x}}\nnetworks: {back: }", "networks", "not supported"},
		{"secrets", "services: {web: {image: x}}\nsecrets: {s: {file: ./s}}", "secrets", "environment"},
		{"configs", "services: {web: {image: x}}\nconfigs: {c: {file: ./c}}", "configs", "compose file alone"},
		{"include", "include: [other.yml]\nservices: {web: {image: x}}", "include", "compose file alone"},
		{"network_mode bridge", "services: {web: {image: x, network_mode: bridge}}", "services.web.network_mode", "must be host"},
		{"network_mode service", "services: {web: {image: x, network_mode: \"service:db\"}, db: {image: x}}", "services.web.network_mode", "must be host"},
		{"restart retries", "services: {web: {image: x, restart: \"on-failure:3\"}}", "services.web.restart", "no retry count"},
		{"restart both", "services: {web: {image: x, restart: always, deploy: {restart_policy: {condition: none}}}}", "services.web.deploy.restart_policy", "keep one"},
		{"memory twice", "services: {web: {image: x, mem_limit: 1g, deploy: {resources: {limits: {memory: 2g}}}}}", "services.web", "distinct values"},
		{"memory too small", "services: {web: {image: x, mem_limit: 1m}}", "services.web.deploy.resources.limits.memory_mb", "at least 6"},
		{"port range", "services: {web: {image: x, ports: [\"8000-8010:80\"]}}", "services.web.ports[0]", "not a range"},
		{"sctp", "services: {web: {image: x, ports: [\"80/sctp\"]}}", "services.web.ports[0]", "sctp"},
		{"app_protocol", "services: {web: {image: x, ports: [{target: 80, app_protocol: grpc}]}}", "services.web.ports[0].app_protocol", "must be http"},
		{"publish twice", "services: {web: {image: x, ports: [\"8080:80\", \"8080:81\"]}}", "services.web.ports[1]", "overlaps"},
		{"replicas and publish", "services: {web: {image: x, ports: [\"8080:80\"], deploy: {replicas: 2}}}", "services.web.deploy.replicas", "same host port"},
		{"host network publish", "services: {web: {image: x, network_mode: host, ports: [\"8080:80\"]}}", "services.web.ports", "host's network"},
		{"host network replicas", "services: {web: {image: x, network_mode: host, deploy: {replicas: 2}}}", "services.web.deploy.replicas", "host's network"},
		{"too many replicas", "services: {web: {image: x, deploy: {replicas: 99}}}", "services.web.deploy.replicas", "between 0 and 20"},
		{"service name", "services: {Web_1: {image: x}}", "services.Web_1", "DNS label"},
		{"container name too long", "services: {" + strings.Repeat("a", 60) + ": {image: x}}", "services." + strings.Repeat("a", 60), "longer than 63"},
		{"image", "services: {web: {image: \"NGINX\"}}", "services.web.image", "not a valid image reference"},
		{"traefik label", "services: {web: {image: x, labels: {traefik.enable: \"true\"}}}", "services.web.labels.traefik.enable", "moor routes"},
		{"hostname", "services: {web: {image: x, hostname: My_Host}}", "services.web.hostname", "DNS label"},
		{"device outside /dev", "services: {web: {image: x, devices: [\"/etc/shadow:/dev/x\"]}}", "services.web.devices[0].host_path", "under /dev/"},
		{"capability", "services: {web: {image: x, cap_add: [\"NET ADMIN\"]}}", "services.web.cap_add[0]", "capability name"},
		{"healthcheck without test", "services: {web: {image: x, healthcheck: {interval: 5s}}}", "services.web.healthcheck.test", "is required"},
		{"env value", "services: {web: {image: x, environment: {A: \"a\\u0001b\"}}}", "services.web.environment.A", "control characters"},
		{"depends_on unknown", "services: {web: {image: x, depends_on: [db]}}", "services.web.depends_on", "not a service of the stack"},
		{"depends_on self", "services: {web: {image: x, depends_on: [web]}}", "services.web.depends_on", "web -> web"},
		{"depends_on cycle", "services: {a: {image: x, depends_on: [b]}, b: {image: x, depends_on: {c: {condition: service_healthy}}}, c: {image: x, depends_on: [a]}}", "services.a.depends_on", "a -> b -> c -> a"},
		{"required variable", "services: {web: {image: \"nginx:${TAG:?set TAG to the version}\"}}", "services.web.image", "set TAG to the version"},
		{"schema", "services: {web: {image: x, ports: 5}}", "services.web.ports", "array"},
		{"yaml", "services: {web: {image: x}", "compose", "not a compose file"},
		{"two documents", "services: {web: {image: x}}\n---\nservices: {db: {image: x}}\n", "compose", "one YAML document"},
		{"empty", "", "compose", "is empty"},
		{"no services", "volumes: {d: }", "services", "at least one service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := parseErr(t, tt.compose)
			if fe.Field != tt.field || !strings.Contains(fe.Rule, tt.rule) {
				t.Errorf("got %q: %q; want %q: ...%s...", fe.Field, fe.Rule, tt.field, tt.rule)
			}
		})
	}
}

func TestStackName(t *testing.T) {
	for _, name := range []string{"", "Shop", "shop_1", strings.Repeat("a", 64)} {
		_, err := Parse(context.Background(), name, "services: {web: {image: x}}")
		var fe *domain.FieldError
		if !errors.As(err, &fe) || fe.Field != "name" {
			t.Errorf("name %q: %v", name, err)
		}
	}
	big := "services: {web: {image: x}}\n#" + strings.Repeat("x", MaxComposeBytes)
	if fe := parseErr(t, big); fe.Field != "compose" {
		t.Errorf("big file: %v", fe)
	}
}

func TestAdminOnly(t *testing.T) {
	tests := []struct {
		name, service string
		want          []string
	}{
		{"privileged: true", "", []string{"services.web.privileged: privileged mode"}},
		{"volumes: [\"/srv/a:/a\", \"/srv/b:/b:ro\"]", "", []string{"services.web.volumes[0]: host path /srv/a", "services.web.volumes[1]: host path /srv/b"}},
		{"network_mode: host", "", []string{"services.web.network_mode: the host's network"}},
		{"devices: [/dev/dri]", "", []string{"services.web.devices[0]: host device /dev/dri"}},
		{"cap_add: [NET_ADMIN, SYS_TIME]", "", []string{"services.web.cap_add: added capabilities NET_ADMIN, SYS_TIME"}},
		{"cap_drop: [ALL]", "", nil},
		{"labels: {a: b}", "", nil},
		{"hostname: box", "", nil},
	}
	for _, tt := range tests {
		st, err := Parse(context.Background(), "shop", "services:\n  web:\n    image: x\n    "+tt.name+"\n")
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		s := st.Services[0]
		if !slices.Equal(s.AdminOnly, tt.want) || s.Type.RequiresAdmin() != (tt.want != nil) {
			t.Errorf("%s: AdminOnly %q, RequiresAdmin %v; want %q", tt.name, s.AdminOnly, s.Type.RequiresAdmin(), tt.want)
		}
	}
}

const hashBase = `
services:
  web:
    image: nginx:1.27
    command: ["nginx", "-g", "daemon off;"]
    environment:
      A: "1"
      B: "2"
    ports: ["8080:80", "9090:90"]
    expose: ["3000"]
    volumes: ["data:/data", "logs:/logs:ro"]
    labels: {a: "1", b: "2"}
    cap_add: [NET_ADMIN, SYS_TIME]
    healthcheck: {test: ["CMD", "true"], interval: 5s}
    mem_limit: 128m
    restart: always
volumes: {data: , logs: }
`

// TestHash: the same definition written otherwise hashes the same; every
// change of what the container is made from changes the hash.
func TestHash(t *testing.T) {
	hashOf := func(compose string) string {
		t.Helper()
		st, err := Parse(context.Background(), "shop", compose)
		if err != nil {
			t.Fatalf("%v in\n%s", err, compose)
		}
		for _, s := range st.Services {
			if s.Name == "web" {
				return s.Hash
			}
		}
		t.Fatal("no service web")
		return ""
	}
	base := hashOf(hashBase)
	if len(base) != 64 {
		t.Fatalf("hash %q is not sha256 hex", base)
	}
	same := map[string]string{
		"block style and key order": `
volumes:
  logs:
  data: {}
services:
  web:
    restart: always
    mem_limit: 134217728
    healthcheck:
      interval: 5000ms
      test: [CMD, "true"]
    cap_add: [SYS_TIME, CAP_NET_ADMIN]
    labels: ["b=2", "a=1"]
    volumes:
      - source: logs
        target: /logs
        type: volume
        read_only: true
      - data:/data
    expose: [3000]
    ports:
      - target: 90
        published: "9090"
      - "8080:80"
    environment: ["B=2", "A=1"]
    command: nginx -g 'daemon off;'
    image: nginx:1.27
`,
		"replicas are a scale":     strings.Replace(hashBase, "restart: always", "restart: always\n    deploy: {replicas: 0}", 1),
		"unless-stopped is always": strings.Replace(hashBase, "restart: always", "restart: unless-stopped", 1),
		"a comment":                hashBase + "# a comment\n",
		"a default that applies":   strings.Replace(hashBase, "nginx:1.27", "nginx:${TAG:-1.27}", 1),
		"an extension":             hashBase + "x-note: hi\n",
		"depends_on orders starts": strings.Replace(hashBase, "restart: always", "restart: always\n    depends_on: [db]\n  db: {image: x}", 1),
	}
	for name, compose := range same {
		if got := hashOf(compose); got != base {
			t.Errorf("%s: hash changed", name)
		}
	}
	changed := map[string][2]string{
		"image tag":          {"nginx:1.27", "nginx:1.28"},
		"command":            {`"daemon off;"`, `"daemon on;"`},
		"env value":          {`A: "1"`, `A: "3"`},
		"env added":          {`A: "1"`, `A: "1"` + "\n      C: \"\""},
		"host port":          {"8080:80", "8081:80"},
		"host address":       {"8080:80", "127.0.0.1:8080:80"},
		"container port":     {"9090:90", "9090:91"},
		"expose":             {`"3000"`, `"3001"`},
		"read only":          {"logs:/logs:ro", "logs:/logs"},
		"mount path":         {"data:/data", "data:/srv"},
		"label":              {`b: "2"`, `b: "3"`},
		"capability":         {"SYS_TIME", "SYS_NICE"},
		"healthcheck":        {"interval: 5s", "interval: 6s"},
		"memory":             {"128m", "256m"},
		"restart":            {"restart: always", "restart: on-failure"},
		"privileged":         {"restart: always", "restart: always\n    privileged: true"},
		"hostname":           {"restart: always", "restart: always\n    hostname: box"},
		"tty":                {"restart: always", "restart: always\n    tty: true"},
		"cap_drop":           {"restart: always", "restart: always\n    cap_drop: [ALL]"},
		"cpus":               {"restart: always", "restart: always\n    cpus: 0.5"},
		"device":             {"restart: always", "restart: always\n    devices: [/dev/dri]"},
		"healthcheck off":    {`healthcheck: {test: ["CMD", "true"], interval: 5s}`, "healthcheck: {disable: true}"},
		"http port declared": {`ports: ["8080:80", "9090:90"]`, `ports: ["8080:80", {target: 90, published: "9090", app_protocol: http}]`},
	}
	for name, edit := range changed {
		compose := strings.Replace(hashBase, edit[0], edit[1], 1)
		if compose == hashBase {
			t.Fatalf("%s: %q not found", name, edit[0])
		}
		if hashOf(compose) == base {
			t.Errorf("%s: hash unchanged", name)
		}
	}
}

func TestOrder(t *testing.T) {
	st, err := Parse(context.Background(), "shop", `
services:
  api: {image: x, depends_on: [web]}
  web: {image: x, depends_on: {db: {condition: service_healthy}, cache: {condition: service_started}}}
  db: {image: x}
  cache: {image: x}
  admin: {image: x}
  zz-migrate: {image: x, depends_on: [db]}
`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range st.Services {
		names = append(names, s.Name)
	}
	// Ready services go by name: admin, cache, db first; then web (its two
	// dependencies done) before zz-migrate, then api after web.
	if want := []string{"admin", "cache", "db", "web", "api", "zz-migrate"}; !slices.Equal(names, want) {
		t.Errorf("order %v; want %v", names, want)
	}
	web := st.Services[3]
	want := []Dependency{{"cache", ServiceStarted}, {"db", ServiceHealthy}}
	if !slices.Equal(web.DependsOn, want) {
		t.Errorf("web depends on %v; want %v", web.DependsOn, want)
	}
}

func TestParseHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Parse(ctx, "shop", "services: {web: {image: x}}"); err != nil && errors.Is(err, domain.ErrInvalid) {
		t.Errorf("a cancelled parse is no 422: %v", err)
	}
}
