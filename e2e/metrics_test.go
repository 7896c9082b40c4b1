package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/moorhq/moor/internal/testenv"
)

// scrape reads /metrics as Prometheus does and fails on anything its
// parser refuses.
func scrape(t *testing.T, m *Moor, key string) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := m.Do("GET", "/metrics", nil, key)
	if status != 200 {
		t.Fatalf("GET /metrics: %d %s", status, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Prometheus cannot parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// value is the sample of family name whose labels include want, or -1.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, mt := range f.Metric {
		got := map[string]string{}
		for _, l := range mt.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case mt.Counter != nil:
			return mt.Counter.GetValue()
		case mt.Gauge != nil:
			return mt.Gauge.GetValue()
		case mt.Histogram != nil:
			return float64(mt.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetrics: what an operator's Prometheus sees follows what moor does:
// containers by status, API requests, DNS answers by rcode, the Traefik
// configuration, websocket clients; and it needs a key.
func TestMetrics(t *testing.T) {
	e := NewEnv(t)
	dnsPort := testenv.FreeUDPPort(t)
	m := e.Start("MOOR_DNS_ADDR=127.0.0.1:" + dnsPort)
	viewer := strings.TrimSpace(e.run("apikey", "create", "--name", "prom", "--role", "viewer"))
	if status, _ := m.Do("GET", "/metrics", nil, ""); status != http.StatusUnauthorized {
		t.Errorf("/metrics without a key: %d, want 401", status)
	}

	before := scrape(t, m, viewer)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "moor_docker_up", "moor_dns_serial", "moor_traefik_config_bytes"} {
		if value(before, name, nil) < 0 {
			t.Errorf("%s missing", name)
		}
	}
	if v := value(before, "moor_containers", map[string]string{"status": "running"}); v != 0 {
		t.Errorf(`moor_containers{status="running"} = %v before any deploy, want 0`, v)
	}

	name := "met-" + randSuffix()
	m.Create(map[string]any{"name": name, "type": "testapp"})
	m.WaitStatus(name, "running", 90*time.Second)
	for _, q := range [][2]string{{name + ".moor.localhost", "A"}, {"nosuch.moor.localhost", "A"}, {"nosuch.moor.localhost", "A"}} {
		digStatus(t, dnsPort, q[0], q[1])
	}
	ws, _, err := dialEvents(t, m, "", viewer, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	after := scrape(t, m, viewer)
	checks := []struct {
		name   string
		labels map[string]string
		ok     func(v float64) bool
		want   string
	}{
		{"moor_containers", map[string]string{"status": "running"}, func(v float64) bool { return v == 1 }, "1"},
		{"moor_containers", map[string]string{"status": "failed"}, func(v float64) bool { return v == 0 }, "0"},
		{"moor_http_requests_total", map[string]string{"route": "/api/v1/containers", "method": "POST", "code": "202"}, func(v float64) bool { return v == 1 }, "1"},
		{"moor_http_requests_total", map[string]string{"route": "/metrics", "method": "GET", "code": "401"}, func(v float64) bool { return v == 1 }, "1"},
		{"moor_http_request_duration_seconds", map[string]string{"route": "/api/v1/containers/{name}", "method": "GET"}, func(v float64) bool { return v >= 1 }, ">= 1 (WaitStatus polls)"},
		{"moor_dns_responses_total", map[string]string{"rcode": "NXDOMAIN"}, func(v float64) bool {
			return v-value(before, "moor_dns_responses_total", map[string]string{"rcode": "NXDOMAIN"}) == 2
		}, "2 more than before"},
		{"moor_dns_queries_total", nil, func(v float64) bool { return v-value(before, "moor_dns_queries_total", nil) >= 3 }, ">= 3 more than before"},
		{"moor_dns_serial", nil, func(v float64) bool { return v > value(before, "moor_dns_serial", nil) }, "higher than before"},
		{"moor_traefik_config_bytes", nil, func(v float64) bool { return v > value(before, "moor_traefik_config_bytes", nil) }, "larger than before"},
		{"moor_docker_up", nil, func(v float64) bool { return v == 1 }, "1"},
		{"moor_events_last_seq", nil, func(v float64) bool { return v > value(before, "moor_events_last_seq", nil) }, "higher than before"},
		{"moor_websocket_clients", nil, func(v float64) bool { return v == 1 }, "1"},
	}
	for _, c := range checks {
		if v := value(after, c.name, c.labels); !c.ok(v) {
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, v, c.want)
		}
	}
	// Names in paths do not become labels.
	for _, mt := range after["moor_http_requests_total"].GetMetric() {
		for _, l := range mt.Label {
			if l.GetName() == "route" && strings.Contains(l.GetValue(), name) {
				t.Errorf("a container name became a route label: %s", l.GetValue())
			}
		}
	}
}
