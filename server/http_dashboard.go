package server

import (
	"embed"
	"io/fs"
	"net/http"
)

// The dashboard is plain HTML, CSS and JavaScript with no build step and no
// CDN, embedded so the binary is all a user needs.
//
//go:embed web
var webFiles embed.FS

// dashboardCSP allows nothing but the dashboard's own files and API: no
// inline script, no third-party origin, no framing.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// routeDashboard serves the static shell. It needs no token: it holds no
// data, and the page reads the token from its URL fragment (#token=), which
// browsers never send to the server, then calls the API with it.
func (a *httpAPI) routeDashboard(m *http.ServeMux) {
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	static := func(w http.ResponseWriter, r *http.Request, name string) {
		h := w.Header()
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-cache")
		if _, err := fs.Stat(web, name); err != nil {
			a.writeError(w, r, &httpError{Status: http.StatusNotFound, Msg: "no such file"})
			return
		}
		http.ServeFileFS(w, r, web, name)
	}
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { static(w, r, "index.html") })
	m.HandleFunc("GET /assets/{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if name == "index.html" || !fs.ValidPath(name) {
			a.writeError(w, r, &httpError{Status: http.StatusNotFound, Msg: "no such file"})
			return
		}
		static(w, r, name)
	})
}
