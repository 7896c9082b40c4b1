package uninstall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/moorhq/moor/internal/domain"
)

// fakeEngine holds objects by name with their labels.
type fakeEngine struct {
	containers map[string]map[string]string // runtime id (= name) -> labels
	volumes    map[string]map[string]string
	networks   map[string]map[string]string
	busy       map[string]int // network -> removals refused as in use before it goes
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || v != "" && hv != v {
			return false
		}
	}
	return true
}

func names(m map[string]map[string]string, labels map[string]string) []string {
	var out []string
	for n, l := range m {
		if matches(l, labels) {
			out = append(out, n)
		}
	}
	return out
}

func (f *fakeEngine) List(ctx context.Context, labels map[string]string) ([]domain.InstanceState, error) {
	var out []domain.InstanceState
	for _, n := range names(f.containers, labels) {
		out = append(out, domain.InstanceState{RuntimeID: n, Name: n, Labels: f.containers[n]})
	}
	return out, nil
}
func (f *fakeEngine) Remove(ctx context.Context, id string) error {
	delete(f.containers, id)
	return nil
}
func (f *fakeEngine) ListVolumes(ctx context.Context, labels map[string]string) ([]string, error) {
	return names(f.volumes, labels), nil
}
func (f *fakeEngine) RemoveVolume(ctx context.Context, name string) error {
	delete(f.volumes, name)
	return nil
}
func (f *fakeEngine) ListNetworks(ctx context.Context, labels map[string]string) ([]string, error) {
	return names(f.networks, labels), nil
}
func (f *fakeEngine) RemoveNetwork(ctx context.Context, name string) error {
	if f.busy[name] > 0 {
		f.busy[name]--
		return fmt.Errorf("network %s: still used by traefik: %w", name, domain.ErrConflict)
	}
	delete(f.networks, name)
	return nil
}

func newFake() *fakeEngine {
	mine := map[string]string{domain.LabelOwner: "me", domain.LabelName: "blog"}
	theirs := map[string]string{domain.LabelOwner: "them"}
	return &fakeEngine{
		containers: map[string]map[string]string{"moor-blog-0": mine, "moor-blog-1": mine, "moor-x-0": theirs, "by-hand": {}},
		volumes:    map[string]map[string]string{"moor-blog_data_0": mine, "moor-x_data_0": theirs},
		networks:   map[string]map[string]string{"moor": mine, "moor-them": theirs},
		busy:       map[string]int{},
	}
}

// TestRemoveOnlyTheOwners: one installation's objects go, records first;
// another's and hand-made ones stay; kept volumes stay.
func TestRemoveOnlyTheOwners(t *testing.T) {
	for _, keep := range []bool{false, true} {
		f := newFake()
		f.busy["moor"] = 2 // endpoints still detaching: tried again
		ctx := context.Background()
		p, err := Find(ctx, f, "me")
		if err != nil || len(p.Containers) != 2 || len(p.Volumes) != 1 || len(p.Networks) != 1 {
			t.Fatalf("Find = %+v, %v", p, err)
		}
		var order []string
		var out bytes.Buffer
		err = Remove(ctx, f, p, Options{KeepVolumes: keep, Forget: func(context.Context) ([]string, error) {
			order = append(order, fmt.Sprintf("forget with %d containers", len(f.containers)))
			return []string{"blog"}, nil
		}, NetworkPatience: 5e9}, &out)
		if err != nil {
			t.Fatalf("Remove: %v\n%s", err, out.String())
		}
		if len(order) != 1 || order[0] != "forget with 4 containers" {
			t.Errorf("records deleted %v: want first, once", order)
		}
		if len(f.containers) != 2 || f.containers["moor-x-0"] == nil || f.containers["by-hand"] == nil || f.networks["moor"] != nil || f.networks["moor-them"] == nil {
			t.Errorf("left: %v, %v", f.containers, f.networks)
		}
		if _, kept := f.volumes["moor-blog_data_0"]; kept != keep || f.volumes["moor-x_data_0"] == nil {
			t.Errorf("keep %v: volumes %v", keep, f.volumes)
		}
		for _, want := range []string{"deleted the records of blog", "removed container moor-blog-0", "removed network moor"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("progress %q lacks %q", out.String(), want)
			}
		}
	}
}

// TestRemoveGoesOn: a failure is reported and the rest still goes.
func TestRemoveGoesOn(t *testing.T) {
	f := newFake()
	f.busy["moor"] = 1000
	p, _ := Find(context.Background(), f, "me")
	var out bytes.Buffer
	err := Remove(context.Background(), f, p, Options{}, &out)
	if !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "docker network rm moor") || len(f.containers) != 2 || f.volumes["moor-blog_data_0"] != nil {
		t.Fatalf("err %v; containers %v, volumes %v", err, f.containers, f.volumes)
	}
}

// TestDescribeAndOwners: the plan names what goes and what is kept; the
// owners found say which --owner to give.
func TestDescribeAndOwners(t *testing.T) {
	f := newFake()
	p, _ := Find(context.Background(), f, "me")
	p.Records = []string{"blog"}
	var b bytes.Buffer
	p.Describe(&b, true)
	for _, want := range []string{"2 containers: moor-blog-0, moor-blog-1 (moor containers blog)", "1 volume kept (--keep-volumes): moor-blog_data_0",
		"1 network: moor", "1 container record to delete"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s\nlacks %q", b.String(), want)
		}
	}
	if p.Empty(false) || (Plan{Records: []string{}}).Empty(false) != true {
		t.Error("Empty")
	}
	owners, unattributed, err := Owners(context.Background(), f)
	if err != nil || len(owners) != 2 || owners[0] != (Owner{ID: "me", Containers: 2, Volumes: 1, Networks: 1}) || unattributed != 0 {
		t.Fatalf("Owners = %+v, %d, %v", owners, unattributed, err)
	}
}
