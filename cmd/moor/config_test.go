package main

import (
	"io"
	"strings"
	"testing"
	"time"
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
			cfg, err := parse("serve", append([]string{"-database-url", "postgres://x"}, c.args...), io.Discard, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.validate()
			switch {
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one containing %q", err, c.err)
			case c.err == "" && (err != nil || cfg.EventRetention != c.want):
				t.Errorf("retention %v, %v; want %v", cfg.EventRetention, err, c.want)
			}
		})
	}
}
