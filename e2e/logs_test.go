package e2e

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/testenv"
)

// TestLogsFollow: ?follow=true streams a replica's log as it is written,
// ends when the replica stops, and counts against the caller's socket
// quota; errors found before the stream are JSON.
func TestLogsFollow(t *testing.T) {
	e := NewEnv(t)
	m := e.Start("MOOR_WS_PER_KEY=1")
	m.Create(map[string]any{"name": "web", "type": "testapp"})
	m.WaitStatus("web", "running", 60*time.Second)

	req, _ := http.NewRequest("GET", m.URL+"/api/v1/containers/web/logs?follow=true&tail=10", nil)
	req.Header.Set("Authorization", "Bearer "+e.Admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("follow: %d %v", resp.StatusCode, resp.Header)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	waitLine := func(what string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the stream ended before %q", what)
				}
				if strings.Contains(l, what) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q in the followed log", what)
			}
		}
	}
	waitLine(testenv.TestImageGreeting)

	// A second stream with the same key is over its quota of one.
	if status, body := m.Do("GET", "/api/v1/containers/web/logs?follow=true", nil); status != 429 {
		t.Errorf("second stream: %d %s", status, body)
	}
	if status, body := m.Do("GET", "/api/v1/containers/nosuch/logs?follow=true", nil); status != 404 || !strings.Contains(string(body), `"error"`) {
		t.Errorf("unknown container: %d %s", status, body)
	}

	// What the replica writes while followed arrives; the stream ends when
	// it stops.
	if status, body := m.Do("POST", "/api/v1/containers/web/stop", nil); status != 202 {
		t.Fatalf("stop: %d %s", status, body)
	}
	waitLine("shutting down")
	select {
	case _, ok := <-lines:
		for ok {
			_, ok = <-lines
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end when the replica stopped")
	}
}
