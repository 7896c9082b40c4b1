package domain

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

var dbType = Type{ID: "db", Ports: []PortSpec{
	{Name: "pg", Port: 5432, Protocol: "tcp"},
	{Name: "dns-tcp", Port: 53, Protocol: "tcp"}, {Name: "dns-udp", Port: 53, Protocol: "udp"},
}}

// TestResolvePublish: each rule of a publish list, with the field and the
// words of its error.
func TestResolvePublish(t *testing.T) {
	for _, c := range []struct {
		name  string
		typ   Type
		reqs  []PublishRequest
		want  []string // bindings as Docker shows them
		field string   // the error's field ("": no error)
		words string   // in the error's rule
	}{
		{"none", dbType, nil, []string{}, "", ""},
		{"by number, default address", dbType, []PublishRequest{{Port: "5432", HostPort: 15432}}, []string{"127.0.0.1:15432->5432/tcp"}, "", ""},
		{"by name", dbType, []PublishRequest{{Port: "dns-udp", HostPort: 5353, HostIP: "0.0.0.0"}}, []string{"0.0.0.0:5353->53/udp"}, "", ""},
		{"ipv6", dbType, []PublishRequest{{Port: "pg", HostPort: 15432, HostIP: "::1"}}, []string{"[::1]:15432->5432/tcp"}, "", ""},
		{"mapped ipv4 is ipv4", dbType, []PublishRequest{{Port: "pg", HostPort: 1, HostIP: "::ffff:10.0.0.1"}}, []string{"10.0.0.1:1->5432/tcp"}, "", ""},
		{"same host port, other protocols", dbType, []PublishRequest{{Port: "dns-tcp", HostPort: 53}, {Port: "dns-udp", HostPort: 53}},
			[]string{"127.0.0.1:53->53/tcp", "127.0.0.1:53->53/udp"}, "", ""},
		{"same host port, other addresses", dbType, []PublishRequest{{Port: "pg", HostPort: 1, HostIP: "127.0.0.1"}, {Port: "pg", HostPort: 1, HostIP: "127.0.0.2"}},
			[]string{"127.0.0.1:1->5432/tcp", "127.0.0.2:1->5432/tcp"}, "", ""},
		{"port missing", dbType, []PublishRequest{{HostPort: 1}}, nil, "publish[0].port", "is required"},
		{"undeclared number", dbType, []PublishRequest{{Port: "5433", HostPort: 1}}, nil, "publish[0].port", "5433 is not a port of type \"db\"; it declares pg 5432/tcp"},
		{"undeclared name", dbType, []PublishRequest{{Port: "web", HostPort: 1}}, nil, "publish[0].port", "web is not a port"},
		{"not a number or name", dbType, []PublishRequest{{Port: "true", HostPort: 1}}, nil, "publish[0].port", "is not a port"},
		{"ambiguous number", dbType, []PublishRequest{{Port: "53", HostPort: 1}}, nil, "publish[0].port", "several protocols: name the one"},
		{"no ports", Type{ID: "bare"}, []PublishRequest{{Port: "80", HostPort: 1}}, nil, "publish[0].port", "declares no ports"},
		{"host port 0", dbType, []PublishRequest{{Port: "pg"}}, nil, "publish[0].host_port", "from 1 to 65535"},
		{"host port too big", dbType, []PublishRequest{{Port: "pg", HostPort: 65536}}, nil, "publish[0].host_port", "from 1 to 65535"},
		{"host ip a name", dbType, []PublishRequest{{Port: "pg", HostPort: 1, HostIP: "localhost"}}, nil, "publish[0].host_ip", "literal IP address"},
		{"host ip a network", dbType, []PublishRequest{{Port: "pg", HostPort: 1, HostIP: "10.0.0.0/8"}}, nil, "publish[0].host_ip", "literal IP address"},
		{"host ip with a zone", dbType, []PublishRequest{{Port: "pg", HostPort: 1, HostIP: "fe80::1%eth0"}}, nil, "publish[0].host_ip", "literal IP address"},
		{"twice", dbType, []PublishRequest{{Port: "pg", HostPort: 1}, {Port: "pg", HostPort: 1, HostIP: "127.0.0.1"}}, nil, "publish[1]", "overlaps publish[0]"},
		{"wildcard overlaps", dbType, []PublishRequest{{Port: "pg", HostPort: 1}, {Port: "pg", HostPort: 1, HostIP: "0.0.0.0"}}, nil, "publish[1]", "overlaps publish[0]"},
		{"host network", Type{ID: "h", Network: NetworkHost, Ports: dbType.Ports}, []PublishRequest{{Port: "pg", HostPort: 1}}, nil, "publish", "host's network"},
		{"too many", dbType, make([]PublishRequest, MaxPublished+1), nil, "publish", "at most"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ResolvePublish(c.typ, c.reqs, "127.0.0.1")
			var fe *FieldError
			switch {
			case c.field == "" && err != nil:
				t.Fatalf("error %v", err)
			case c.field == "":
				if s := PublishedStrings(got); !slices.Equal(s, c.want) {
					t.Fatalf("got %q, want %q", s, c.want)
				}
			case !errors.As(err, &fe) || !errors.Is(err, ErrInvalid):
				t.Fatalf("error %v, want a field error on %s", err, c.field)
			case fe.Field != c.field || !strings.Contains(fe.Rule, c.words):
				t.Fatalf("error %q on %s, want %q on %s", fe.Rule, fe.Field, c.words, c.field)
			}
		})
	}
}

func TestPublishFits(t *testing.T) {
	one := []PublishedPort{{Name: "pg", Port: 5432, Protocol: "tcp", HostIP: "127.0.0.1", HostPort: 15432}}
	for _, c := range []struct {
		field     string
		replicas  int
		published []PublishedPort
		words     string
	}{
		{"replicas", 0, one, ""},
		{"replicas", 1, one, ""},
		{"replicas", 5, nil, ""},
		{"replicas", 2, one, "must be 0 or 1 for a container that publishes host ports (127.0.0.1:15432->5432/tcp)"},
		{"publish", 3, one, "a container of 3 replicas cannot publish host ports"},
	} {
		err := PublishFits(c.field, c.replicas, c.published)
		var fe *FieldError
		if c.words == "" {
			if err != nil {
				t.Errorf("%d replicas: %v", c.replicas, err)
			}
			continue
		}
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Rule, c.words) {
			t.Errorf("%d replicas: %v, want %q on %s", c.replicas, err, c.words, c.field)
		}
	}
}

func TestOverlaps(t *testing.T) {
	b := func(ip string, port int, proto string) PublishedPort {
		return PublishedPort{HostIP: ip, HostPort: port, Protocol: proto}
	}
	for _, c := range []struct {
		a, b PublishedPort
		want bool
	}{
		{b("127.0.0.1", 1, "tcp"), b("127.0.0.1", 1, "tcp"), true},
		{b("127.0.0.1", 1, "tcp"), b("0.0.0.0", 1, "tcp"), true},
		{b("::", 1, "tcp"), b("::1", 1, "tcp"), true},
		{b("127.0.0.1", 1, "tcp"), b("127.0.0.2", 1, "tcp"), false},
		{b("127.0.0.1", 1, "tcp"), b("127.0.0.1", 1, "udp"), false},
		{b("127.0.0.1", 1, "tcp"), b("127.0.0.1", 2, "tcp"), false},
		{b("0.0.0.0", 1, "tcp"), b("::1", 1, "tcp"), false},
	} {
		if got := c.a.Overlaps(c.b); got != c.want || c.b.Overlaps(c.a) != c.want {
			t.Errorf("%v overlaps %v: %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestPortRefJSON: a number or a string in, the same out; any other value
// is kept as its text for validation to name.
func TestPortRefJSON(t *testing.T) {
	for in, want := range map[string]PortRef{`5432`: "5432", `"db"`: "db", `"5432"`: "5432", `true`: "true", `null`: "", `1.5`: "1.5"} {
		var r PublishRequest
		if err := json.Unmarshal([]byte(`{"port":`+in+`,"host_port":1}`), &r); err != nil || r.Port != want {
			t.Errorf("%s: %q %v, want %q", in, r.Port, err, want)
		}
	}
	b, _ := json.Marshal([]PortRef{"5432", "db"})
	if string(b) != `[5432,"db"]` {
		t.Errorf("marshal: %s", b)
	}
}

func TestParsePortRanges(t *testing.T) {
	for in, want := range map[string]string{"": "", "30000-30999": "30000-30999", " 80 , 30000-30001,65535": "80,30000-30001,65535"} {
		rs, err := ParsePortRanges(in)
		if err != nil || rs.String() != want {
			t.Errorf("%q: %q %v, want %q", in, rs, err, want)
		}
	}
	for _, bad := range []string{"x", "0", "65536", "2-1", "1-", "-5", "1-2-3"} {
		if _, err := ParsePortRanges(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	rs, _ := ParsePortRanges("30000-30999,25565")
	for port, want := range map[int]bool{30000: true, 30999: true, 25565: true, 29999: false, 31000: false} {
		if rs.Contains(port) != want {
			t.Errorf("contains %d: %v", port, !want)
		}
	}
}

func TestPortInUseWords(t *testing.T) {
	err := &PortInUseError{HostIP: "127.0.0.1", HostPort: 15432, By: PortHeldByProgram, Container: "db", Err: errors.New("bind: address already in use")}
	want := `host port 15432 (127.0.0.1) is already in use on this host (by another program: ss -tulpn shows which): ` +
		`choose another host_port with PATCH /api/v1/containers/db {"publish": [...]} (moor update db -p [HOST_IP:]HOST_PORT:PORT), or stop what holds it (bind: address already in use)`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	err = &PortInUseError{HostIP: "10.9.9.9", HostPort: 1, By: PortNoSuchAddress, Container: "db", Err: errors.New("x")}
	if s := err.Error(); !strings.HasPrefix(s, "host address 10.9.9.9 is not one of this host's addresses: choose another host_ip with PATCH /api/v1/containers/db") {
		t.Errorf("no such address: %s", s)
	}
	err = &PortInUseError{By: PortHeldByDocker, Err: errors.New("x")}
	if s := err.Error(); !strings.HasPrefix(s, "a host port is already in use") || !strings.Contains(s, "publish=PORT") {
		t.Errorf("without a port: %s", s)
	}
}
