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
// its websocket) and nothing else: no inline script, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Register adds the dashboard to mux: the page at / and its files under /ui/.
func Register(mux *http.ServeMux) {
	files, _ := fs.Sub(static, "static")
	assets := http.StripPrefix("/ui/", http.FileServerFS(files))
	mux.Handle("GET /{$}", headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "index.html")
	})))
	mux.Handle("GET /ui/", headers(assets))
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
