// Command ws measures the websocket fan-out dashboards rely on: N clients
// connected to one `moor serve` (GET /api/v1/ws), then a burst of events
// committed in PostgreSQL; for each event and client, the time from just
// before its commit to its arrival, and whether any event was missed. Also
// the CPU moor, the clients (this process), PostgreSQL and the rest of the
// machine used during the burst, moor's write system calls per client, and
// moor's memory per idle client. Run it through bench/ws.sh.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moorhq/moor/internal/store"
)

func main() {
	url := flag.String("url", "", "moor's base URL")
	key := flag.String("key", "", "API key")
	db := flag.String("db", os.Getenv("MOOR_DATABASE_URL"), "moor's database")
	pid := flag.Int("pid", 0, "moor's process id (for its memory and CPU)")
	clients := flag.String("clients", "1000,5000,10000", "client counts, one run each")
	events := flag.Int("events", 200, "events per burst")
	gap := flag.Duration("gap", 5*time.Millisecond, "pause between the events of a burst")
	cpuProfile := flag.String("cpuprofile", "", "write the clients' CPU profile over each burst to this file, .N appended (N clients)")
	floor := flag.Bool("floor", false, "only measure what a write to a loopback TCP socket and its read cost on this machine")
	flag.Parse()
	if *floor {
		if err := loopbackCost(); err != nil {
			fail(err)
		}
		return
	}
	ctx := context.Background()
	st, err := store.Open(ctx, *db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fail(err)
	}
	defer st.Close()
	for _, f := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fail(err)
		}
		var prof *os.File
		if *cpuProfile != "" {
			if prof, err = os.Create(*cpuProfile + "." + strconv.Itoa(n)); err != nil {
				fail(err)
			}
		}
		err = run(ctx, st, *url, *key, *pid, n, *events, *gap, prof)
		if prof != nil {
			prof.Close()
		}
		if err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/ws:", err)
	os.Exit(1)
}

// rssKiB is the resident memory of process pid.
func rssKiB(pid int) int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// clockTick is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU is the CPU time (user and system) process pid has used.
func procCPU(pid int) time.Duration {
	_, cpu := procStat(pid)
	return cpu
}

// procStat is the command name of process pid and the CPU time (user and
// system) it has used.
func procStat(pid int) (string, time.Duration) {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	// The command name, in parentheses, may hold spaces: count after it.
	i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if i < 0 || j < i {
		return "", 0
	}
	f := strings.Fields(string(b[j+1:]))
	if len(f) < 13 {
		return "", 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of stat(5)
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return string(b[i+1 : j]), time.Duration(utime+stime) * clockTick
}

// syscalls is how many read and write system calls process pid has made.
func syscalls(pid int) (reads, writes int64) {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscr: "); ok {
			reads, _ = strconv.ParseInt(v, 10, 64)
		} else if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			writes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return reads, writes
}

// othersCPU is the CPU time PostgreSQL's processes and the kernel's
// softirq threads (which take over the network's work from the processes
// when it piles up) have used: what else the burst costs the machine.
func othersCPU() (pg, softirq time.Duration) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		switch name, cpu := procStat(pid); {
		case name == "postgres":
			pg += cpu
		case strings.HasPrefix(name, "ksoftirqd/"):
			softirq += cpu
		}
	}
	return pg, softirq
}

// machineCPU is the CPU time all CPUs have spent busy (not idle or waiting
// for I/O).
func machineCPU() time.Duration {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest times are counted in user already
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * clockTick
}

// tick reads a bench.tick event, {"seq":N,...,"kind":"bench.tick",...,
// "data":{"i":I,"t":T}}, looking only where those are: the event's fields
// are in the order of domain.Event, data last (PostgreSQL's jsonb may put
// spaces after its colons).
func tick(msg []byte) (seq, i, t int64, ok bool) {
	seq, rest, ok1 := intAfter(msg, `{"seq":`)
	d := bytes.LastIndex(rest, []byte(`"data":`))
	if !ok1 || d < 0 || !bytes.Contains(rest[:d], []byte(`"kind":"bench.tick"`)) {
		return 0, 0, 0, false
	}
	i, rest, ok2 := intAfter(bytes.TrimLeft(rest[d+len(`"data":`):], " "), `{"i":`)
	rest, ok3 := bytes.CutPrefix(bytes.TrimLeft(rest, " "), []byte(","))
	t, _, ok4 := intAfter(bytes.TrimLeft(rest, " "), `"t":`)
	return seq, i, t, ok2 && ok3 && ok4
}

// intAfter is the integer msg holds after prefix (spaces allowed between),
// and what follows it.
func intAfter(msg []byte, prefix string) (int64, []byte, bool) {
	rest, ok := bytes.CutPrefix(msg, []byte(prefix))
	if !ok {
		return 0, msg, false
	}
	rest = bytes.TrimLeft(rest, " ")
	var n int64
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		n = n*10 + int64(rest[j]-'0')
		j++
	}
	return n, rest[j:], j > 0
}

func run(ctx context.Context, st *store.Store, base, key string, pid, n, events int, gap time.Duration, prof io.Writer) error {
	rss0 := rssKiB(pid)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/ws"
	hdr := http.Header{"Authorization": {"Bearer " + key}}
	type client struct {
		conn *websocket.Conn
		got  []int64 // delivery latency in µs per burst event, by index
		seen int
		miss atomic.Int64
	}
	cs := make([]*client, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	var dialErr atomic.Value
	for i := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// A read buffer that takes a burst written at once in one read,
			// as a browser's would.
			d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 256}
			c, _, err := d.Dial(wsURL, hdr)
			if err != nil {
				dialErr.Store(err)
				return
			}
			cs[i] = &client{conn: c, got: make([]int64, events)}
		}()
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		return fmt.Errorf("%d clients: dial: %w", n, err)
	}
	time.Sleep(2 * time.Second)
	rss1 := rssKiB(pid)

	// Readers: each event carries the wall time just before its commit.
	// They decode only what they measure (seq, the index and the time), so
	// that their own work, on the same CPUs, weighs on moor as little as
	// it can.
	var done sync.WaitGroup
	for _, c := range cs {
		done.Add(1)
		go func() {
			defer done.Done()
			next := int64(-1)
			buf := make([]byte, 0, 1024)
			// One deadline for the whole burst: setting it for every
			// message costs the clients a timer update each.
			c.conn.SetReadDeadline(time.Now().Add(2*time.Minute + time.Duration(events)*gap))
			for c.seen < events {
				_, r, err := c.conn.NextReader()
				if err == nil {
					buf, err = readAll(buf[:0], r)
				}
				if err != nil {
					c.miss.Add(int64(events - c.seen))
					return
				}
				now := time.Now().UnixNano()
				seq, i, t, ok := tick(buf)
				if !ok {
					continue // another kind of event
				}
				if i < 0 || i >= int64(events) {
					c.miss.Add(1)
					continue
				}
				if next >= 0 && seq != next {
					c.miss.Add(seq - next)
				}
				next = seq + 1
				c.got[i] = (now - t) / 1000
				c.seen++
			}
		}()
	}
	if prof != nil {
		pprof.StartCPUProfile(prof)
	}
	pg0, soft0 := othersCPU()
	_, writes0 := syscalls(pid)
	moor0, self0, mach0, t0 := procCPU(pid), selfCPU(), machineCPU(), time.Now()
	for i := range events {
		if _, err := st.AppendEvent(ctx, "bench.tick", "", "", map[string]int64{"i": int64(i), "t": time.Now().UnixNano()}); err != nil {
			return err
		}
		time.Sleep(gap)
	}
	done.Wait()
	wall := time.Since(t0)
	moorCPU, selfCPU, machCPU := procCPU(pid)-moor0, selfCPU()-self0, machineCPU()-mach0
	pg1, soft1 := othersCPU()
	_, writes1 := syscalls(pid)
	pgCPU, softCPU := pg1-pg0, soft1-soft0
	if prof != nil {
		pprof.StopCPUProfile()
	}
	var all []int64
	var missed int64
	for _, c := range cs {
		missed += c.miss.Load()
		for _, v := range c.got[:c.seen] {
			all = append(all, v)
		}
		c.conn.Close()
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	q := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / 1000
	}
	fmt.Printf("| %d | %d | %.1f ms | %.1f ms | %.1f ms | %d | %.1f | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.1f MiB | %.1f KiB |\n",
		n, events, q(0.5), q(0.99), q(1.0), missed, float64(writes1-writes0)/float64(n),
		wall.Seconds(), moorCPU.Seconds(), selfCPU.Seconds(), pgCPU.Seconds(), softCPU.Seconds(),
		max(0, machCPU-moorCPU-selfCPU-pgCPU-softCPU).Seconds(),
		float64(rss1)/1024, float64(rss1-rss0)/float64(n))
	time.Sleep(2 * time.Second) // the server lets the closed clients go
	return nil
}

// loopbackCost prints the CPU time one 200-byte write to a loopback TCP
// socket and its read cost here, both ends (Go's, as moor and the clients
// do them): no fan-out to N clients on this machine can take less than N
// times that for one event.
func loopbackCost() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	const conns, rounds, size = 1000, 20, 200
	ws := make([]net.Conn, conns)
	done := make(chan struct{}, conns)
	for i := range ws {
		if ws[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			return err
		}
		defer ws[i].Close()
		r, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer r.Close()
			buf := make([]byte, 4096)
			for n := 0; n < rounds*size; {
				k, err := r.Read(buf)
				if err != nil {
					break
				}
				n += k
			}
			done <- struct{}{}
		}()
	}
	msg := make([]byte, size)
	cpu0 := selfCPU()
	for range rounds {
		for _, w := range ws {
			if _, err := w.Write(msg); err != nil {
				return err
			}
		}
	}
	for range ws {
		<-done
	}
	per := (selfCPU() - cpu0) / (conns * rounds)
	fmt.Printf("machine: a 200-byte write to a loopback TCP socket and its read cost %v of CPU, both ends: "+
		"one event to 10,000 clients takes at least %v of CPU (%v on each of %d CPUs)\n",
		per.Round(100*time.Nanosecond), (10000 * per).Round(time.Millisecond),
		(10000 * per / time.Duration(runtime.NumCPU())).Round(time.Millisecond), runtime.NumCPU())
	return nil
}

// readAll reads r to its end into buf.
func readAll(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
