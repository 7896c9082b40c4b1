package catalog

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// validType is a type that passes Validate; each case breaks one rule.
func validType() domain.Type {
	return domain.Type{
		ID:          "web",
		Title:       "Web",
		Description: "A web app.\nOn two lines.",
		Logo:        "https://example.com/logo.png",
		Image:       "registry.example.com:5000/team/web:1.2@sha256:" + strings.Repeat("a", 64),
		Categories:  []string{"webserver", "dev-tools"},
		Ports: []domain.PortSpec{
			{Name: "http", Port: 8080, Protocol: "tcp", HTTP: true},
			{Name: "dns", Port: 53, Protocol: "udp"},
			{Name: "dns-tcp", Port: 53},
		},
		Env: []domain.EnvSpec{
			{Name: "MODE", Choices: []string{"a", "b"}, Default: "a"},
			{Name: "_lower_ok1", Pattern: `[0-9]+`, Default: "42"},
			{Name: "TOKEN", Generate: GenerateHex32, Secret: yes},
		},
		Volumes: []domain.VolumeSpec{
			{Name: "data", Path: "/data"},
			{Name: "sock", Path: "/var/run/docker.sock", HostPath: "/var/run/docker.sock", ReadOnly: true},
		},
		Health: &domain.HealthSpec{
			Test: []string{"CMD", "/app", "-check"}, Interval: time.Second, Timeout: time.Second,
			Retries: 3, StartPeriod: 2 * time.Second,
		},
		Resources: domain.ResourceSpec{MemoryMB: 64, CPUs: 0.5},
		Command:   []string{"serve", "--port", "8080"},
		Restart:   domain.RestartOnFailure,
		Network:   domain.NetworkHost,
		Hostname:  "web-1",
		Devices: []domain.DeviceSpec{
			{HostPath: "/dev/dri/renderD128"},
			{HostPath: "/dev/ttyUSB0", ContainerPath: "/dev/zigbee", Permissions: "rw"},
		},
		Labels: map[string]string{"com.example.team": "web", "moorish": "not moor's", "traefik-ish": ""},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*domain.Type)
		field string // "" means valid
		rule  string // substring of the rule
	}{
		{"valid", func(*domain.Type) {}, "", ""},
		{"defaults may be empty", func(t *domain.Type) { t.Restart = ""; t.Ports[0].Protocol = "" }, "", ""},
		{"NONE health", func(t *domain.Type) { t.Health.Test = []string{"NONE"} }, "", ""},
		{"CMD-SHELL health", func(t *domain.Type) { t.Health.Test = []string{"CMD-SHELL", "true"} }, "", ""},

		{"no id", func(t *domain.Type) { t.ID = "" }, "id", "is required"},
		{"id upper case", func(t *domain.Type) { t.ID = "Web" }, "id", "DNS label"},
		{"id too long", func(t *domain.Type) { t.ID = strings.Repeat("a", 64) }, "id", "at most 63"},
		{"id trailing dash", func(t *domain.Type) { t.ID = "web-" }, "id", "DNS label"},
		{"no title", func(t *domain.Type) { t.Title = "  " }, "title", "is required"},
		{"title newline", func(t *domain.Type) { t.Title = "a\nb" }, "title", "control characters"},
		{"description NUL", func(t *domain.Type) { t.Description = "a\x00b" }, "description", "control characters"},
		{"logo scheme", func(t *domain.Type) { t.Logo = "javascript:alert(1)" }, "logo", "http or https"},
		{"category", func(t *domain.Type) { t.Categories = []string{"Web Server"} }, "categories[0]", "lower-case"},
		{"category twice", func(t *domain.Type) { t.Categories = []string{"db", "db"} }, "categories[1]", "duplicates"},

		{"no image", func(t *domain.Type) { t.Image = "" }, "image", "is required"},
		{"image space", func(t *domain.Type) { t.Image = "nginx latest" }, "image", "whitespace"},
		{"image newline", func(t *domain.Type) { t.Image = "nginx\n" }, "image", "whitespace"},
		{"image option", func(t *domain.Type) { t.Image = "--privileged" }, "image", "not a valid image reference"},
		{"image upper", func(t *domain.Type) { t.Image = "Nginx" }, "image", "not a valid image reference"},
		{"image long", func(t *domain.Type) { t.Image = strings.Repeat("a", 513) }, "image", "at most 512"},

		{"port 0", func(t *domain.Type) { t.Ports[0].Port = 0 }, "ports[0].port", "between 1 and 65535"},
		{"port 65536", func(t *domain.Type) { t.Ports[1].Port = 65536 }, "ports[1].port", "between 1 and 65535"},
		{"protocol", func(t *domain.Type) { t.Ports[1].Protocol = "sctp" }, "ports[1].protocol", "tcp or udp"},
		{"two http", func(t *domain.Type) { t.Ports[2].HTTP = true }, "ports[2].http", "only one"},
		{"http udp", func(t *domain.Type) { t.Ports[1].HTTP = true; t.Ports[0].HTTP = false }, "ports[1].http", "needs protocol tcp"},
		{"port name missing", func(t *domain.Type) { t.Ports[0].Name = "" }, "ports[0].name", "is required"},
		{"port name label", func(t *domain.Type) { t.Ports[0].Name = "Web_UI" }, "ports[0].name", "DNS label"},
		{"port name twice", func(t *domain.Type) { t.Ports[1].Name = "http" }, "ports[1].name", "duplicates"},
		{"same port twice", func(t *domain.Type) { t.Ports[2].Port = 8080 }, "ports[2].port", "declared twice"},

		{"env name missing", func(t *domain.Type) { t.Env[0].Name = "" }, "env[0].name", "is required"},
		{"env name with =", func(t *domain.Type) { t.Env[0].Name = "A=B" }, "env[0].name", "must match"},
		{"env name with a space", func(t *domain.Type) { t.Env[0].Name = "A B" }, "env[0].name", "must match"},
		{"env name with a newline", func(t *domain.Type) { t.Env[0].Name = "A\nB" }, "env[0].name", "must match"},
		{"env name twice", func(t *domain.Type) { t.Env[1].Name = "MODE" }, "env[1].name", "duplicates"},
		{"default not a choice", func(t *domain.Type) { t.Env[0].Default = "c" }, "env[0].default", "must be one of a, b"},
		{"empty choice", func(t *domain.Type) { t.Env[0].Choices = []string{"a", ""} }, "env[0].choices[1]", "must not be empty"},
		{"choice twice", func(t *domain.Type) { t.Env[0].Choices = []string{"a", "a"} }, "env[0].choices[1]", "duplicates"},
		{"bad pattern", func(t *domain.Type) { t.Env[1].Pattern = "([" }, "env[1].pattern", "does not compile"},
		{"default vs pattern", func(t *domain.Type) { t.Env[1].Default = "x42" }, "env[1].default", "must match the pattern"},
		{"default control", func(t *domain.Type) { t.Env[1].Pattern = ""; t.Env[1].Default = "a\rb" }, "env[1].default", "control characters"},
		{"default too long", func(t *domain.Type) { t.Env[1].Pattern = ""; t.Env[1].Default = strings.Repeat("x", 4097) }, "env[1].default", "at most 4096"},
		{"generate unknown", func(t *domain.Type) { t.Env[2].Generate = "uuid" }, "env[2].generate", `"password" or "hex32"`},
		{"generate with default", func(t *domain.Type) { t.Env[2].Default = "x" }, "env[2].generate", "cannot be combined"},
		{"env label newline", func(t *domain.Type) { t.Env[0].Label = "a\nb" }, "env[0].label", "control characters"},

		{"volume name missing", func(t *domain.Type) { t.Volumes[0].Name = "" }, "volumes[0].name", "is required"},
		{"volume name label", func(t *domain.Type) { t.Volumes[0].Name = "my_data" }, "volumes[0].name", "DNS label"},
		{"volume name twice", func(t *domain.Type) { t.Volumes[1].Name = "data" }, "volumes[1].name", "duplicates"},
		{"volume relative", func(t *domain.Type) { t.Volumes[0].Path = "data" }, "volumes[0].path", "absolute"},
		{"volume dotdot", func(t *domain.Type) { t.Volumes[0].Path = "/data/../etc" }, "volumes[0].path", "clean"},
		{"volume trailing slash", func(t *domain.Type) { t.Volumes[0].Path = "/data/" }, "volumes[0].path", "clean"},
		{"volume root", func(t *domain.Type) { t.Volumes[0].Path = "/" }, "volumes[0].path", "must not be /"},
		{"volume colon", func(t *domain.Type) { t.Volumes[0].Path = "/data:ro" }, "volumes[0].path", "':'"},
		{"volume path twice", func(t *domain.Type) { t.Volumes[1].Path = "/data" }, "volumes[1].path", "mounted twice"},
		{"host path relative", func(t *domain.Type) { t.Volumes[1].HostPath = "run/docker.sock" }, "volumes[1].host_path", "absolute"},
		{"host path dotdot", func(t *domain.Type) { t.Volumes[1].HostPath = "/srv/../etc" }, "volumes[1].host_path", "clean"},

		{"moor's network", func(t *domain.Type) { t.Network = "" }, "", ""},
		{"network name", func(t *domain.Type) { t.Network = "bridge" }, "network", `"host"`},
		{"network upper", func(t *domain.Type) { t.Network = "Host" }, "network", `"host"`},
		{"no hostname", func(t *domain.Type) { t.Hostname = "" }, "", ""},
		{"hostname upper", func(t *domain.Type) { t.Hostname = "Web" }, "hostname", "DNS label"},
		{"hostname dotted", func(t *domain.Type) { t.Hostname = "mail.example.com" }, "hostname", "DNS label"},
		{"hostname long", func(t *domain.Type) { t.Hostname = strings.Repeat("h", 64) }, "hostname", "at most 63"},
		{"capabilities", func(t *domain.Type) { t.CapAdd = []string{"NET_ADMIN", "CAP_SYS_TIME"}; t.CapDrop = []string{"ALL"} }, "", ""},
		{"capability lower case", func(t *domain.Type) { t.CapAdd = []string{"net_admin"} }, "cap_add[0]", "upper case"},
		{"capability flag", func(t *domain.Type) { t.CapDrop = []string{"--privileged"} }, "cap_drop[0]", "upper case"},
		{"capability twice", func(t *domain.Type) { t.CapAdd = []string{"NET_ADMIN", "CAP_NET_ADMIN"} }, "cap_add[1]", "duplicates NET_ADMIN"},
		{"device relative", func(t *domain.Type) { t.Devices[0].HostPath = "dev/null" }, "devices[0].host_path", "absolute"},
		{"device missing", func(t *domain.Type) { t.Devices[0].HostPath = "" }, "devices[0].host_path", "is required"},
		{"device outside /dev", func(t *domain.Type) { t.Devices[0].HostPath = "/etc/shadow" }, "devices[0].host_path", "under /dev/"},
		{"device /dev itself", func(t *domain.Type) { t.Devices[0].HostPath = "/dev" }, "devices[0].host_path", "under /dev/"},
		{"device dotdot", func(t *domain.Type) { t.Devices[0].HostPath = "/dev/../etc/x" }, "devices[0].host_path", "clean"},
		{"device colon", func(t *domain.Type) { t.Devices[0].HostPath = "/dev/null:rw" }, "devices[0].host_path", "':'"},
		{"device target outside /dev", func(t *domain.Type) { t.Devices[1].ContainerPath = "/zigbee" }, "devices[1].container_path", "under /dev/"},
		{"device target twice", func(t *domain.Type) { t.Devices[1].ContainerPath = "/dev/dri/renderD128" }, "devices[1].container_path", "given twice"},
		{"device permissions", func(t *domain.Type) { t.Devices[1].Permissions = "rx" }, "devices[1].permissions", "r, w and m"},
		{"device permissions twice", func(t *domain.Type) { t.Devices[1].Permissions = "rr" }, "devices[1].permissions", "at most once"},
		{"device permissions all", func(t *domain.Type) { t.Devices[1].Permissions = "mwr" }, "", ""},
		{"label moor", func(t *domain.Type) { t.Labels["moor.id"] = "x" }, "labels.moor.id", "moor's own"},
		{"label moor upper", func(t *domain.Type) { t.Labels["MOOR.name"] = "x" }, "labels.MOOR.name", "moor's own"},
		{"label moor bare", func(t *domain.Type) { t.Labels["moor"] = "x" }, "labels.moor", "moor's own"},
		{"label traefik", func(t *domain.Type) { t.Labels["traefik.enable"] = "true" }, "labels.traefik.enable", "own Traefik provider"},
		{"label empty name", func(t *domain.Type) { t.Labels[""] = "x" }, "labels", "must not be empty"},
		{"label space", func(t *domain.Type) { t.Labels["a b"] = "x" }, "labels.a b", "without spaces"},
		{"label equals", func(t *domain.Type) { t.Labels["a=b"] = "x" }, "labels.a=b", "'='"},
		{"label long name", func(t *domain.Type) { t.Labels[strings.Repeat("k", 256)] = "" }, "labels." + strings.Repeat("k", 256), "at most 255"},
		{"label value newline", func(t *domain.Type) { t.Labels["com.example.team"] = "a\nb" }, "labels.com.example.team", "control characters"},
		{"label value long", func(t *domain.Type) { t.Labels["com.example.team"] = strings.Repeat("v", 4097) }, "labels.com.example.team", "at most 4096"},
		{"too many labels", func(t *domain.Type) {
			for i := range 65 {
				t.Labels[fmt.Sprintf("l%d", i)] = ""
			}
		}, "labels", "at most 64"},

		{"restart", func(t *domain.Type) { t.Restart = "unless-stopped" }, "restart", "must be always"},
		{"memory negative", func(t *domain.Type) { t.Resources.MemoryMB = -1 }, "resources.memory_mb", "negative"},
		{"memory tiny", func(t *domain.Type) { t.Resources.MemoryMB = 4 }, "resources.memory_mb", "at least 6"},
		{"cpus negative", func(t *domain.Type) { t.Resources.CPUs = -0.5 }, "resources.cpus", "non-negative"},
		{"cpus NaN", func(t *domain.Type) { t.Resources.CPUs = math.NaN() }, "resources.cpus", "non-negative"},
		{"command NUL", func(t *domain.Type) { t.Command = []string{"a\x00"} }, "command[0]", "NUL"},
		{"health empty", func(t *domain.Type) { t.Health.Test = nil }, "health.test", "is required"},
		{"health kind", func(t *domain.Type) { t.Health.Test = []string{"/app"} }, "health.test[0]", "CMD, CMD-SHELL or NONE"},
		{"health CMD alone", func(t *domain.Type) { t.Health.Test = []string{"CMD"} }, "health.test", "needs a command"},
		{"health shell args", func(t *domain.Type) { t.Health.Test = []string{"CMD-SHELL", "a", "b"} }, "health.test", "exactly one"},
		{"health interval", func(t *domain.Type) { t.Health.Interval = -time.Second }, "health.interval", "at least 1ms"},
		{"health retries", func(t *domain.Type) { t.Health.Retries = -1 }, "health.retries", "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ty := validType()
			tt.edit(&ty)
			err := Validate(ty)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			assertFieldError(t, err, tt.field, tt.rule)
		})
	}
}

// assertFieldError checks err is a FieldError for field whose rule
// contains rule, and that it unwraps to domain.ErrInvalid.
func assertFieldError(t *testing.T, err error, field, rule string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s: ...%s...", field, rule)
	}
	if !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("error %v does not unwrap to domain.ErrInvalid", err)
	}
	var fe *domain.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *domain.FieldError", err)
	}
	if fe.Field != field || !strings.Contains(fe.Rule, rule) {
		t.Errorf("got %q, want field %q with rule containing %q", err, field, rule)
	}
}
