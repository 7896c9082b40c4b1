// Package web serves moor's dashboard: plain HTML, CSS and JavaScript
// modules, embedded, with no build step. It talks to the API like any
// client, signed in with the session cookie, and follows /api/v1/ws.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// csp allows the page its own scripts, styles and connections (the API and
// its websocket) and nothing else: no inline script, no framing. Images may
// come over HTTPS too: catalog types name their logos by URL (a picture
// cannot run code; no referrer goes with it).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// pages are the dashboard's own paths: each is the same page, which shows
// the view its path names, so views can be bookmarked and reloaded.
// A project's own pages are under /projects/{project}/, the default
// project's at the paths they had before projects.
var pages = []string{"/{$}", "/containers/{name}", "/catalog", "/catalog/{type}", "/events", "/stacks", "/stacks/{name}",
	"/projects", "/projects/{project}", "/projects/{project}/containers", "/projects/{project}/containers/{name}",
	"/projects/{project}/catalog", "/projects/{project}/catalog/{type}", "/projects/{project}/events",
	"/projects/{project}/stacks", "/projects/{project}/stacks/{name}",
	"/admin/users", "/admin/keys", "/admin/webhooks", "/account"}

// Register adds the dashboard to mux: its pages and its files under /ui/.
func Register(mux *http.ServeMux) {
	files, _ := fs.Sub(static, "static")
	assets := http.StripPrefix("/ui/", http.FileServerFS(files))
	page := headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "index.html")
	}))
	for _, p := range pages {
		mux.Handle("GET "+p, page)
	}
	mux.Handle("GET /ui/", headers(assets))
}

// NotFound is the dashboard's page answering 404: for a browser that asked
// for an address nothing serves (a mistyped one), the page says so in its
// own words.
func NotFound() http.Handler {
	files, _ := fs.Sub(static, "static")
	return headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(files, "index.html")
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write(b)
	}))
}

func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
