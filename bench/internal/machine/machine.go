// Package machine describes the machine a benchmark runs on, for the
// figures it reports.
package machine

import (
	"os"
	"runtime"
	"strings"
)

// LoadAvg is the 1, 5 and 15 minute load averages, "A / B / C"
// ("unknown" outside Linux).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " / ")
}

// CPUModel is the first CPU's model name ("" when unknown).
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// CPU is CPUModel, or the architecture when the model is unknown.
func CPU() string {
	if m := CPUModel(); m != "" {
		return m
	}
	return runtime.GOARCH
}
