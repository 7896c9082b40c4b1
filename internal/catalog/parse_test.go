package catalog

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

const fullTypeYAML = `
id: web
title: Web
description: |
  A web app.
image: example/web:1
categories: [webserver]
ports:
  - name: http
    port: 8080
    http: true
  - port: 53
    protocol: udp
env:
  - name: MODE
    choices: [a, b]
    default: a
  - name: KEY
    generate: hex32
    secret: true
volumes:
  - name: data
    path: /data
health:
  test: ["CMD", "/app", "-check"]
  interval: 5s
  timeout: 1m30s
  retries: 2
  start_period: 500ms
resources:
  memory_mb: 64
  cpus: 0.25
command: ["serve"]
privileged: false
network: host
hostname: web
interactive: true
cap_add: [CAP_NET_ADMIN]
cap_drop: [ALL]
devices:
  - host_path: /dev/dri
  - {host_path: /dev/ttyUSB0, container_path: /dev/zigbee, permissions: rw}
labels:
  com.example.team: web
  org.opencontainers.image.title: "Web"
backup:
  dump: ["sh", "-c", "exec dump-all"]
`

func TestParseTypeFull(t *testing.T) {
	got, err := ParseType([]byte(fullTypeYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Type{
		ID: "web", Title: "Web", Description: "A web app.\n", Image: "example/web:1",
		Categories: []string{"webserver"},
		Ports: []domain.PortSpec{
			{Name: "http", Port: 8080, Protocol: "tcp", HTTP: true},
			{Name: "udp-53", Port: 53, Protocol: "udp"}, // name filled in
		},
		Env: []domain.EnvSpec{
			{Name: "MODE", Choices: []string{"a", "b"}, Default: "a", Secret: no},
			{Name: "KEY", Generate: "hex32", Secret: yes},
		},
		Volumes: []domain.VolumeSpec{{Name: "data", Path: "/data"}},
		Health: &domain.HealthSpec{
			Test: []string{"CMD", "/app", "-check"}, Interval: 5 * time.Second,
			Timeout: 90 * time.Second, Retries: 2, StartPeriod: 500 * time.Millisecond,
		},
		Resources:      domain.ResourceSpec{MemoryMB: 64, CPUs: 0.25},
		Command:        []string{"serve"},
		Restart:        domain.RestartAlways, // default
		HTTPPortReason: ReasonDeclared,
		Network:        domain.NetworkHost,
		Hostname:       "web",
		Interactive:    true,
		CapAdd:         []string{"NET_ADMIN"}, // CAP_ prefix dropped
		CapDrop:        []string{"ALL"},
		Devices: []domain.DeviceSpec{
			{HostPath: "/dev/dri"},
			{HostPath: "/dev/ttyUSB0", ContainerPath: "/dev/zigbee", Permissions: "rw"},
		},
		Labels: map[string]string{"com.example.team": "web", "org.opencontainers.image.title": "Web"},
		Backup: &domain.BackupSpec{Dump: []string{"sh", "-c", "exec dump-all"}, DumpFile: domain.DefaultDumpFile}, // name filled in
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseType:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseTypeMinimalHasEmptyLists(t *testing.T) {
	got, err := ParseType([]byte("id: x\ntitle: X\nimage: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Categories == nil || got.Ports == nil || got.Env == nil {
		t.Errorf("lists should be empty, not nil: %+v", got)
	}
	if got.Restart != domain.RestartAlways {
		t.Errorf("restart = %q, want always", got.Restart)
	}
}

func TestParseTypeErrors(t *testing.T) {
	base := "id: x\ntitle: X\nimage: x\n"
	tests := []struct {
		name, yaml, field, rule string
	}{
		{"empty", "", "yaml", "empty"},
		{"comment only", "# nothing\n", "yaml", "empty"},
		{"unknown key", base + "imgae: nginx\n", "yaml", `line 4: unknown key "imgae"`},
		{"unknown nested key", base + "ports:\n  - port: 80\n    htp: true\n", "yaml", `unknown key "htp"`},
		{"source is not settable", base + "source: builtin\n", "yaml", `unknown key "source"`},
		{"integer duration", base + "health:\n  test: [NONE]\n  interval: 5\n", "yaml", "duration (write it like 5s"},
		{"bad duration", base + "health:\n  test: [NONE]\n  interval: soon\n", "yaml", "duration"},
		{"wrong shape", base + "ports: 80\n", "yaml", "cannot unmarshal"},
		{"not a mapping", "- a\n- b\n", "yaml", "cannot unmarshal"},
		{"syntax", "id: [x\n", "yaml", "line"},
		{"two documents", base + "---\n" + base, "yaml", "exactly one YAML document"},
		{"validation", "id: X\ntitle: X\nimage: x\n", "id", "DNS label"},
		{"validation nested", base + "volumes:\n  - name: d\n    path: /d/../e\n", "volumes[0].path", "clean"},
		{"unknown device key", base + "devices:\n  - {host: /dev/null}\n", "yaml", `unknown key "host"`},
		{"device path", base + "devices:\n  - {host_path: /etc/passwd}\n", "devices[0].host_path", "under /dev/"},
		{"labels as a list", base + "labels: [a, b]\n", "yaml", "cannot unmarshal"},
		{"moor label", base + "labels: {moor.id: x}\n", "labels.moor.id", "moor's own"},
		{"traefik label", base + "labels: {traefik.http.routers.x.rule: y}\n", "labels.traefik.http.routers.x.rule", "Traefik"},
		{"network bridge", base + "network: bridge\n", "network", `"host"`},
		{"hostname", base + "hostname: Mail.Example\n", "hostname", "DNS label"},
		{"null", "~\n", "id", "is required"},
		{"too big", base + "description: " + strings.Repeat("x", maxTypeFile) + "\n", "yaml", "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseType([]byte(tt.yaml))
			assertFieldError(t, err, tt.field, tt.rule)
			if strings.Contains(err.Error(), "domain.") {
				t.Errorf("error leaks a Go type name: %v", err)
			}
		})
	}
}

func TestCloneTypeIsDeep(t *testing.T) {
	a := validType()
	b := cloneType(a)
	b.Ports[0].Port = 1
	b.Env[0].Choices[0] = "z"
	b.Health.Test[0] = "NONE"
	b.Categories[0] = "z"
	b.Volumes[0].Name = "z"
	b.Command[0] = "z"
	b.Devices[0].HostPath = "/dev/z"
	b.Labels["com.example.team"] = "z"
	if !reflect.DeepEqual(a, validType()) {
		t.Error("changing the clone changed the original")
	}
}

func TestParseTypeBackup(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want *domain.BackupSpec
		err  string
	}{
		{"backup: {}", nil, ""},
		{"backup: {pause: true}", &domain.BackupSpec{Pause: true}, ""},
		{"backup: {dump: [pg_dumpall], dump_file: all.sql}", &domain.BackupSpec{Dump: []string{"pg_dumpall"}, DumpFile: "all.sql"}, ""},
		{"backup: {pause: true, dump: [x]}", nil, "backup: pause and dump are exclusive"},
		{"backup: {dump_file: x.sql}", nil, "backup.dump_file: needs a dump command"},
		{"backup: {dump: [x], dump_file: ../x}", nil, "backup.dump_file: must be a file name"},
		{"backup: {dump: [x], dump_file: a/b}", nil, "backup.dump_file: must be a file name"},
		{"backup: {dump: ['']}", nil, "backup.dump[0]: is the command"},
		{"backup: {dump: [x, '']}", &domain.BackupSpec{Dump: []string{"x", ""}, DumpFile: domain.DefaultDumpFile}, ""},
		{"backup: {dump: [x, \"a\\0b\"]}", nil, "backup.dump[1]: must be at most"},
		{"backup: {stop: true}", nil, "stop"},
	} {
		got, err := ParseType([]byte("id: x\ntitle: X\nimage: x\n" + tc.yaml + "\n"))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.yaml, err)
			continue
		}
		if !reflect.DeepEqual(got.Backup, tc.want) {
			t.Errorf("%s: backup = %+v, want %+v", tc.yaml, got.Backup, tc.want)
		}
	}
}
