package e2e

import (
	"archive/tar"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moorhq/moor/internal/backup"
)

// backupRow is a row of GET .../backups.
type backupRow struct {
	ID          string `json:"id"`
	Volume      string `json:"volume"`
	Target      string `json:"target"`
	ObjectKey   string `json:"object_key"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	SHA256      string `json:"sha256"`
	TarBytes    int64  `json:"tar_bytes"`
	StoredBytes int64  `json:"stored_bytes"`
}

// listBackups lists a container's backups.
func listBackups(t *testing.T, m *Moor, name string) []backupRow {
	t.Helper()
	status, body := m.Do("GET", "/api/v1/containers/"+name+"/backups", nil)
	if status != 200 {
		t.Fatalf("list backups: %d %s", status, body)
	}
	var out struct{ Backups []backupRow }
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Backups
}

// waitBackup waits for backup id to end, and returns it.
func waitBackup(t *testing.T, m *Moor, name, id string) backupRow {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, b := range listBackups(t, m, name) {
			if b.ID == id && b.Status != "running" {
				return b
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup %s still running after 60s", id)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// backupKey is the installation's backup key, from the key file moor
// created in its data directory.
func backupKey(t *testing.T, e *Env) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(e.DataDir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	key, err := backup.DeriveKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// readArchive decrypts the archive at path and returns its files' contents
// by tar entry name, and the content checksum.
func readArchive(t *testing.T, path string, key []byte) (map[string]string, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, meta, err := backup.NewReader(f, key)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Kind != "volume" || meta.Volume != "data" {
		t.Errorf("meta = %+v", meta)
	}
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = string(b)
	}
	if _, err := io.Copy(io.Discard, r); err != nil { // to the end: Sum is known
		t.Fatal(err)
	}
	return files, r.Sum()
}

// TestVolumeBackup: a container's volume is archived to MOOR_BACKUP_DIR,
// encrypted, with its checksum recorded and events raised; a backup a
// killed moor left running is marked failed at the next start; host paths
// are not backed up.
func TestVolumeBackup(t *testing.T) {
	e := NewEnv(t)
	dir := filepath.Join(t.TempDir(), "archives")
	m := e.Start("MOOR_BACKUP_DIR=" + dir)
	defer func() { m.Kill() }()
	m.Create(map[string]any{"name": "bk", "type": "testapp"})
	m.WaitStatus("bk", "running", 60*time.Second)

	// The image has no shell: the file goes in with docker cp.
	src := filepath.Join(t.TempDir(), "hello.txt")
	if err := os.WriteFile(src, []byte("kept in a backup\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ids := e.DockerIDs("bk")
	if len(ids) != 1 {
		t.Fatalf("replicas: %v", ids)
	}
	docker(t, "cp", src, ids[0]+":/data/hello.txt")

	status, body := m.Do("POST", "/api/v1/containers/bk/backups", nil)
	if status != 202 {
		t.Fatalf("backup: %d %s", status, body)
	}
	var started struct {
		Backups []backupRow
		Skipped []any
	}
	if err := json.Unmarshal(body, &started); err != nil {
		t.Fatal(err)
	}
	if len(started.Backups) != 1 || started.Backups[0].Status != "running" || started.Backups[0].Volume != "data" ||
		started.Backups[0].Target != "local" || len(started.Skipped) != 0 {
		t.Fatalf("started: %s", body)
	}
	b := waitBackup(t, m, "bk", started.Backups[0].ID)
	if b.Status != "done" || len(b.SHA256) != 64 || b.TarBytes == 0 || b.StoredBytes == 0 {
		t.Fatalf("backup: %+v", b)
	}
	files, sum := readArchive(t, filepath.Join(dir, filepath.FromSlash(b.ObjectKey)), backupKey(t, e))
	if files["./hello.txt"] != "kept in a backup\n" {
		t.Fatalf("archive holds %v", files)
	}
	if sum != b.SHA256 {
		t.Fatalf("archive's checksum %s, recorded %s", sum, b.SHA256)
	}
	for _, kind := range []string{"backup.started", "backup.done"} {
		if n := e.Count(`SELECT count(*) FROM events WHERE kind = $1 AND container_name = 'bk' AND data->>'volume' = 'data'`, kind); n != 1 {
			t.Errorf("%d %s events", n, kind)
		}
	}
	if n := e.Count(`SELECT count(*) FROM events WHERE kind = 'backup.done' AND data->>'sha256' = $1`, b.SHA256); n != 1 {
		t.Errorf("backup.done without the checksum")
	}
	// No helper container is left.
	if out := docker(t, "ps", "-aq", "--filter", "label=moor.owner="+e.Installation(), "--filter", "label=moor.helper"); out != "" {
		t.Errorf("helpers left: %s", out)
	}

	// A second backup lists first.
	status, body = m.Do("POST", "/api/v1/containers/bk/backups", nil)
	if status != 202 {
		t.Fatalf("second backup: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &started); err != nil {
		t.Fatal(err)
	}
	waitBackup(t, m, "bk", started.Backups[0].ID)
	if l := listBackups(t, m, "bk"); len(l) != 2 || l[0].ID != started.Backups[0].ID || l[1].ID != b.ID {
		t.Fatalf("list: %+v", l)
	}

	// A backup a killed moor left running is failed at the next start.
	m.Kill()
	e.Query(`INSERT INTO backups (id, project, container_name, volume, target, object_key, status, created_by)
		VALUES ('00000000-0000-4000-8000-000000000001', 'default', 'bk', 'data', 'local', 'volumes/x', 'running', 't')`)
	m = e.Start("MOOR_BACKUP_DIR=" + dir)
	m.WaitStatus("bk", "running", 60*time.Second)
	var left backupRow
	for _, b := range listBackups(t, m, "bk") {
		if b.ID == "00000000-0000-4000-8000-000000000001" {
			left = b
		}
	}
	if left.Status != "failed" || !strings.Contains(left.Error, "interrupted") {
		t.Fatalf("left running: %+v", left)
	}
	if n := e.Count(`SELECT count(*) FROM events WHERE kind = 'backup.failed' AND data->>'id' = '00000000-0000-4000-8000-000000000001'`); n != 1 {
		t.Errorf("%d backup.failed events for the interrupted backup", n)
	}

	// Host paths are not backed up.
	m.Create(map[string]any{"name": "hm", "type": "testapp-hostmount"})
	status, body = m.Do("POST", "/api/v1/containers/hm/backups", nil)
	if status != 409 || !strings.Contains(string(body), "host paths") {
		t.Fatalf("backup of host paths only: %d %s", status, body)
	}
	// Unknown container.
	if status, body := m.Do("POST", "/api/v1/containers/nosuch/backups", nil); status != 404 {
		t.Fatalf("backup of no container: %d %s", status, body)
	}
}
