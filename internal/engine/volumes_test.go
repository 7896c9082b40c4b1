package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/moorhq/moor/internal/domain"
	"github.com/moorhq/moor/internal/testenv"
)

// tarEntry is one entry of a volume's archive as the tests compare them.
type tarEntry struct {
	name     string // relative to the volume's root, cleaned ("." for the root)
	typ      byte
	mode     int64 // permission bits with setuid, setgid and sticky
	uid, gid int
	data     []byte // regular files
	link     string // symbolic links: the target; hard links: the entry linked to
	mtime    time.Time
}

var testMtime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// volumeContent is what the tests put in a volume: files of several sizes
// (around tar's 512-byte blocks, and a few MiB), modes (setuid too),
// owners other than root, an empty directory, symbolic links (relative,
// absolute and dangling) and a hard link. The root's own mode and owner
// are part of it.
func volumeContent() []tarEntry {
	big := make([]byte, 3<<20+7)
	rand.Read(big)
	sized := func(n int) []byte { return bytes.Repeat([]byte("x"), n) }
	return []tarEntry{
		{name: ".", typ: tar.TypeDir, mode: 0o750, uid: 999, gid: 999},
		{name: "big.bin", typ: tar.TypeReg, mode: 0o640, uid: 999, gid: 999, data: big},
		{name: "b511", typ: tar.TypeReg, mode: 0o644, data: sized(511)},
		{name: "b512", typ: tar.TypeReg, mode: 0o644, data: sized(512)},
		{name: "b513", typ: tar.TypeReg, mode: 0o644, data: sized(513)},
		{name: "empty", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		{name: "setuid", typ: tar.TypeReg, mode: 0o4755, data: []byte("#!/bin/true\n")},
		{name: "sub", typ: tar.TypeDir, mode: 0o755},
		{name: "sub/deeper", typ: tar.TypeDir, mode: 0o2775, uid: 70, gid: 70},
		{name: "sub/deeper/zero", typ: tar.TypeReg, mode: 0o600, uid: 70, gid: 70, data: []byte{}},
		{name: "sub/one", typ: tar.TypeReg, mode: 0o604, uid: 1000, gid: 2000, data: []byte("1")},
		{name: "sub/one-hard", typ: tar.TypeLink, link: "sub/one"},
		{name: "to-one", typ: tar.TypeSymlink, link: "sub/one", uid: 1000, gid: 1000},
		{name: "to-abs", typ: tar.TypeSymlink, link: "/etc/hostname"},
		{name: "dangling", typ: tar.TypeSymlink, link: "nowhere/at/all"},
	}
}

// makeTar writes entries as an archive rooted at "./", as ExportVolume
// writes them.
func makeTar(t *testing.T, entries []tarEntry) []byte { return makeTarAt(t, "./", entries) }

// makeTarAt writes entries as an archive rooted at root ("./", or "dir/").
func makeTarAt(t *testing.T, root string, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	byName := map[string]tarEntry{}
	for _, e := range entries {
		byName[e.name] = e
		if e.typ == tar.TypeLink {
			// As tar writes them: the attributes of the inode (the
			// engine applies them to it).
			target := byName[e.link]
			e.mode, e.uid, e.gid = target.mode, target.uid, target.gid
		}
		hdr := &tar.Header{Typeflag: e.typ, Name: root + e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: testMtime, Format: tar.FormatPAX}
		switch e.typ {
		case tar.TypeDir:
			hdr.Name = root + e.name + "/"
			if e.name == "." {
				hdr.Name = root
			}
		case tar.TypeReg:
			hdr.Size = int64(len(e.data))
		case tar.TypeSymlink:
			hdr.Linkname, hdr.Mode = e.link, 0o777
		case tar.TypeLink:
			hdr.Linkname = root + e.link
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readTar reads an exported archive into entries by name, checking every
// name starts with "./". A hard link takes the attributes and content of
// the entry it links to (whichever of the two names the engine met
// first); links counts them.
func readTar(t *testing.T, data []byte) (entries map[string]tarEntry, links int) {
	t.Helper()
	entries = map[string]tarEntry{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return entries, links
		}
		if err != nil {
			t.Fatalf("reading the export: %v", err)
		}
		if !strings.HasPrefix(hdr.Name, "./") {
			t.Errorf("entry %q is not relative to the volume's root", hdr.Name)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		e := tarEntry{name: path.Clean(hdr.Name), typ: hdr.Typeflag, mode: hdr.Mode & 0o7777, uid: hdr.Uid, gid: hdr.Gid, mtime: hdr.ModTime.UTC()}
		switch hdr.Typeflag {
		case tar.TypeReg:
			e.data = body
		case tar.TypeSymlink:
			e.link, e.mode = hdr.Linkname, 0
		case tar.TypeLink:
			target, ok := entries[path.Clean(hdr.Linkname)]
			if !ok {
				t.Fatalf("hard link %s to %s, not met before", hdr.Name, hdr.Linkname)
			}
			links++
			target.name = e.name
			e = target
		}
		entries[e.name] = e
	}
}

// wantEntries is what an export of content should hold: hard links as
// the files they link to.
func wantEntries(content []tarEntry) map[string]tarEntry {
	out := map[string]tarEntry{}
	for _, e := range content {
		e.mtime = testMtime
		switch e.typ {
		case tar.TypeLink:
			target := out[e.link]
			target.name = e.name
			e = target
		case tar.TypeSymlink:
			e.mode = 0
		}
		out[e.name] = e
	}
	return out
}

// compareEntries reports every difference between an export and what was
// written.
func compareEntries(t *testing.T, what string, got, want map[string]tarEntry) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w := want[name]
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: %s missing", what, name)
			continue
		}
		if g.typ != w.typ || g.mode != w.mode || g.uid != w.uid || g.gid != w.gid || g.link != w.link {
			t.Errorf("%s: %s = type %c mode %o owner %d:%d link %q; want type %c mode %o owner %d:%d link %q",
				what, name, g.typ, g.mode, g.uid, g.gid, g.link, w.typ, w.mode, w.uid, w.gid, w.link)
		}
		if !bytes.Equal(g.data, w.data) {
			t.Errorf("%s: %s holds %d bytes (sha256 %x); want %d (%x)", what, name, len(g.data), sha256.Sum256(g.data), len(w.data), sha256.Sum256(w.data))
		}
		if w.typ != tar.TypeSymlink && !g.mtime.Equal(w.mtime) {
			t.Errorf("%s: %s modified %v; want %v", what, name, g.mtime, w.mtime)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: %s should not be there", what, name)
		}
	}
}

// copyTest is the setting of a volume copy test: an owner of its own, so
// what one test sweeps is its own.
type copyTest struct {
	t     *testing.T
	d     *Docker
	image string
	owner string
}

func newCopyTest(t *testing.T) *copyTest {
	image := testenv.TestImage(t)
	ct := &copyTest{t: t, d: newTestDocker(t, ""), image: image, owner: uniqueName("owner")}
	t.Cleanup(func() {
		// Whatever happened, no helper of this test's is left.
		ctx, cancel := cleanupCtx()
		defer cancel()
		if left := ct.helpers(ctx); len(left) > 0 {
			t.Errorf("helpers left behind: %v", left)
			for _, id := range left {
				ct.d.Remove(ctx, id)
			}
		}
	})
	return ct
}

// with is ct for subtest t: its failures are t's.
func (ct *copyTest) with(t *testing.T) *copyTest {
	c := *ct
	c.t = t
	return &c
}

func (ct *copyTest) spec(volume string) domain.VolumeCopy {
	return domain.VolumeCopy{Volume: volume, Image: ct.image, Labels: testLabels(domain.LabelOwner, ct.owner)}
}

// helpers lists the IDs of this test's helper containers.
func (ct *copyTest) helpers(ctx context.Context) []string {
	ct.t.Helper()
	states, err := ct.d.List(ctx, map[string]string{domain.LabelOwner: ct.owner, domain.LabelHelper: domain.HelperBackup})
	if err != nil {
		ct.t.Fatal(err)
	}
	var ids []string
	for _, st := range states {
		ids = append(ids, st.RuntimeID)
	}
	return ids
}

func (ct *copyTest) noHelpers(ctx context.Context, when string) {
	ct.t.Helper()
	if left := ct.helpers(ctx); len(left) > 0 {
		ct.t.Errorf("%s: helpers left: %v", when, left)
	}
}

// volume makes a volume removed when the test ends, holding content
// written straight through the engine's archive endpoint.
func (ct *copyTest) volume(ctx context.Context, name string, content []tarEntry) {
	ct.t.Helper()
	ensureVolumeForTest(ct.t, ct.d, name, testLabels(domain.LabelOwner, ct.owner))
	id, err := ct.d.createHelper(ctx, ct.spec(name), false)
	if err != nil {
		ct.t.Fatal(err)
	}
	defer ct.d.removeHelper(id)
	data := makeTarAt(ct.t, strings.TrimPrefix(helperMount, "/")+"/", content)
	if _, err := ct.d.cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: bytes.NewReader(data)}); err != nil {
		ct.t.Fatalf("seeding %s: %v", name, err)
	}
}

// removeVolumeLater removes a volume a test makes by other means.
func (ct *copyTest) removeVolumeLater(name string) {
	ct.t.Cleanup(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		if err := ct.d.RemoveVolume(ctx, name); err != nil {
			ct.t.Errorf("cleanup: %v", err)
		}
	})
}

func (ct *copyTest) export(ctx context.Context, volume string) []byte {
	ct.t.Helper()
	rc, err := ct.d.ExportVolume(ctx, ct.spec(volume))
	if err != nil {
		ct.t.Fatalf("ExportVolume(%s): %v", volume, err)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		ct.t.Fatalf("reading the export of %s: %v", volume, err)
	}
	if err := rc.Close(); err != nil {
		ct.t.Fatalf("closing the export of %s: %v", volume, err)
	}
	ct.noHelpers(ctx, "after an export")
	return data
}

// TestVolumeExportImport copies volumes out of and into the engine through
// helpers made from the test image, a FROM scratch image: nothing runs.
func TestVolumeExportImport(t *testing.T) {
	t.Parallel()
	ct := newCopyTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	content := volumeContent()
	want := wantEntries(content)
	src := uniqueName("vol-src")
	ct.volume(ctx, src, content)

	exported := ct.export(ctx, src)
	got, links := readTar(t, exported)
	compareEntries(t, "export", got, want)
	if links != 1 {
		t.Errorf("the export holds %d hard links; want 1", links)
	}

	t.Run("IntoNewVolume", func(t *testing.T) {
		ct := ct.with(t)
		fresh := uniqueName("vol-new")
		ct.removeVolumeLater(fresh)
		if err := ct.d.ImportVolume(ctx, ct.spec(fresh), bytes.NewReader(exported)); err != nil {
			t.Fatalf("ImportVolume: %v", err)
		}
		ct.noHelpers(ctx, "after an import")
		got, _ := readTar(t, ct.export(ctx, fresh))
		compareEntries(t, "import into a new volume", got, want)
		vols, err := ct.d.ListVolumes(ctx, map[string]string{domain.LabelOwner: ct.owner})
		if err != nil || !slices.Contains(vols, fresh) {
			t.Errorf("the new volume lacks the spec's labels: %v, %v", vols, err)
		}
	})

	t.Run("ReplacesContent", func(t *testing.T) {
		ct := ct.with(t)
		old := uniqueName("vol-old")
		labels := testLabels(domain.LabelOwner, ct.owner, "moor.t.kept", "yes")
		ensureVolumeForTest(t, ct.d, old, labels)
		ct.volume(ctx, old, []tarEntry{
			{name: ".", typ: tar.TypeDir, mode: 0o777},
			{name: "only-old", typ: tar.TypeReg, mode: 0o644, data: []byte("old")},
			{name: "sub", typ: tar.TypeDir, mode: 0o700},
			{name: "sub/one", typ: tar.TypeReg, mode: 0o666, data: []byte("old content, longer")},
			{name: "sub/only-old-dir", typ: tar.TypeDir, mode: 0o755},
			{name: "big.bin", typ: tar.TypeSymlink, link: "/"},
		})
		if err := ct.d.ImportVolume(ctx, ct.spec(old), bytes.NewReader(exported)); err != nil {
			t.Fatalf("ImportVolume: %v", err)
		}
		got, _ := readTar(t, ct.export(ctx, old))
		compareEntries(t, "import over old content", got, want)
		// Recreated with its own labels.
		if vols, err := ct.d.ListVolumes(ctx, map[string]string{"moor.t.kept": "yes"}); err != nil || !slices.Equal(vols, []string{old}) {
			t.Errorf("volumes labelled as the old one = %v, %v", vols, err)
		}
	})

	t.Run("RefusedWhileUsed", func(t *testing.T) {
		ct := ct.with(t)
		used := uniqueName("vol-used")
		ct.volume(ctx, used, []tarEntry{{name: "keep", typ: tar.TypeReg, mode: 0o644, data: []byte("keep")}})
		name := uniqueName("user")
		id, err := ct.d.Create(ctx, domain.InstanceSpec{Name: name, Image: ct.image, Labels: testLabels(),
			Mounts: []domain.Mount{{Source: used, Target: "/data"}}})
		if err != nil {
			t.Fatal(err)
		}
		removeLater(t, ct.d, id)
		err = ct.d.ImportVolume(ctx, ct.spec(used), bytes.NewReader(exported))
		if !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), name) {
			t.Fatalf("ImportVolume into a volume a (stopped) container uses = %v; want ErrConflict naming %s", err, name)
		}
		got, _ := readTar(t, ct.export(ctx, used))
		if e, ok := got["keep"]; !ok || string(e.data) != "keep" || len(got) != 2 {
			t.Errorf("the refused import changed the volume: %v", slices.Sorted(maps.Keys(got)))
		}
	})

	t.Run("Errors", func(t *testing.T) {
		ct := ct.with(t)
		missing := uniqueName("vol-missing")
		if _, err := ct.d.ExportVolume(ctx, ct.spec(missing)); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("ExportVolume of a missing volume = %v; want ErrNotFound", err)
		}
		if vols, _ := ct.d.ListVolumes(ctx, nil); slices.Contains(vols, missing) {
			ct.removeVolumeLater(missing)
			t.Errorf("ExportVolume created the missing volume")
		}
		noOwner := ct.spec(src)
		noOwner.Labels = testLabels()
		if _, err := ct.d.ExportVolume(ctx, noOwner); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("ExportVolume without an owner = %v; want ErrInvalid", err)
		}
		noImage := ct.spec(src)
		noImage.Image = "moor-t-no-such-image:" + hex.EncodeToString([]byte(ct.owner))[:8]
		if _, err := ct.d.ExportVolume(ctx, noImage); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("ExportVolume with a missing image = %v; want ErrNotFound", err)
		}
		if err := ct.d.ImportVolume(ctx, noImage, bytes.NewReader(exported)); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("ImportVolume with a missing image = %v; want ErrNotFound", err)
		}
		if got, _ := readTar(t, ct.export(ctx, src)); len(got) != len(want) {
			t.Errorf("an import that could not start emptied the volume: %d entries left", len(got))
		}
		// An archive that is not one: the engine refuses it.
		bad := uniqueName("vol-bad")
		ct.removeVolumeLater(bad)
		if err := ct.d.ImportVolume(ctx, ct.spec(bad), strings.NewReader(strings.Repeat("not a tar archive\n", 100))); err == nil {
			t.Errorf("ImportVolume of garbage succeeded")
		}
		ct.noHelpers(ctx, "after failures")
	})
}

// TestVolumeExportStops checks a helper goes when the reader is closed
// early or the caller's context ends mid-stream, and that SweepHelpers
// removes one a crash left.
func TestVolumeExportStops(t *testing.T) {
	t.Parallel()
	ct := newCopyTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	big := make([]byte, 16<<20)
	rand.Read(big)
	vol := uniqueName("vol-stop")
	ct.volume(ctx, vol, []tarEntry{{name: "big", typ: tar.TypeReg, mode: 0o644, data: big}})

	t.Run("CloseEarly", func(t *testing.T) {
		ct := ct.with(t)
		rc, err := ct.d.ExportVolume(ctx, ct.spec(vol))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(rc, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		if len(ct.helpers(ctx)) != 1 {
			t.Errorf("no helper while the stream is open")
		}
		rc.Close()
		ct.noHelpers(ctx, "after Close")
		if err := rc.Close(); err != nil {
			t.Errorf("Close again: %v", err)
		}
	})

	t.Run("ContextEnds", func(t *testing.T) {
		ct := ct.with(t)
		cctx, ccancel := context.WithCancel(ctx)
		rc, err := ct.d.ExportVolume(cctx, ct.spec(vol))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 64<<10)); err != nil {
			t.Fatal(err)
		}
		ccancel()
		// Not closed, not read: the helper goes all the same.
		deadline := time.Now().Add(20 * time.Second)
		for len(ct.helpers(ctx)) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		ct.noHelpers(ctx, "after the context ended")
		if _, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
			t.Errorf("reading after the context ended = %v; want context.Canceled", err)
		}
	})

	t.Run("Sweep", func(t *testing.T) {
		ct := ct.with(t)
		left, err := ct.d.createHelper(ctx, ct.spec(vol), true)
		if err != nil {
			t.Fatal(err)
		}
		busy, err := ct.d.createHelper(ctx, ct.spec(vol), true)
		if err != nil {
			t.Fatal(err)
		}
		defer ct.d.removeHelper(busy)
		ct.d.helpers.Delete(left) // as after a crash: no one uses it
		other := domain.VolumeCopy{Volume: vol, Image: ct.image, Labels: testLabels(domain.LabelOwner, ct.owner+"-other")}
		theirs, err := ct.d.createHelper(ctx, other, true)
		if err != nil {
			t.Fatal(err)
		}
		defer ct.d.removeHelper(theirs)

		if err := ct.d.SweepHelpers(ctx, ct.owner); err != nil {
			t.Fatalf("SweepHelpers: %v", err)
		}
		if got := ct.helpers(ctx); !slices.Equal(got, []string{busy}) {
			t.Errorf("helpers after the sweep = %v; want only the one in use, %s", got, busy)
		}
		if _, err := ct.d.Inspect(ctx, theirs); err != nil {
			t.Errorf("another installation's helper was swept: %v", err)
		}
		if err := ct.d.SweepHelpers(ctx, ""); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("SweepHelpers without an owner = %v; want ErrInvalid", err)
		}
	})
}

// TestQuiesce pauses and resumes a container, copies its volume while it
// is paused, and runs commands in it (exec) whose output is streamed.
func TestQuiesce(t *testing.T) {
	t.Parallel()
	ct := newCopyTest(t)
	d := ct.d
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	vol := uniqueName("vol-q")
	ct.volume(ctx, vol, []tarEntry{{name: "f", typ: tar.TypeReg, mode: 0o644, data: []byte("data")}})
	name := uniqueName("quiesce")
	id, err := d.Create(ctx, domain.InstanceSpec{Name: name, Image: ct.image, Labels: testLabels(),
		Mounts: []domain.Mount{{Source: vol, Target: "/data"}}})
	if err != nil {
		t.Fatal(err)
	}
	removeLater(t, d, id)

	if err := d.Pause(ctx, id); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("Pause of a container not started = %v; want ErrConflict", err)
	}
	if err := d.ExecOutput(ctx, id, []string{"/testapp", "-emit", "1"}, io.Discard); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("ExecOutput in a container not started = %v; want ErrConflict", err)
	}
	if err := d.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, d, id, "running", 30*time.Second, func(s domain.InstanceState) bool { return s.Running })

	t.Run("ExecOutput", func(t *testing.T) {
		const n = 10 << 20
		h := sha256.New()
		cw := &countWriter{w: h}
		if err := d.ExecOutput(ctx, id, []string{"/testapp", "-emit", fmt.Sprint(n)}, cw); err != nil {
			t.Fatalf("ExecOutput: %v", err)
		}
		want := sha256.Sum256(bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n"), n/64))
		if cw.n != n || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Errorf("ExecOutput wrote %d bytes (sha256 %x); want %d (%x)", cw.n, h.Sum(nil), n, want)
		}

		cmd := []string{"/testapp", "-dial", "127.0.0.1:1"}
		var out bytes.Buffer
		err := d.ExecOutput(ctx, id, cmd, &out)
		var ee *domain.ExecError
		if !errors.As(err, &ee) || ee.ExitCode != 2 || !strings.Contains(ee.Stderr, "dial:") || !slices.Equal(ee.Cmd, cmd) {
			t.Fatalf("ExecOutput of a failing command = %v; want an ExecError with code 2 and its stderr", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "/testapp -dial 127.0.0.1:1") || !strings.Contains(msg, "code 2") || !strings.Contains(msg, "connection refused") {
			t.Errorf("error = %q; want the command, the code and the stderr", msg)
		}
		if out.Len() != 0 {
			t.Errorf("stdout of the failing command = %q", out.String())
		}
		if err := d.ExecOutput(ctx, id, []string{"/no-such-program"}, io.Discard); err == nil {
			t.Errorf("ExecOutput of a missing program succeeded")
		}
		if err := d.ExecOutput(ctx, id, nil, io.Discard); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("ExecOutput without a command = %v; want ErrInvalid", err)
		}
		// A writer that fails stops the command's stream.
		if err := d.ExecOutput(ctx, id, []string{"/testapp", "-emit", fmt.Sprint(n)}, failingWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("ExecOutput into a failing writer = %v; want its error", err)
		}
		// A context that ends stops it too.
		cctx, ccancel := context.WithCancel(ctx)
		err = d.ExecOutput(cctx, id, []string{"/testapp", "-emit", fmt.Sprint(1 << 40)}, writerFunc(func(p []byte) (int, error) {
			ccancel()
			return len(p), nil
		}))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ExecOutput whose context ends = %v; want context.Canceled", err)
		}
	})

	t.Run("Pause", func(t *testing.T) {
		ct := ct.with(t)
		if err := d.Pause(ctx, id); err != nil {
			t.Fatalf("Pause: %v", err)
		}
		if st, err := d.Inspect(ctx, id); err != nil || st.Status != "paused" {
			t.Fatalf("after Pause: %+v, %v", st, err)
		}
		if err := d.Pause(ctx, id); err != nil {
			t.Errorf("Pause again: %v", err)
		}
		if err := d.ExecOutput(ctx, id, []string{"/testapp", "-emit", "1"}, io.Discard); !errors.Is(err, domain.ErrConflict) {
			t.Errorf("ExecOutput in a paused container = %v; want ErrConflict", err)
		}
		// The volume of a paused container is copied all the same.
		got, _ := readTar(t, ct.export(ctx, vol))
		if string(got["f"].data) != "data" {
			t.Errorf("export while paused: %+v", got)
		}
		if err := d.Unpause(ctx, id); err != nil {
			t.Fatalf("Unpause: %v", err)
		}
		if st, err := d.Inspect(ctx, id); err != nil || st.Status != "running" {
			t.Fatalf("after Unpause: %+v, %v", st, err)
		}
		if err := d.Unpause(ctx, id); err != nil {
			t.Errorf("Unpause again: %v", err)
		}
		if err := d.Pause(ctx, "moor-t-no-such-container"); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("Pause of a missing container = %v; want ErrNotFound", err)
		}
	})
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.w.Write(p)
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestTailWriter(t *testing.T) {
	tw := &tailWriter{max: 16}
	for i := range 10 {
		fmt.Fprintf(tw, "line %d\n", i)
	}
	if got := tw.lastLines(2); got != "line 8\nline 9" {
		t.Errorf("lastLines(2) = %q", got)
	}
	tw.Write(bytes.Repeat([]byte("y"), 100))
	if len(tw.buf) != 16 {
		t.Errorf("kept %d bytes; want 16", len(tw.buf))
	}
}

func TestExecErrorMessage(t *testing.T) {
	err := &domain.ExecError{Container: strings.Repeat("a", 64), Cmd: []string{"sh", "-c", "pg_dumpall -U \"$U\""}, ExitCode: 1, Stderr: "pg_dumpall: error: connection failed\n"}
	want := `command sh -c "pg_dumpall -U \"$U\"" in container aaaaaaaaaaaa exited with code 1: pg_dumpall: error: connection failed`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err.Error(), want)
	}
}

// TestRenameTar checks the names an archive gets on its way out of the
// engine and back in, without an engine.
func TestRenameTar(t *testing.T) {
	in := makeTarAt(t, "", []tarEntry{
		{name: "a", typ: tar.TypeReg, mode: 0o644, data: []byte("a")},
		{name: "../../etc/escape", typ: tar.TypeReg, mode: 0o644, data: []byte("e")},
		{name: "d", typ: tar.TypeDir, mode: 0o755},
		{name: "d/h", typ: tar.TypeLink, link: "a"},
	})
	var prefixed bytes.Buffer
	if err := prefixTar(&prefixed, bytes.NewReader(in), "moor-backup"); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(prefixed.Bytes()))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name+">"+hdr.Linkname)
	}
	if want := []string{"moor-backup/a>", "moor-backup/etc/escape>", "moor-backup/d/>", "moor-backup/d/h>moor-backup/a"}; !slices.Equal(names, want) {
		t.Errorf("prefixed names %q; want %q", names, want)
	}
	var back bytes.Buffer
	if err := rebaseTar(&back, bytes.NewReader(prefixed.Bytes()), "moor-backup"); err != nil {
		t.Fatal(err)
	}
	got, links := readTar(t, back.Bytes())
	if links != 1 || string(got["a"].data) != "a" || string(got["d/h"].data) != "a" || string(got["etc/escape"].data) != "e" {
		t.Errorf("rebased: %d links, %v", links, slices.Sorted(maps.Keys(got)))
	}
	if err := rebaseTar(io.Discard, bytes.NewReader(in), "moor-backup"); err == nil || !strings.Contains(err.Error(), "outside moor-backup") {
		t.Errorf("rebasing an archive of another directory = %v", err)
	}
	notDir := makeTarAt(t, "", []tarEntry{{name: ".", typ: tar.TypeReg, mode: 0o644}})
	if err := prefixTar(io.Discard, bytes.NewReader(notDir), "moor-backup"); err == nil {
		t.Errorf("a root that is a file was taken")
	}
}
