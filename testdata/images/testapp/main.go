// Command testapp is the program inside moor's test image moor-testapp:latest
// (a FROM scratch image built by internal/testenv). It serves HTTP on :8080:
//
//	/         a greeting, the hostname and $MODE (text)
//	/healthz  200 "ok" (500 when TESTAPP_UNHEALTHY is set)
//	/env      JSON object of the environment variables named MODE or TESTAPP_*
//
// "testapp -resolve NAME [-type A|SRV|PTR] [-server IP:PORT]" resolves a name
// once with the container's resolver (or the given server) and prints the
// answers, one a line: the DNS tests run it with docker exec.
//
// "testapp -get URL [-host H]" makes one HTTP GET (2 s to connect) and prints
// the status line and the body: exit 0 on any answer, 2 when no connection
// could be made. The network isolation tests run it with docker exec.
//
// "testapp -dial HOST:PORT" opens one TCP connection (2 s at most): exit 0
// when it connects, 2 when it cannot.
//
// "testapp -forward LISTEN=TARGET" relays TCP connections from LISTEN to
// TARGET until stopped (a stand-in for a service the tests cannot run in a
// container, such as PostgreSQL, under its name on a network).
//
// "testapp -emit N" writes N bytes to stdout and exits 0: the line
// "0123456789abcdef...", 64 bytes with its newline, repeated and cut at N
// (the tests of streamed command output run it with docker exec).
//
// "testapp -check" is the health check command: it exits 0 when
// http://127.0.0.1:8080/healthz answers 200, 1 otherwise.
//
// Environment knobs for tests:
//
//	MODE                    shown by / and /env
//	TESTAPP_EXIT_AFTER=2s   exit by itself after that long (a simulated crash)
//	TESTAPP_EXIT_CODE=3     the exit code used then (default 1)
//	TESTAPP_UNHEALTHY=1     /healthz answers 500
//	TESTAPP_IGNORE_SIGTERM=1  ignore SIGTERM (to test stop timeouts and kills)
//
// It handles SIGTERM and SIGINT by shutting down and exiting 0 within about
// half a second. It logs a greeting line to stdout and a readiness line to
// stderr when it starts, so tests can check both log streams.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const addr = ":8080"

// Greeting starts the first line testapp writes to stdout (internal/testenv
// has a copy: TestImageGreeting).
const Greeting = "testapp: hello from moor's test image"

func main() {
	check := flag.Bool("check", false, "exit 0 if http://127.0.0.1:8080/healthz answers 200")
	resolveName := flag.String("resolve", "", "resolve this name (or address, with -type PTR) with the container's resolver, print one answer a line, and exit")
	resolveType := flag.String("type", "A", "with -resolve: A (addresses), SRV or PTR")
	resolveServer := flag.String("server", "", "with -resolve: ask this ip:port instead of /etc/resolv.conf's servers")
	get := flag.String("get", "", "GET this URL once, print the status and body, exit 2 if no connection")
	getHost := flag.String("host", "", "with -get: the Host header")
	dial := flag.String("dial", "", "open one TCP connection to HOST:PORT, exit 2 if it fails")
	forward := flag.String("forward", "", "LISTEN=TARGET: relay TCP connections from LISTEN to TARGET")
	emitN := flag.Int64("emit", -1, "write this many bytes to stdout and exit")
	flag.Parse()
	if *emitN >= 0 {
		os.Exit(emit(*emitN))
	}
	if *get != "" {
		os.Exit(httpGet(*get, *getHost))
	}
	if *dial != "" {
		c, err := net.DialTimeout("tcp", *dial, 2*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(2)
		}
		c.Close()
		fmt.Println("connected")
		os.Exit(0)
	}
	if *forward != "" {
		os.Exit(relay(*forward))
	}
	if *check {
		os.Exit(healthCheck())
	}
	if *resolveName != "" {
		os.Exit(resolve(*resolveName, *resolveType, *resolveServer))
	}
	os.Exit(run())
}

// resolve looks a name up once (for `docker exec C /testapp -resolve NAME`):
// with the container's own resolver configuration, or with -server.
func resolve(name, typ, server string) int {
	r := &net.Resolver{PreferGo: true}
	if server != "" {
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	var err error
	switch strings.ToUpper(typ) {
	case "A":
		out, err = r.LookupHost(ctx, name)
	case "SRV":
		var srvs []*net.SRV
		_, srvs, err = r.LookupSRV(ctx, "", "", name)
		for _, s := range srvs {
			out = append(out, fmt.Sprintf("%s:%d", s.Target, s.Port))
		}
	case "PTR":
		out, err = r.LookupAddr(ctx, name)
	default:
		err = fmt.Errorf("-type must be A, SRV or PTR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "resolve:", err)
		return 1
	}
	for _, o := range out {
		fmt.Println(o)
	}
	return 0
}

// EmitLine is what -emit repeats (64 bytes with the newline).
const EmitLine = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n"

func emit(n int64) int {
	buf := []byte(strings.Repeat(EmitLine, 1024))
	w := io.Writer(os.Stdout)
	for n > 0 {
		chunk := buf[:min(n, int64(len(buf)))]
		if _, err := w.Write(chunk); err != nil {
			fmt.Fprintln(os.Stderr, "emit:", err)
			return 1
		}
		n -= int64(len(chunk))
	}
	return 0
}

func httpGet(url, host string) int {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
	}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "get:", err)
		return 1
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "get:", err)
		return 2
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status)
	io.Copy(os.Stdout, io.LimitReader(resp.Body, 1<<16))
	return 0
}

func relay(spec string) int {
	listen, target, ok := strings.Cut(spec, "=")
	if !ok {
		fmt.Fprintln(os.Stderr, "forward: want LISTEN=TARGET")
		return 2
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "forward:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "testapp: forwarding %s to %s\n", listen, target)
	for {
		down, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "forward:", err)
			return 1
		}
		go func() {
			defer down.Close()
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				fmt.Fprintln(os.Stderr, "forward:", err)
				return
			}
			defer up.Close()
			go io.Copy(up, down)
			io.Copy(down, up)
		}()
	}
}

func healthCheck() int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1" + addr + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "check: status", resp.StatusCode)
		return 1
	}
	return 0
}

func run() int {
	hostname, _ := os.Hostname()
	mode := os.Getenv("MODE")

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "hello from testapp\nhostname: %s\nmode: %s\n", hostname, mode)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("TESTAPP_UNHEALTHY") != "" {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(testEnv())
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testapp:", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	sigs := []os.Signal{syscall.SIGINT}
	if os.Getenv("TESTAPP_IGNORE_SIGTERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		sigs = append(sigs, syscall.SIGTERM)
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	defer stop()

	exitCode := 0
	var exitAfter <-chan time.Time
	if s := os.Getenv("TESTAPP_EXIT_AFTER"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testapp: TESTAPP_EXIT_AFTER:", err)
			return 2
		}
		exitAfter = time.After(d)
	}

	fmt.Printf("%s (hostname=%s mode=%s) listening on %s\n", Greeting, hostname, mode, addr)
	fmt.Fprintln(os.Stderr, "testapp: ready")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case <-ctx.Done():
		fmt.Println("testapp: signal received, shutting down")
	case <-exitAfter:
		exitCode = 1
		if s := os.Getenv("TESTAPP_EXIT_CODE"); s != "" {
			if n, err := strconv.Atoi(s); err == nil {
				exitCode = n
			}
		}
		fmt.Printf("testapp: exiting with code %d as asked\n", exitCode)
		return exitCode
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "testapp:", err)
		return 1
	}

	sctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(os.Stderr, "testapp: shutdown:", err)
	}
	return exitCode
}

func testEnv() map[string]string {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "MODE" || strings.HasPrefix(k, "TESTAPP_") {
			out[k] = v
		}
	}
	return out
}
