package domain

import (
	"strings"
	"testing"
)

func TestRequiresAdmin(t *testing.T) {
	tests := []struct {
		name string
		t    Type
		want bool
	}{
		{"plain", Type{}, false},
		{"named volume", Type{Volumes: []VolumeSpec{{Name: "data", Path: "/data", ReadOnly: true}}}, false},
		{"hostname and labels", Type{Hostname: "box", Labels: map[string]string{"com.example.a": "b"}}, false},
		{"privileged", Type{Privileged: true}, true},
		{"host path", Type{Volumes: []VolumeSpec{{Name: "h", Path: "/h", HostPath: "/srv"}}}, true},
		{"host network", Type{Network: NetworkHost}, true},
		{"device", Type{Devices: []DeviceSpec{{HostPath: "/dev/null"}}}, true},
		{"added capability", Type{CapAdd: []string{"NET_ADMIN"}}, true},
		{"dropped capabilities", Type{CapDrop: []string{"ALL"}}, false},
	}
	for _, tt := range tests {
		if got := tt.t.RequiresAdmin(); got != tt.want {
			t.Errorf("%s: RequiresAdmin = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestReplicaHostname(t *testing.T) {
	long := strings.Repeat("a", 61) + "-b" // 63 characters
	tests := []struct {
		hostname, name string
		replica        int
		want           string
	}{
		{"", "blog", 0, "blog-0"},
		{"", "blog", 3, "blog-3"},
		{"mail", "blog", 0, "mail"},
		{"mail", "blog", 1, "mail-1"},
		{"mail", "blog", 12, "mail-12"},
		{long, "blog", 0, long},
		{long, "blog", 1, strings.Repeat("a", 61) + "-1"},                // shortened to fit "-1"
		{"", strings.Repeat("n", 63), 2, strings.Repeat("n", 61) + "-2"}, // never longer than a label
	}
	for _, tt := range tests {
		ty := Type{Hostname: tt.hostname}
		got := ty.ReplicaHostname(tt.name, tt.replica)
		if got != tt.want || len(got) > MaxNameLength {
			t.Errorf("ReplicaHostname(%q, %q, %d) = %q, want %q", tt.hostname, tt.name, tt.replica, got, tt.want)
		}
	}
}
