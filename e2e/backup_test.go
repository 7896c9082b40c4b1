package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	e.Query(`INSERT INTO volume_backups (id, project, container_name, volume, target, object_key, status, created_by)
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

// readVolumeFile reads a file of a replica's /data through docker cp ("" and
// false when there is none).
func readVolumeFile(t *testing.T, id, name string) (string, bool) {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("docker", "cp", id+":/data/"+name, dst).CombinedOutput(); err != nil {
		if strings.Contains(string(out), "Could not find") || strings.Contains(string(out), "No such") {
			return "", false
		}
		t.Fatalf("docker cp: %v %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dst, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// TestVolumeRestore: a backup goes back into its container; a damaged or
// missing archive is refused with nothing changed.
func TestVolumeRestore(t *testing.T) {
	e := NewEnv(t)
	dir := filepath.Join(t.TempDir(), "archives")
	m := e.Start("MOOR_BACKUP_DIR=" + dir)
	m.Create(map[string]any{"name": "rs", "type": "testapp"})
	m.WaitStatus("rs", "running", 60*time.Second)
	put := func(id, name, content string) {
		src := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		docker(t, "cp", src, id+":/data/"+name)
	}
	id := e.DockerIDs("rs")[0]
	put(id, "hello.txt", "original\n")

	status, body := m.Do("POST", "/api/v1/containers/rs/backups", nil)
	if status != 202 {
		t.Fatalf("backup: %d %s", status, body)
	}
	var started struct{ Backups []backupRow }
	if err := json.Unmarshal(body, &started); err != nil {
		t.Fatal(err)
	}
	b := waitBackup(t, m, "rs", started.Backups[0].ID)
	if b.Status != "done" {
		t.Fatalf("backup: %+v", b)
	}
	put(id, "hello.txt", "changed\n")
	put(id, "extra.txt", "added after the backup\n")
	restore := "/api/v1/containers/rs/backups/" + b.ID + "/restore"

	// Not while a backup of it runs, nor a backup while a restore runs.
	e.Query(`INSERT INTO volume_backups (id, container_id, project, container_name, volume, target, object_key, status, created_by)
		SELECT '00000000-0000-4000-8000-0000000000bb', id, 'default', 'rs', 'data', 'local', 'volumes/y', 'running', 't' FROM containers WHERE name = 'rs'`)
	if status, body := m.Do("POST", restore, nil); status != 409 || !strings.Contains(string(body), "is running") {
		t.Fatalf("restore while a backup runs: %d %s", status, body)
	}
	e.Query(`DELETE FROM volume_backups WHERE id = '00000000-0000-4000-8000-0000000000bb'`)
	e.Query(`INSERT INTO volume_restores (id, backup_id, container_id, status, created_by)
		SELECT '00000000-0000-4000-8000-0000000000cc', $1, id, 'running', 't' FROM containers WHERE name = 'rs'`, b.ID)
	if status, body := m.Do("POST", "/api/v1/containers/rs/backups", nil); status != 409 || !strings.Contains(string(body), "being restored") {
		t.Fatalf("backup while a restore runs: %d %s", status, body)
	}
	e.Query(`DELETE FROM volume_restores`)

	// A damaged archive: refused, nothing changed.
	object := filepath.Join(dir, filepath.FromSlash(b.ObjectKey))
	good, err := os.ReadFile(object)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	if err := os.WriteFile(object, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if status, body := m.Do("POST", restore, nil); status != 422 || !strings.Contains(string(body), "damaged") {
		t.Fatalf("restore of a damaged archive: %d %s", status, body)
	}
	// A truncated one.
	if err := os.WriteFile(object, good[:len(good)-100], 0o600); err != nil {
		t.Fatal(err)
	}
	if status, body := m.Do("POST", restore, nil); status != 422 {
		t.Fatalf("restore of a truncated archive: %d %s", status, body)
	}
	// A missing one.
	if err := os.Remove(object); err != nil {
		t.Fatal(err)
	}
	if status, body := m.Do("POST", restore, nil); status != 404 || !strings.Contains(string(body), "missing") {
		t.Fatalf("restore of a missing archive: %d %s", status, body)
	}
	if got := e.DockerIDs("rs"); len(got) != 1 || got[0] != id {
		t.Fatalf("a refused restore touched the replicas: %v, was %s", got, id)
	}
	if s, _ := readVolumeFile(t, id, "hello.txt"); s != "changed\n" {
		t.Fatalf("a refused restore touched the volume: %q", s)
	}
	if n := e.Count(`SELECT count(*) FROM volume_restores`); n != 0 {
		t.Fatalf("a refused restore was recorded: %d", n)
	}
	// An unknown backup.
	if status, body := m.Do("POST", "/api/v1/containers/rs/backups/00000000-0000-4000-8000-000000000009/restore", nil); status != 404 {
		t.Fatalf("restore of no backup: %d %s", status, body)
	}

	// The archive back: restored.
	if err := os.WriteFile(object, good, 0o600); err != nil {
		t.Fatal(err)
	}
	status, body = m.Do("POST", restore, nil)
	if status != 202 {
		t.Fatalf("restore: %d %s", status, body)
	}
	deadline := time.Now().Add(60 * time.Second)
	for e.Count(`SELECT count(*) FROM events WHERE kind IN ('backup.restored', 'backup.restore_failed') AND container_name = 'rs'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no restore outcome after 60s\n%s", m.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rows := e.Query(`SELECT status, error FROM volume_restores`); len(rows) != 1 || rows[0][0] != "done" {
		t.Fatalf("restore: %v", rows)
	}
	m.WaitFor("rs", 60*time.Second, "running on a new replica", func(c Container, ok bool) bool {
		ids := e.DockerIDs("rs")
		return ok && c.Status == "running" && len(ids) == 1 && ids[0] != id
	})
	id = e.DockerIDs("rs")[0]
	if s, _ := readVolumeFile(t, id, "hello.txt"); s != "original\n" {
		t.Fatalf("after the restore hello.txt holds %q", s)
	}
	if _, ok := readVolumeFile(t, id, "extra.txt"); ok {
		t.Fatal("after the restore extra.txt is still there")
	}

	// A restore a killed moor left half-way is taken up at the next start
	// (recorded running, as a kill -9 between the record and the end
	// leaves it).
	put(id, "hello.txt", "changed again\n")
	m.Kill()
	e.Query(`INSERT INTO volume_restores (id, backup_id, container_id, status, created_by)
		SELECT '00000000-0000-4000-8000-0000000000aa', $1, id, 'running', 't' FROM containers WHERE name = 'rs'`, b.ID)
	m = e.Start("MOOR_BACKUP_DIR=" + dir)
	deadline = time.Now().Add(60 * time.Second)
	for e.Count(`SELECT count(*) FROM volume_restores WHERE status = 'running'`) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the restore left running was not taken up\n%s", m.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rows := e.Query(`SELECT status, error FROM volume_restores WHERE id = '00000000-0000-4000-8000-0000000000aa'`); rows[0][0] != "done" {
		t.Fatalf("taken-up restore: %v", rows)
	}
	m.WaitFor("rs", 60*time.Second, "running on a new replica", func(c Container, ok bool) bool {
		ids := e.DockerIDs("rs")
		return ok && c.Status == "running" && len(ids) == 1 && ids[0] != id
	})
	id = e.DockerIDs("rs")[0]
	if s, _ := readVolumeFile(t, id, "hello.txt"); s != "original\n" {
		t.Fatalf("after the taken-up restore hello.txt holds %q", s)
	}
}

// TestBackupQuiesce: a type's backup spec is followed: pause freezes the
// container while its volume is read (and it runs again after), a dump
// command's output is stored as one file instead of the volume; progress
// events count the bytes.
func TestBackupQuiesce(t *testing.T) {
	cat := t.TempDir()
	for name, backup := range map[string]string{
		"testapp-pause": "backup:\n  pause: true\n",
		"testapp-dump":  "backup:\n  dump: [\"/testapp\", \"-emit\", \"3000000\"]\n  dump_file: all.sql\n",
	} {
		def := "id: " + name + "\ntitle: t\nimage: moor-testapp:latest\ncategories: [test]\n" +
			"ports:\n  - name: http\n    port: 8080\n    http: true\nvolumes:\n  - name: data\n    path: /data\n" + backup
		if err := os.WriteFile(filepath.Join(cat, name+".yaml"), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := NewEnvWith(t, func(e *Env) { e.CatalogDir = cat })
	dir := filepath.Join(t.TempDir(), "archives")
	m := e.Start("MOOR_BACKUP_DIR=" + dir)
	key := backupKey(t, e)
	start := func(name string) backupRow {
		t.Helper()
		status, body := m.Do("POST", "/api/v1/containers/"+name+"/backups", nil)
		if status != 202 {
			t.Fatalf("backup %s: %d %s", name, status, body)
		}
		var started struct {
			Backups []backupRow
			Skipped []struct{ Volume, Reason string }
		}
		if err := json.Unmarshal(body, &started); err != nil {
			t.Fatal(err)
		}
		if len(started.Backups) != 1 {
			t.Fatalf("started: %s", body)
		}
		return waitBackup(t, m, name, started.Backups[0].ID)
	}

	m.Create(map[string]any{"name": "pz", "type": "testapp-pause"})
	m.Create(map[string]any{"name": "dz", "type": "testapp-dump"})
	m.WaitStatus("pz", "running", 60*time.Second)
	m.WaitStatus("dz", "running", 60*time.Second)

	pzID := e.DockerIDs("pz")[0]
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("paused\n"), 0o644)
	docker(t, "cp", src, pzID+":/data/f")
	b := start("pz")
	if b.Status != "done" {
		t.Fatalf("paused backup: %+v", b)
	}
	files, _ := readArchive(t, filepath.Join(dir, filepath.FromSlash(b.ObjectKey)), key)
	if files["./f"] != "paused\n" {
		t.Fatalf("paused backup holds %v", files)
	}
	for _, action := range []string{"pause", "unpause"} {
		// The engine's own record of the replica's pause and resume.
		out := docker(t, "events", "--since", "5m", "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--filter", "container="+pzID, "--filter", "event="+action, "--format", "{{.Action}}")
		if !strings.Contains(out, action) {
			t.Errorf("no %s event for the paused type's replica: %q\n%s", action, out, m.Logs())
		}
	}
	if st := docker(t, "inspect", "-f", "{{.State.Status}}", pzID); st != "running" {
		t.Fatalf("replica after the paused backup: %s", st)
	}
	if got := e.DockerIDs("pz"); len(got) != 1 || got[0] != pzID {
		t.Fatalf("the pause made the reconciler replace the replica: %v", got)
	}

	b = start("dz")
	if b.Status != "done" || b.Volume != "all.sql" {
		t.Fatalf("dump backup: %+v", b)
	}
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(b.ObjectKey)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, meta, err := backup.NewReader(f, key)
	if err != nil || meta.Kind != "dump" || meta.Volume != "all.sql" {
		t.Fatalf("dump archive: %+v %v", meta, err)
	}
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "all.sql" || hdr.Size != 3000000 {
		t.Fatalf("dump entry: %+v %v", hdr, err)
	}
	dump, _ := io.ReadAll(tr)
	if len(dump) != 3000000 || !strings.HasPrefix(string(dump), "0123456789abcdef") {
		t.Fatalf("dump holds %d bytes: %.40q", len(dump), dump)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("more than the dump in the archive: %v", err)
	}
	// A dump is not restored into a volume.
	if status, body := m.Do("POST", "/api/v1/containers/dz/backups/"+b.ID+"/restore", nil); status != 409 || !strings.Contains(string(body), "dump") {
		t.Fatalf("restore of a dump: %d %s", status, body)
	}
	// Progress: the last progress event of the dump counts up to its tar.
	rows := e.Query(`SELECT (data->>'bytes')::bigint FROM events WHERE kind = 'backup.progress' AND data->>'id' = $1 ORDER BY seq`, b.ID)
	for i := 1; i < len(rows); i++ {
		if rows[i][0].(int64) <= rows[i-1][0].(int64) {
			t.Fatalf("progress goes back: %v", rows)
		}
	}
	if len(rows) > 0 && rows[len(rows)-1][0].(int64) > b.TarBytes {
		t.Fatalf("progress past the end: %v > %d", rows, b.TarBytes)
	}
}
