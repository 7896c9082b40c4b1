package domain

import (
	"strconv"
	"strings"
	"time"
)

// Labels of the helper containers a runtime creates to copy a volume's
// content out or in (never started). They carry LabelOwner too, so an
// uninstall finds them, but never LabelID: they are no replica.
const (
	LabelHelper  = "moor.helper" // what the helper is for: HelperBackup
	LabelVolume  = "moor.volume" // the volume a helper copies
	HelperBackup = "backup"
)

// BackupSpec says how a type's data is made consistent for a backup.
//
// Without one (or with neither field set) the volumes are archived while the
// container runs. Pause freezes the container's processes while its volumes
// are archived. Dump is a command run inside the running container (no
// shell: write ["sh", "-c", "..."] to expand variables) whose standard
// output is what is stored, under DumpFile, instead of the volumes' archives.
// Pause and Dump are exclusive: a paused container runs no command.
type BackupSpec struct {
	Pause bool     `json:"pause,omitempty" yaml:"pause"`
	Dump  []string `json:"dump,omitempty" yaml:"dump"`
	// DumpFile is the name the dump is stored under (a file name, no
	// directory); the catalog fills in DefaultDumpFile when Dump is set.
	DumpFile string `json:"dump_file,omitempty" yaml:"dump_file"`
}

// DefaultDumpFile is BackupSpec.DumpFile when a type names none.
const DefaultDumpFile = "dump"

// VolumeCopy is a volume whose content a runtime copies out (a tar
// stream) or replaces, through a helper container created, never started,
// from Image with the volume mounted.
type VolumeCopy struct {
	Volume string // the volume's name
	// Image must be present on the engine: the image of the container
	// that uses the volume, so nothing is pulled and an image without a
	// shell (FROM scratch) serves.
	Image string
	// Labels go on the helper, with LabelHelper and LabelVolume (set by
	// the runtime): LabelOwner at least, so SweepHelpers finds a helper a
	// crash left behind. A volume the import has to create gets them
	// too.
	Labels map[string]string
}

// ExecError is a command run inside a container that exited with a
// non-zero code.
type ExecError struct {
	Container string
	Cmd       []string
	ExitCode  int
	Stderr    string // the last lines it wrote to its standard error
}

func (e *ExecError) Error() string {
	c := e.Container
	if len(c) == 64 { // an engine id: as docker ps shows it
		c = shortID(c)
	}
	msg := "command " + quoteArgs(e.Cmd) + " in container " + c + " exited with code " + strconv.Itoa(e.ExitCode)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// quoteArgs shows a command as a reader would type it: arguments holding
// spaces or quotes are quoted.
func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// Backup statuses.
const (
	BackupRunning = "running"
	BackupDone    = "done"
	BackupFailed  = "failed"
)

// Backup kinds: a volume's files, or the output of the type's dump command.
const (
	BackupKindVolume = "volume"
	BackupKindDump   = "dump"
)

// Backup is one volume's archive: recorded "running" before the copy
// starts, then "done" with the content's checksum and sizes, or "failed"
// with the error.
type Backup struct {
	ID          string     `json:"id"`
	ContainerID string     `json:"container_id,omitempty"` // "" once the container is gone
	Project     string     `json:"project"`
	Container   string     `json:"container"`
	Volume      string     `json:"volume"` // the volume's name in the type (e.g. "data"), or a dump's file name
	Kind        string     `json:"kind"`   // BackupKindVolume or BackupKindDump
	Target      string     `json:"target"` // where the archive is stored
	ObjectKey   string     `json:"object_key"`
	Status      string     `json:"status"`
	Error       string     `json:"error,omitempty"`
	SHA256      string     `json:"sha256,omitempty"` // of the plaintext tar stream
	TarBytes    int64      `json:"tar_bytes"`
	StoredBytes int64      `json:"stored_bytes"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

// SkippedVolume is a volume a backup leaves out, and why.
type SkippedVolume struct {
	Volume string `json:"volume"`
	Reason string `json:"reason"`
}

// BackupsStarted answers a request for backups: the rows recorded running
// (one per volume) and the volumes left out.
type BackupsStarted struct {
	Backups []Backup        `json:"backups"`
	Skipped []SkippedVolume `json:"skipped"`
}

// Restore is a backup written back into its container's volume: recorded
// "running" before the replicas are removed, then "done" or "failed".
type Restore struct {
	ID          string     `json:"id"`
	BackupID    string     `json:"backup_id"`
	ContainerID string     `json:"container_id"`
	Project     string     `json:"project"`
	Container   string     `json:"container"`
	Volume      string     `json:"volume"`
	Status      string     `json:"status"`
	Error       string     `json:"error,omitempty"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}
