package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// TestEventRetentionSetting: 720h by default, 0 turns pruning off, and a
// value that would prune under a minute is refused; the flag wins.
func TestEventRetentionSetting(t *testing.T) {
	for _, c := range []struct {
		env  string
		args []string
		want time.Duration
		err  string
	}{
		{"", nil, 720 * time.Hour, ""},
		{"0", nil, 0, ""},
		{"168h", nil, 168 * time.Hour, ""},
		{"30s", nil, 0, "MOOR_EVENT_RETENTION: must be 0 (keep every event) or at least 1m"},
		{"a month", nil, 0, `MOOR_EVENT_RETENTION: must be a duration`},
		{"a month", []string{"-event-retention", "1h"}, time.Hour, ""},
	} {
		t.Run(c.env+strings.Join(c.args, " "), func(t *testing.T) {
			t.Setenv("MOOR_EVENT_RETENTION", c.env)
			cfg, err := serveConfig(t, c.args)
			switch {
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			case c.err == "" && (err != nil || cfg.EventRetention != c.want):
				t.Errorf("retention %v, %v; want %v", cfg.EventRetention, err, c.want)
			}
		})
	}
}

// settingCase is one value of a setting: from the environment, or the
// flag in args; the value read (as got renders it), or an error containing
// err.
type settingCase struct {
	env  string
	args []string
	want string
	err  string
}

// checkSetting runs the cases of the variable through moor serve's parsing
// and validation.
func checkSetting(t *testing.T, variable string, cases []settingCase, got func(*config) string) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.env+strings.Join(c.args, " "), func(t *testing.T) {
			t.Setenv(variable, c.env)
			cfg, err := serveConfig(t, c.args)
			switch {
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			case c.err == "" && (err != nil || got(cfg) != c.want):
				t.Errorf("%s %s, %v; want %s", variable, got(cfg), err, c.want)
			}
		})
	}
}

// TestTrustedProxiesSetting: none by default; CIDRs and bare addresses,
// comma-separated; anything else is refused; the flag wins.
func TestTrustedProxiesSetting(t *testing.T) {
	checkSetting(t, "MOOR_TRUSTED_PROXIES", []settingCase{
		{"", nil, "[]", ""},
		{"10.0.0.0/8, 172.18.0.1,fd00::/8", nil, "[10.0.0.0/8 172.18.0.1/32 fd00::/8]", ""},
		{"10.1.2.3/8", nil, "[10.0.0.0/8]", ""},
		{"traefik", nil, "", `MOOR_TRUSTED_PROXIES: "traefik" is not a CIDR`},
		{"traefik", []string{"-trusted-proxies", "127.0.0.1"}, "[127.0.0.1/32]", ""},
	}, func(cfg *config) string {
		ps, _ := cfg.trustedProxies()
		return fmt.Sprint(ps)
	})
}

// TestRouterContainerSetting: none by default; Docker container names and
// ids, comma-separated; anything else is refused naming the variable; the
// flag wins.
func TestRouterContainerSetting(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	checkSetting(t, "MOOR_ROUTER_CONTAINER", []settingCase{
		{"", nil, "[]", ""},
		{"moor-traefik", nil, "[moor-traefik]", ""},
		{" traefik_1, moor.router-2 ," + id, nil, "[traefik_1 moor.router-2 " + id + "]", ""},
		{"/moor-traefik", nil, "", `MOOR_ROUTER_CONTAINER: "/moor-traefik" is not a Docker container name`},
		{"traefik;rm -rf", nil, "", `MOOR_ROUTER_CONTAINER: "traefik;rm -rf"`},
		{"-traefik", nil, "", `MOOR_ROUTER_CONTAINER: "-traefik"`},
		{"ok,bad name", nil, "", `MOOR_ROUTER_CONTAINER: "bad name"`},
		{"bad name", []string{"-router-container", "moor-traefik"}, "[moor-traefik]", ""},
	}, func(cfg *config) string { return fmt.Sprint(splitList(cfg.RouterContainer)) })
}

// TestPublishSettings: ports are published on 127.0.0.1 and only by admins
// by default; the address must be an IP address, the operators' ports
// ports and ranges; the flag wins.
func TestPublishSettings(t *testing.T) {
	for _, c := range []struct {
		addr, ports string
		args        []string
		wantAddr    string
		wantPorts   string
		err         string
	}{
		{"", "", nil, "127.0.0.1", "", ""},
		{"0.0.0.0", "30000-30999, 25565", nil, "0.0.0.0", "30000-30999,25565", ""},
		{"::1", "", nil, "::1", "", ""},
		{"localhost", "", nil, "", "", "MOOR_PUBLISH_ADDR: must be an IP address"},
		{"", "30999-30000", nil, "", "", `MOOR_PUBLISH_PORTS: "30999-30000" is not a port`},
		{"", "all", []string{"-publish-ports", "8000-8099"}, "127.0.0.1", "8000-8099", ""},
	} {
		t.Run(c.addr+"|"+c.ports, func(t *testing.T) {
			t.Setenv("MOOR_PUBLISH_ADDR", c.addr)
			t.Setenv("MOOR_PUBLISH_PORTS", c.ports)
			cfg, err := serveConfig(t, c.args)
			switch {
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			case c.err == "":
				ports, perr := domain.ParsePortRanges(cfg.PublishPorts)
				if err != nil || perr != nil || cfg.PublishAddr != c.wantAddr || ports.String() != c.wantPorts {
					t.Errorf("addr %q ports %q, %v %v; want %q %q", cfg.PublishAddr, ports, err, perr, c.wantAddr, c.wantPorts)
				}
			}
		})
	}
}
