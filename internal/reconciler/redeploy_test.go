package reconciler

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/domain"
)

// redeploy is what the store's ChangeContainer does for a redeploy.
func redeploy(pull bool) func(*domain.Container) {
	return func(c *domain.Container) {
		c.ConfigVersion = max(c.ConfigVersion, 1) + 1
		c.DesiredState = domain.DesiredRunning
		c.RedeployAt = time.Now()
		if pull {
			c.PullAt = c.RedeployAt
		}
	}
}

// TestRedeploy: every replica is replaced by a new one, the image is
// pulled again only when asked, and the redeploy is recorded done once.
func TestRedeploy(t *testing.T) {
	for _, pull := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "pull"}[pull], func(t *testing.T) {
			h := newHarness(t, nil)
			h.deploy(newContainer("web", replicas(2)))
			before := h.eng.running("id-web")
			pulls := h.eng.count("PullImage")
			h.st.change("id-web", redeploy(pull), "container.redeploy_requested")
			c := h.settle("id-web")
			after := h.eng.running("id-web")
			if c.Status != domain.StatusRunning || len(after) != 2 || slices.ContainsFunc(after, func(id string) bool { return slices.Contains(before, id) }) {
				t.Fatalf("after the redeploy: %s, replicas %v (before %v)", c.Status, after, before)
			}
			if !c.RedeployAt.IsZero() || !c.PullAt.IsZero() {
				t.Fatalf("redeploy still pending: %v, pull %v", c.RedeployAt, c.PullAt)
			}
			want := pulls
			if pull {
				want++
			}
			if n := h.eng.count("PullImage"); n != want {
				t.Fatalf("%d pulls, want %d", n, want)
			}
			kinds := h.st.kinds("id-web")
			n := 0
			for _, k := range kinds {
				if k == "container.redeployed" {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d redeployed events: %v", n, kinds)
			}
		})
	}
}

// TestRedeployLocalImage: an image built on the engine (no registry) is
// not pulled; an image.pull event says so and the replicas are replaced
// with the local image.
func TestRedeployLocalImage(t *testing.T) {
	h := newHarness(t, nil)
	h.eng.images["local:1"] = true
	h.deploy(newContainer("web", func(c *domain.Container) { c.Image, c.Spec.Image = "local:1", "local:1" }))
	before := h.eng.running("id-web")
	h.st.change("id-web", redeploy(true), "container.redeploy_requested")
	c := h.settle("id-web")
	if c.Status != domain.StatusRunning || !c.PullAt.IsZero() || slices.Equal(before, h.eng.running("id-web")) {
		t.Fatalf("after the redeploy: %s (%s), pull pending %v, replicas %v (before %v)", c.Status, c.StatusReason, c.PullAt, h.eng.running("id-web"), before)
	}
	if !slices.Contains(h.st.kinds("id-web"), "image.pull") {
		t.Fatalf("no image.pull event: %v", h.st.kinds("id-web"))
	}
}

// TestRedeployPullFails: a pull that fails fails the redeploy before any
// replica is replaced, saying why; the pull stays pending for the retry.
func TestRedeployPullFails(t *testing.T) {
	h := newHarness(t, nil)
	h.deploy(newContainer("web"))
	before := h.eng.running("id-web")
	h.eng.fail["PullImage"] = &domain.PullError{Image: "app:1", Why: domain.PullUnreachable, Err: domain.ErrUnavailable}
	h.st.change("id-web", redeploy(true), "container.redeploy_requested")
	h.reconcile("id-web")
	c := h.container("id-web")
	if c.Status != domain.StatusFailed || !strings.Contains(c.StatusReason, "registry cannot be reached") || c.PullAt.IsZero() {
		t.Fatalf("after a failed pull: %s (%s), pull pending %v", c.Status, c.StatusReason, c.PullAt)
	}
	if !slices.Equal(before, h.eng.running("id-web")) {
		t.Fatalf("replicas replaced despite the failed pull: %v, before %v", h.eng.running("id-web"), before)
	}
	if c = h.settle("id-web"); c.Status != domain.StatusRunning || !c.PullAt.IsZero() || !c.RedeployAt.IsZero() {
		t.Fatalf("the retry did not finish the redeploy: %s (%s)", c.Status, c.StatusReason)
	}
}

// TestNameHeldElsewhere: a Docker name held by another moor installation
// is reported with its owner and the command that removes what it left;
// one made by hand says so.
func TestNameHeldElsewhere(t *testing.T) {
	for _, tc := range []struct {
		owner string
		want  []string
	}{
		{"other-installation", []string{"held by moor installation other-installation", "moor uninstall --owner other-installation", "docker rm -f moor-web-0"}},
		{"", []string{"not made by moor", "docker rm -f moor-web-0"}},
	} {
		h := newHarness(t, nil)
		labels := map[string]string{"made": "by hand"}
		if tc.owner != "" {
			labels = map[string]string{domain.LabelOwner: tc.owner, domain.LabelID: "id-of-theirs"}
		}
		h.eng.instances["rt-x"] = &domain.InstanceState{RuntimeID: "rt-x", Name: "moor-web-0", Labels: labels}
		h.st.put(newContainer("web"))
		h.reconcile("id-web")
		c := h.container("id-web")
		for _, w := range tc.want {
			if c.Status != domain.StatusFailed || !strings.Contains(c.StatusReason, w) {
				t.Errorf("owner %q: %s (%s), want it to say %q", tc.owner, c.Status, c.StatusReason, w)
			}
		}
	}
}
