package dnsserver

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func testConfig() ZoneConfig {
	return ZoneConfig{
		HostZone: "moor.localhost", ContainerZone: "moor.internal", TTL: 5,
		HostNS:       []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		ContainerNS:  []netip.Addr{netip.MustParseAddr("172.20.0.1")},
		ReverseCIDRs: []netip.Prefix{netip.MustParsePrefix("172.20.0.0/16"), netip.MustParsePrefix("fd00:20::/64")},
	}
}

// containerRecords are the rows moor writes for a running container: the
// host name at create, the container names per replica by the reconciler.
func containerRecords(name string, ips ...string) []Record {
	rs := []Record{{Zone: "host", Name: name + ".moor.localhost", Type: "A", Value: "127.0.0.1", TTL: 5, Replica: -1, Container: name}}
	for i, ip := range ips {
		typ := "A"
		if strings.Contains(ip, ":") {
			typ = "AAAA"
		}
		rs = append(rs,
			Record{Zone: "container", Name: name + ".moor.internal", Type: typ, Value: ip, TTL: 5, Replica: i, Container: name},
			Record{Zone: "container", Name: fmt.Sprintf("%d.%s.moor.internal", i, name), Type: typ, Value: ip, TTL: 5, Replica: i, Container: name})
	}
	return rs
}

func fixture() Data {
	var d Data
	d.Records = append(d.Records, containerRecords("blog", "172.20.0.2", "172.20.0.3")...)
	d.Records = append(d.Records, containerRecords("db", "fd00:20::5")...)
	d.Records = append(d.Records, containerRecords("stopped")...)
	d.Ports = []Port{
		{Container: "blog", Name: "http", Port: 8080, Proto: "tcp"},
		{Container: "db", Name: "postgres", Port: 5432, Proto: "tcp"},
		{Container: "stopped", Name: "http", Port: 80, Proto: "tcp"},
	}
	d.Aliases = []Alias{
		{Container: "blog", Name: "www.moor.localhost"},
		{Container: "blog", Name: "shop.example.com"}, // another zone: not ours
	}
	return d
}

func bigFixture() Data {
	d := fixture()
	var ips []string
	for i := 0; i < 100; i++ {
		ips = append(ips, fmt.Sprintf("172.20.1.%d", i+1))
	}
	d.Records = append(d.Records, containerRecords("big", ips...)...)
	return d
}

func mustBuild(t testing.TB, cfg ZoneConfig, d Data, serial uint32) *Snapshot {
	t.Helper()
	s, err := Build(cfg, d, serial)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuildGolden(t *testing.T) {
	wildcard := testConfig()
	wildcard.Wildcard = true
	noCIDRs := testConfig()
	noCIDRs.ReverseCIDRs = nil
	bad := fixture()
	bad.Records = append(bad.Records,
		Record{Zone: "host", Name: "elsewhere.example.com", Type: "A", Value: "10.0.0.1", TTL: 5, Replica: -1, Container: "x"},
		Record{Zone: "host", Name: "badip.moor.localhost", Type: "A", Value: "not-an-ip", TTL: 5, Replica: -1, Container: "badip"},
		Record{Zone: "host", Name: "v6in4.moor.localhost", Type: "A", Value: "fd00::1", TTL: 5, Replica: -1, Container: "v6in4"},
		Record{Zone: "moon", Name: "x.moor.localhost", Type: "A", Value: "10.0.0.1", TTL: 5, Replica: -1, Container: "x"},
		Record{Zone: "host", Name: "mx.moor.localhost", Type: "MX", Value: "10 mail", TTL: 5, Replica: -1, Container: "mx"},
		Record{Zone: "host", Name: "txt.moor.localhost", Type: "TXT", Value: "hello world", TTL: 5, Replica: -1, Container: "txt"},
		Record{Zone: "host", Name: "moor.localhost", Type: "A", Value: "10.0.0.9", TTL: 5, Replica: -1, Container: "apex"},
		Record{Zone: "host", Name: "blog.moor.localhost", Type: "A", Value: "127.0.0.1", TTL: 5, Replica: -1, Container: "blog"}, // duplicate
	)
	bad.Ports = append(bad.Ports, Port{Container: "blog", Name: "Bad_Name", Port: 1, Proto: "tcp"}, Port{Container: "blog", Name: "x", Port: 1, Proto: "sctp"})
	bad.Aliases = append(bad.Aliases, Alias{Container: "blog", Name: "db.moor.localhost"}, Alias{Container: "ghost", Name: "ghost2.moor.localhost"})
	cases := []struct {
		name string
		cfg  ZoneConfig
		data Data
	}{
		{"empty", testConfig(), Data{}},
		{"basic", testConfig(), fixture()},
		{"wildcard", wildcard, fixture()},
		{"reverse-default", noCIDRs, fixture()},
		{"bad-rows", testConfig(), bad},
		{"projects", projectsConfig(), projectsFixture()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustBuild(t, c.cfg, c.data, 42)
			got := s.ZoneText()
			for _, why := range s.Skipped {
				got += "; skipped: " + why + "\n"
			}
			path := filepath.Join("testdata", c.name+".zone")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./dnsserver -run TestBuildGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("zone text differs from %s (rerun with -update if intended):\n%s", path, got)
			}
		})
	}
}

func TestBuildConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		edit func(*ZoneConfig)
		want string
	}{
		{"host zone", func(c *ZoneConfig) { c.HostZone = "" }, "HostZone: must be a domain name"},
		{"overlap", func(c *ZoneConfig) { c.ContainerZone = "x.moor.localhost" }, "ContainerZone: must not overlap HostZone"},
		{"ttl", func(c *ZoneConfig) { c.TTL = 0 }, "TTL: must be at least 1 second"},
		{"host ns", func(c *ZoneConfig) { c.HostNS = nil }, "HostNS: must hold at least one address"},
		{"container ns", func(c *ZoneConfig) { c.ContainerNS = nil }, "ContainerNS: must hold at least one address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			c.edit(&cfg)
			_, err := Build(cfg, fixture(), 1)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestHashIgnoresOrder(t *testing.T) {
	a := fixture()
	b := fixture()
	b.Records[0], b.Records[len(b.Records)-1] = b.Records[len(b.Records)-1], b.Records[0]
	b.Ports[0], b.Ports[1] = b.Ports[1], b.Ports[0]
	if string(a.Hash()) != string(b.Hash()) {
		t.Fatal("hash depends on row order")
	}
	b.Records[0].Value = "172.20.9.9"
	if string(a.Hash()) == string(b.Hash()) {
		t.Fatal("hash ignores a changed value")
	}
}

func TestReverseZone(t *testing.T) {
	for in, want := range map[string]string{
		"172.20.0.0/16":  "20.172.in-addr.arpa.",
		"172.20.0.0/20":  "20.172.in-addr.arpa.",
		"10.1.2.0/24":    "2.1.10.in-addr.arpa.",
		"0.0.0.0/0":      "in-addr.arpa.",
		"fd00:20::/64":   "0.0.0.0.0.0.0.0.0.2.0.0.0.0.d.f.ip6.arpa.",
		"fd00:20::/62":   "0.0.0.0.0.0.0.0.2.0.0.0.0.d.f.ip6.arpa.",
		"2001:db8::/32":  "8.b.d.0.1.0.0.2.ip6.arpa.",
		"172.20.0.7/32":  "7.0.20.172.in-addr.arpa.",
		"192.168.1.0/23": "168.192.in-addr.arpa.",
	} {
		if got := reverseZone(netip.MustParsePrefix(in)); got != want {
			t.Errorf("reverseZone(%s) = %s, want %s", in, got, want)
		}
	}
}
