package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	p, err := New([]netip.Prefix{netip.MustParsePrefix("172.18.0.0/16")}, []string{"10.9.0.0/16", "192.168.1.5"})
	if err != nil {
		t.Fatal(err)
	}
	p.local = func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("203.0.113.9")} }
	cases := []struct {
		ip   string
		want string // "" allowed, else a word of the refusal
	}{
		{"93.184.216.34", ""},
		{"2606:2800:220:1::1", ""},
		{"172.18.0.5", ""},  // moor's container network (an n8n moor deployed)
		{"10.9.3.4", ""},    // allowed by the admin
		{"192.168.1.5", ""}, // allowed by the admin, one address
		{"192.168.1.6", "private"},
		{"127.0.0.1", "loopback"},
		{"127.5.5.5", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"10.0.0.1", "private"},
		{"172.16.0.1", "private"},
		{"192.168.0.1", "private"},
		{"fd00::1", "private"},
		{"100.64.0.1", "private"},
		{"0.0.0.0", "unicast"},
		{"224.0.0.1", "link-local"},
		{"239.1.1.1", "unicast"},
		{"255.255.255.255", "unicast"},
		{"203.0.113.9", "moor's host"},
	}
	for _, c := range cases {
		err := p.Check(netip.MustParseAddr(c.ip))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want allowed", c.ip, err)
		case c.want != "" && (!errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want refused as %s", c.ip, err, c.want)
		}
	}
	for host, ok := range map[string]bool{"127.0.0.1": false, "[::1]": false, "localhost": false, "LOCALHOST.": false,
		"169.254.169.254": false, "example.org": true, "93.184.216.34": true} {
		if err := p.CheckURLHost(host); (err == nil) != ok {
			t.Errorf("CheckURLHost(%s) = %v", host, err)
		}
	}
	if _, err := New(nil, []string{"not a host!"}); err == nil {
		t.Error("a bad allow-list entry was taken")
	}
}

type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestDialChecksTheResolvedAddress: a name is judged by what it resolves to
// when it is dialled (a name that moves to a loopback address is refused)
// and the connection goes to the address that was judged.
func TestDialChecksTheResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	res := fakeResolver{
		"rebound.example": {netip.MustParseAddr("127.0.0.1")},
		"mixed.example":   {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("169.254.169.254")},
		"n8n.local":       {netip.MustParseAddr("127.0.0.1")},
	}
	dial := func(p *Policy, host string) error {
		p.resolver = res
		c, err := p.DialContext(context.Background(), "tcp", net.JoinHostPort(host, itoa(port)))
		if err == nil {
			c.Close()
		}
		return err
	}
	strict, _ := New(nil, nil)
	for _, host := range []string{"rebound.example", "mixed.example", "127.0.0.1"} {
		if err := dial(strict, host); !errors.Is(err, ErrRefused) {
			t.Errorf("dial %s: %v, want refused", host, err)
		}
	}
	if err := dial(strict, "nowhere.example"); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("dial an unknown name: %v, want a lookup error", err)
	}
	byName, _ := New(nil, []string{"n8n.local"})
	if err := dial(byName, "n8n.local"); err != nil {
		t.Errorf("dial a host name the admin allowed: %v", err)
	}
	byNet, _ := New(nil, []string{"127.0.0.0/8"})
	if err := dial(byNet, "rebound.example"); err != nil {
		t.Errorf("dial into a range the admin allowed: %v", err)
	}
}

func itoa(n int) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(n)).String()[len("0.0.0.0:"):]
}
