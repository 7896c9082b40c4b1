package engine

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/moorhq/moor/internal/domain"
)

// Volume copies go through a helper container that is created and never
// started: the engine's archive endpoint (GET and PUT
// /containers/{id}/archive) reads and writes a stopped container's
// filesystem, volumes included. The helper is made from the image of the
// container that uses the volume, which is on the engine already: nothing
// is pulled (it works offline), and nothing has to run in it, so an image
// without a shell or tar (FROM scratch) serves.

// helperMount is where a helper mounts the volume it copies.
const helperMount = "/moor-backup"

// helperEntrypoint is the helper's command: never run (the helper is
// never started), but an image with neither entrypoint nor command (a
// FROM scratch image holding only files) could not be created without
// one.
const helperEntrypoint = "/moor-helper-is-never-started"

// helperRemoveTimeout bounds the removal of a helper, on a context of its
// own: the caller's may have ended, which is one reason to remove it.
const helperRemoveTimeout = 30 * time.Second

// ExportVolume streams the content of the volume spec.Volume as a tar
// archive, read through a helper container created (never started) from
// spec.Image with the volume mounted read-only. Entry names are relative
// to the volume's root: "./" is the root itself (its mode and owner),
// then "./dir/", "./dir/file"... as `tar -C <volume> -c .` writes them;
// modes, owners (numeric), times, symbolic and hard links are the
// engine's, unchanged. The container using the volume may keep running
// (quiesce it first: Pause or a dump).
//
// The helper is removed when the reader is closed, when the stream ends,
// or when ctx ends (the reader then fails with ctx's error); Close waits
// for the removal. A helper a crash left behind is removed by
// SweepHelpers. A missing volume wraps domain.ErrNotFound (it is not
// created), a missing image domain.ErrNotFound too.
func (d *Docker) ExportVolume(ctx context.Context, spec domain.VolumeCopy) (io.ReadCloser, error) {
	op := "export volume " + spec.Volume
	if err := checkVolumeCopy(spec); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	// Mounting a missing volume would create it, empty: a backup of
	// nothing.
	if _, err := d.cli.VolumeInspect(ctx, spec.Volume, client.VolumeInspectOptions{}); err != nil {
		return nil, wrap(op, err)
	}
	id, err := d.createHelper(ctx, spec, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	res, err := d.cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: helperMount})
	if err != nil {
		d.removeHelper(id)
		return nil, wrap(op, err)
	}
	pr, pw := io.Pipe()
	r := &exportReader{ctx: ctx, op: op, pr: pr, body: res.Content, done: make(chan struct{})}
	// A reader nobody reads any more must not hold the helper: ctx's end
	// closes the pipe, which ends the copy below.
	stop := context.AfterFunc(ctx, func() {
		pr.CloseWithError(ctx.Err())
		res.Content.Close()
	})
	go func() {
		defer close(r.done)
		err := rebaseTar(pw, res.Content, path.Base(helperMount))
		res.Content.Close()
		d.removeHelper(id)
		stop()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			err = wrap(op, err)
		}
		// After the removal: a reader that saw the end sees no helper.
		pw.CloseWithError(err)
	}()
	return r, nil
}

// exportReader is ExportVolume's stream.
type exportReader struct {
	ctx  context.Context
	op   string
	pr   *io.PipeReader
	body io.Closer // the engine's answer
	done chan struct{}
	once sync.Once
}

func (r *exportReader) Read(p []byte) (int, error) {
	n, err := r.pr.Read(p)
	if err != nil && err != io.EOF && r.ctx.Err() != nil {
		err = wrap(r.op, r.ctx.Err())
	}
	return n, err
}

// Close stops the stream and returns once the helper is removed.
func (r *exportReader) Close() error {
	r.once.Do(func() {
		r.pr.Close()
		r.body.Close() // a read waiting for the engine ends too
		<-r.done
	})
	return nil
}

// rebaseTar copies the tar archive of directory top (entries "top",
// "top/x"...) to w with names relative to that directory ("./", "./x").
func rebaseTar(w io.Writer, r io.Reader, top string) error {
	return renameTar(w, r, func(name string, _ bool) (string, error) {
		name = strings.TrimPrefix(name, "/")
		if name == top || name == top+"/" {
			return "./", nil
		}
		rest, ok := strings.CutPrefix(name, top+"/")
		if !ok {
			return "", fmt.Errorf("the engine's archive holds %q, outside %s", name, top)
		}
		return "./" + rest, nil
	})
}

// prefixTar copies the archive of a volume's content (names relative to
// its root, with or without "./") to w as the archive of directory top
// ("top/", "top/x"...).
func prefixTar(w io.Writer, r io.Reader, top string) error {
	return renameTar(w, r, func(name string, dir bool) (string, error) {
		clean := path.Clean("/" + name)[1:] // "" for the root; no ".." left
		if clean == "" && !dir {
			return "", fmt.Errorf("the archive's entry %q is the volume's root but no directory", name)
		}
		out := path.Join(top, clean)
		if dir {
			out += "/"
		}
		return out, nil
	})
}

// renameTar copies the tar archive r to w, renaming every entry, and the
// entry every hard link points to, with rename (dir: the entry is a
// directory).
func renameTar(w io.Writer, r io.Reader, rename func(name string, dir bool) (string, error)) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		if hdr.Name, err = rename(hdr.Name, hdr.Typeflag == tar.TypeDir); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeLink {
			if hdr.Linkname, err = rename(hdr.Linkname, false); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
	}
}

// ImportVolume replaces the content of the volume spec.Volume with the tar
// archive read from r (names relative to the volume's root, as
// ExportVolume writes them; a "./" entry sets the root's mode and owner),
// written through a helper container created (never started) from
// spec.Image with the volume mounted. Modes and numeric owners are kept
// as the archive has them.
//
// The volume is emptied by removing it and creating it again under the
// same name, with its driver and labels (nothing can run in the helper to
// delete files, and the archive endpoint only adds). So no container may
// use the volume, running or stopped: the engine refuses to remove a
// volume any container references, and ImportVolume then fails, wrapping
// domain.ErrConflict and naming them, before it changed anything; the
// caller removes the container's replicas first (they are recreated from
// moor's records). Only the local driver without options (moor's own
// volumes) is replaced: the data of a volume bound to a host directory
// or a network share would outlive its removal. A missing volume is
// created, with spec.Labels.
//
// Once the volume is emptied, a failure (an archive that does not read to
// its end) leaves it partly written: check the archive before calling.
// ImportVolume returns once it has stopped reading r.
func (d *Docker) ImportVolume(ctx context.Context, spec domain.VolumeCopy, r io.Reader) error {
	op := "import volume " + spec.Volume
	if err := checkVolumeCopy(spec); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	// Nothing is emptied for a helper that cannot be made.
	if _, err := d.cli.ImageInspect(ctx, spec.Image); err != nil {
		return wrap(op+": image "+spec.Image, err)
	}
	if err := d.emptyVolume(ctx, spec); err != nil {
		return err
	}
	id, err := d.createHelper(ctx, spec, false)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer d.removeHelper(id)
	// The archive is unpacked at / under the mount's name: the engine
	// skips an entry for the destination itself, so only this way does
	// the "./" entry give the volume's root its mode and owner.
	pr, pw := io.Pipe()
	var tarErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		tarErr = prefixTar(pw, r, path.Base(helperMount))
		pw.CloseWithError(tarErr)
	}()
	// CopyUIDGID false: the engine keeps the archive's owners (true would
	// give every file to the image's user).
	_, err = d.cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: pr})
	pr.CloseWithError(errors.New("the engine stopped reading"))
	<-done
	switch {
	case tarErr != nil:
		return fmt.Errorf("%s: %w", op, tarErr)
	case err != nil && ctx.Err() != nil:
		return wrap(op, ctx.Err())
	case err != nil:
		return wrap(op, err)
	}
	d.log.Info("volume content replaced", "volume", spec.Volume)
	return nil
}

// emptyVolume removes the volume and creates it again, or creates it.
func (d *Docker) emptyVolume(ctx context.Context, spec domain.VolumeCopy) error {
	op := "import volume " + spec.Volume
	res, err := d.cli.VolumeInspect(ctx, spec.Volume, client.VolumeInspectOptions{})
	create := client.VolumeCreateOptions{Name: spec.Volume, Driver: "local", Labels: spec.Labels}
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return wrap(op, err)
	default:
		v := res.Volume
		if v.Driver != "local" || len(v.Options) > 0 {
			return fmt.Errorf("%s: only a local volume without driver options can be replaced (this one: driver %s, options %v): "+
				"its data would outlive its removal", op, v.Driver, v.Options)
		}
		if users, err := d.volumeUsers(ctx, spec.Volume); err != nil {
			return err
		} else if len(users) > 0 {
			return fmt.Errorf("%s: used by container %s: remove it first: %w", op, strings.Join(users, ", "), domain.ErrConflict)
		}
		if _, err := d.cli.VolumeRemove(ctx, spec.Volume, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			if cerrdefs.IsConflict(err) {
				// Taken in between.
				users, _ := d.volumeUsers(ctx, spec.Volume)
				return fmt.Errorf("%s: used by container %s: remove it first: %w: %w", op, strings.Join(users, ", "), domain.ErrConflict, err)
			}
			return wrap(op+": remove the old content", err)
		}
		create.Labels = v.Labels
	}
	if _, err := d.cli.VolumeCreate(ctx, create); err != nil {
		return wrap(op+": create it", err)
	}
	return nil
}

// volumeUsers names the containers (running or not) that mount volume,
// sorted.
func (d *Docker) volumeUsers(ctx context.Context, volume string) ([]string, error) {
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("volume", volume)})
	if err != nil {
		return nil, wrap("list containers using volume "+volume, err)
	}
	var names []string
	for _, c := range res.Items {
		names = append(names, summaryName(c.Names))
	}
	slices.Sort(names)
	return names, nil
}

func checkVolumeCopy(spec domain.VolumeCopy) error {
	switch {
	case spec.Volume == "":
		return domain.Invalid("volume", "is required")
	case spec.Image == "":
		return domain.Invalid("image", "is required")
	case spec.Labels[domain.LabelOwner] == "":
		return domain.Invalid("labels", "need %s, so a helper a crash leaves behind can be swept", domain.LabelOwner)
	case spec.Labels[domain.LabelID] != "":
		return domain.Invalid("labels", "must not carry %s: a helper is no replica", domain.LabelID)
	}
	return nil
}

// createHelper creates the helper container of spec, not started.
func (d *Docker) createHelper(ctx context.Context, spec domain.VolumeCopy, readOnly bool) (string, error) {
	labels := maps.Clone(spec.Labels)
	labels[domain.LabelHelper] = domain.HelperBackup
	labels[domain.LabelVolume] = spec.Volume
	b := make([]byte, 4)
	rand.Read(b)
	name := "moor-backup-" + spec.Volume + "-" + hex.EncodeToString(b)
	res, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:           spec.Image,
			Entrypoint:      []string{helperEntrypoint},
			Cmd:             []string{},
			Labels:          labels,
			NetworkDisabled: true,
		},
		HostConfig: &container.HostConfig{
			NetworkMode: network.NetworkNone,
			Mounts: []mount.Mount{{
				Type:          mount.TypeVolume,
				Source:        spec.Volume,
				Target:        helperMount,
				ReadOnly:      readOnly,
				VolumeOptions: &mount.VolumeOptions{NoCopy: true},
			}},
		},
	})
	if err != nil {
		return "", wrap("create helper container", err)
	}
	d.helpers.Store(res.ID, true)
	d.log.Debug("helper container created", "volume", spec.Volume, "helper", name, "read_only", readOnly)
	return res.ID, nil
}

// removeHelper removes a helper with the anonymous volumes its image
// declares (named volumes are never removed this way), on a context of
// its own. A failure is logged: SweepHelpers removes what is left.
func (d *Docker) removeHelper(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), helperRemoveTimeout)
	defer cancel()
	_, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		d.log.Warn("remove helper container", "helper", id, "err", err)
		return
	}
	d.helpers.Delete(id)
}

// SweepHelpers removes the helper containers of installation owner that a
// crash left behind, except those this client is using. Another moor
// process's helpers look the same: call it where no copy of this
// installation's runs elsewhere (at start, before backups are taken).
func (d *Docker) SweepHelpers(ctx context.Context, owner string) error {
	if owner == "" {
		return fmt.Errorf("sweep helpers: %w", domain.Invalid("owner", "is required"))
	}
	labels := map[string]string{domain.LabelOwner: owner, domain.LabelHelper: domain.HelperBackup}
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilters(labels)})
	if err != nil {
		return wrap("sweep helpers: list containers", err)
	}
	var failed []error
	for _, c := range res.Items {
		if !hasLabels(c.Labels, labels) {
			continue
		}
		if _, busy := d.helpers.Load(c.ID); busy {
			continue
		}
		_, err := d.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			failed = append(failed, wrap("sweep helpers: remove "+summaryName(c.Names), err))
			continue
		}
		d.log.Info("left-over helper container removed", "helper", summaryName(c.Names), "volume", c.Labels[domain.LabelVolume])
	}
	return errors.Join(failed...)
}

// Pause freezes every process of a running container (the cgroup
// freezer); one paused already is not an error. A container that is not
// running wraps domain.ErrConflict, a missing one domain.ErrNotFound.
func (d *Docker) Pause(ctx context.Context, id string) error {
	_, err := d.cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
	if err != nil && !strings.Contains(err.Error(), "is already paused") {
		return wrap("pause container "+id, err)
	}
	return nil
}

// Unpause resumes a paused container; one not paused is not an error. A
// missing container wraps domain.ErrNotFound.
func (d *Docker) Unpause(ctx context.Context, id string) error {
	_, err := d.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
	if err != nil && !strings.Contains(err.Error(), "is not paused") {
		return wrap("unpause container "+id, err)
	}
	return nil
}

// execStderrLines is how many of a failed command's last stderr lines its
// error keeps.
const execStderrLines = 10

// ExecOutput runs cmd (no shell: cmd[0] is the program) inside the
// running container id, as the container's user, and streams its standard
// output to w as it comes. Its standard error is kept for the error: an
// exit code other than 0 is a *domain.ExecError naming the command, the
// code and the last lines of its standard error. A container not running
// (or paused) wraps domain.ErrConflict, a missing one domain.ErrNotFound.
// When ctx ends or w fails, the stream is closed and the error returned;
// the engine cannot kill an exec'd process, which stops when it next
// writes.
func (d *Docker) ExecOutput(ctx context.Context, id string, cmd []string, w io.Writer) error {
	op := "exec in container " + id
	if len(cmd) == 0 || cmd[0] == "" {
		return fmt.Errorf("%s: %w", op, domain.Invalid("cmd", "is required"))
	}
	ex, err := d.cli.ExecCreate(ctx, id, client.ExecCreateOptions{AttachStdout: true, AttachStderr: true, Cmd: cmd})
	if err != nil {
		return wrap(op, err)
	}
	att, err := d.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return wrap(op, err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()
	stderr := &tailWriter{max: 8 << 10}
	if _, err := stdcopy.StdCopy(w, stderr, att.Reader); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return wrap(op+": "+cmd[0], err)
	}
	// The stream ends as the process does; the engine records its exit
	// code a moment later.
	for {
		ins, err := d.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return wrap(op, err)
		}
		if !ins.Running {
			if ins.ExitCode != 0 {
				return &domain.ExecError{Container: id, Cmd: slices.Clone(cmd), ExitCode: ins.ExitCode, Stderr: stderr.lastLines(execStderrLines)}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return wrap(op, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	buf []byte
	max int
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lastLines is the last n lines kept, without the final newline.
func (t *tailWriter) lastLines(n int) string {
	lines := strings.Split(strings.TrimRight(string(t.buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
