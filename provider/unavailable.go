package provider

import (
	"html/template"
	"net"
	"net/http"
	"strings"

	"github.com/moorhq/moor/internal/domain"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .Refresh}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}code{background:#eee;padding:.1rem .3rem}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Text}}</p><p><small>moor</small></p></body></html>
`))

type page struct {
	Title, Text string
	Refresh     string
}

// ServeUnavailable serves the page Traefik shows for a known name whose
// container does not run (Traefik adds UnavailablePrefix to the path and
// keeps the Host header): 503 with Retry-After, saying what the container
// is doing. Unknown names of the host zone get 404.
func (p *Provider) ServeUnavailable(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	owners := p.owners.Load()
	if owners == nil {
		writePage(w, r, http.StatusServiceUnavailable, "2", page{Title: "Starting", Text: "moor is starting; try again in a moment."})
		return
	}
	name, status, ok := lookup(*owners, &p.asm.status, host)
	if !ok {
		writePage(w, r, http.StatusNotFound, "", page{Title: "Not found", Text: "No container answers to " + host + "."})
		return
	}
	retry, text := "30", ""
	switch status {
	case domain.StatusPending, domain.StatusCreating:
		retry, text = "5", "is starting."
	case domain.StatusRunning:
		// Its replicas start or fail their health check, or Traefik
		// still has the previous configuration.
		retry, text = "2", "is not ready yet."
	case domain.StatusStopping:
		text = "is stopping."
	case domain.StatusStopped:
		text = "is stopped."
	case domain.StatusFailed:
		text = "has failed."
	case domain.StatusRemoving:
		text = "is being removed."
	default:
		text = "is not available."
	}
	writePage(w, r, http.StatusServiceUnavailable, retry, page{Title: "Unavailable", Text: name + " " + text, Refresh: retry})
}

func writePage(w http.ResponseWriter, r *http.Request, status int, retry string, pg page) {
	if retry != "" {
		w.Header().Set("Retry-After", retry)
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		pageTmpl.Execute(w, pg)
	}
}

// Handler mounts the provider's endpoints: the configuration at
// /api/v1/traefik/config and the status pages under UnavailablePrefix.
func (p *Provider) Handler(mux *http.ServeMux) {
	mux.HandleFunc("/api/v1/traefik/config", p.ServeConfig)
	mux.HandleFunc(UnavailablePrefix+"/", p.ServeUnavailable)
	mux.HandleFunc(UnavailablePrefix, p.ServeUnavailable)
}
