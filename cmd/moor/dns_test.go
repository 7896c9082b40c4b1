package main

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestDNSConfigErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string // "" for valid
	}{
		{nil, ""},
		{[]string{"-dns-mode", "bind"}, "MOOR_DNS_MODE: must be auth, dnsmasq or both"},
		{[]string{"-dns-mode", "dnsmasq"}, "MOOR_DNS_HOSTSDIR: is required when MOOR_DNS_MODE is dnsmasq"},
		{[]string{"-dns-mode", "both", "-dns-hostsdir", "/tmp/h"}, ""},
		{[]string{"-dns-addr", "127.0.0.1:5353,nope"}, "MOOR_DNS_ADDR[1]: must be host:port"},
		{[]string{"-dns-container-cidrs", "172.18.0.0/16,bad"}, `MOOR_DNS_CONTAINER_CIDRS: "bad" must be a CIDR or an IP address`},
		{[]string{"-dns-transfer-peers", "10.0.0.0/33"}, "MOOR_DNS_TRANSFER_PEERS"},
		{[]string{"-container-dns", "gateway"}, `MOOR_CONTAINER_DNS: "gateway" must be an IP address`},
		{[]string{"-dns-upstreams", "1.1.1.1,x:53"}, `MOOR_DNS_UPSTREAMS: "x:53" must be ip or ip:port`},
		{[]string{"-dns-upstreams", "none"}, ""},
		{[]string{"-dns-secondaries", "192.0.2.1:5300,[2001:db8::1]:53"}, ""},
		{[]string{"-dns-secondaries", "ns2.example.com"}, "MOOR_DNS_SECONDARIES"},
		{[]string{"-dns-refresh", "10ms"}, "MOOR_DNS_REFRESH: must be at least 100ms"},
		{[]string{"-dns-tcp-max-conns", "0"}, "MOOR_DNS_TCP_MAX_CONNS: must be at least 1"},
		{[]string{"-dns-tcp-max-conns", "10", "-dns-tcp-max-per-source", "11"}, "MOOR_DNS_TCP_MAX_PER_SOURCE"},
		{[]string{"-dns-tcp-idle-timeout", "10ms"}, "MOOR_DNS_TCP_IDLE_TIMEOUT"},
		{[]string{"-dns-tcp-max-conns", "5000", "-dns-tcp-max-per-source", "64", "-dns-tcp-idle-timeout", "3s"}, ""},
		{[]string{"-http-idle-timeout", "0s"}, "MOOR_HTTP_IDLE_TIMEOUT"},
		{[]string{"-http-body-timeout", "0s"}, "MOOR_HTTP_BODY_TIMEOUT"},
		{[]string{"-http-max-conns", "3"}, "MOOR_HTTP_MAX_CONNS: must be at least 16"},
		{[]string{"-http-max-long", "0"}, "MOOR_HTTP_MAX_LONG"},
	}
	for _, c := range cases {
		checkConfig(t, c.args, c.want)
	}
}

// serveConfig parses args (after a database URL) as `moor serve` does,
// with the environment of the test, and validates the result.
func serveConfig(t *testing.T, args []string) (*config, error) {
	t.Helper()
	cfg, err := parse("serve", append([]string{"-database-url", "postgres://x"}, args...), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, cfg.validate()
}

// checkConfig parses args as `moor serve` does and checks that validation
// passes (want "") or fails with an error containing want.
func checkConfig(t *testing.T, args []string, want string) {
	t.Helper()
	_, err := serveConfig(t, args)
	switch {
	case want == "" && err != nil:
		t.Errorf("%v: %v", args, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%v: error %v, want it to contain %q", args, err, want)
	}
}

func TestParseAddrPorts(t *testing.T) {
	got, err := parseAddrPorts("X", "192.0.2.1, 192.0.2.2:5300,2001:db8::1,[2001:db8::2]:54")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "192.0.2.1:53 192.0.2.2:5300 [2001:db8::1]:53 [2001:db8::2]:54" {
		t.Fatalf("got %v", got)
	}
}

// TestEnvErrors: a value in the environment that does not parse is named,
// not silently taken as zero.
func TestEnvErrors(t *testing.T) {
	for _, c := range []struct {
		name, value, want string
		args              []string
	}{
		{"MOOR_DRAIN", "soon", `MOOR_DRAIN: must be a duration such as 30s or 500ms: "soon"`, nil},
		{"MOOR_DRAIN", "soon", "", []string{"-drain", "1s"}}, // the flag wins
		{"MOOR_DRAIN", "-1s", "MOOR_DRAIN: must be from 0 to 1m", nil},
		{"MOOR_DRAIN", "0", "", nil},
		{"MOOR_RESYNC", "5", `MOOR_RESYNC: must be a duration`, nil},
		{"MOOR_PROVIDER_INTERVAL", "1 second", "MOOR_PROVIDER_INTERVAL: must be a duration", nil},
		{"MOOR_DNS_REFRESH", "x", "MOOR_DNS_REFRESH: must be a duration", nil},
		{"MOOR_DNS_TTL", "5s", "MOOR_DNS_TTL: must be a number of seconds", nil},
	} {
		t.Run(c.name+"="+c.value+strings.Join(c.args, " "), func(t *testing.T) {
			t.Setenv(c.name, c.value)
			checkConfig(t, c.args, c.want)
		})
	}
}

// TestDNSSettingsParsedOnce: validation leaves the parsed settings the
// server is built from.
func TestDNSSettingsParsedOnce(t *testing.T) {
	cfg, err := parse("serve", []string{"-database-url", "postgres://x", "-dns-addr", "0.0.0.0:53,127.0.0.9:5300",
		"-container-dns", "172.18.0.1", "-dns-upstreams", "192.0.2.1", "-dns-container-cidrs", "172.18.0.0/16",
		"-dns-secondaries", "192.0.2.2:5300"}, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	s := cfg.DNS.settings
	got := fmt.Sprint(s.server.Listen, s.server.Zones.HostNS, s.server.Zones.ContainerNS, s.server.Upstreams,
		s.server.ContainerCIDRs, s.server.Secondaries, s.resolvConf)
	want := "[0.0.0.0:53 127.0.0.9:5300] [127.0.0.9] [172.18.0.1] [192.0.2.1:53] [172.18.0.0/16] [192.0.2.2:5300]"
	if got != want {
		t.Fatalf("settings %s\nwant     %s", got, want)
	}
	cfg, _ = parse("serve", []string{"-database-url", "postgres://x", "-dns-resolv-conf", "/nonexistent"}, io.Discard, nil)
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.DNS.settings.resolvConf != "/nonexistent" || cfg.DNS.settings.server.Upstreams != nil {
		t.Fatalf("no upstreams given: want them read from the resolv.conf at start, got %+v", cfg.DNS.settings)
	}
}
