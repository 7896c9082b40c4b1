package main

import "testing"

func TestTick(t *testing.T) {
	for _, c := range []struct {
		msg        string
		seq, i, ts int64
		ok         bool
	}{
		{`{"seq":12,"time":"2026-11-30T17:00:00Z","kind":"bench.tick","actor":"system","data":{"i":3,"t":1764522000123456789}}`, 12, 3, 1764522000123456789, true},
		{`{"seq":7,"time":"2026-11-30T17:00:00Z","kind":"bench.tick","actor":"system","data":{"i": 0, "t": 42}}`, 7, 0, 42, true},
		{`{"seq":8,"time":"2026-11-30T17:00:00Z","kind":"container.running","container":"a","actor":"system","data":{"i":1,"t":2}}`, 0, 0, 0, false},
		{`{"seq":9,"time":"2026-11-30T17:00:00Z","kind":"bench.tick","actor":"system","data":{"t":2}}`, 0, 0, 0, false},
	} {
		seq, i, ts, ok := tick([]byte(c.msg))
		if ok != c.ok || ok && (seq != c.seq || i != c.i || ts != c.ts) {
			t.Errorf("tick(%s) = %d %d %d %v; want %d %d %d %v", c.msg, seq, i, ts, ok, c.seq, c.i, c.ts, c.ok)
		}
	}
}
