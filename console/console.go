// Package console is zdm's operator console: a single-page application
// embedded in the binary and served by zdmd at "/". It talks only to the
// public /v1 API with the operator's token, so it can do nothing the API
// would not let that token do.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
)

//go:embed static
var static embed.FS

// assets are the files the console serves; anything else is not found, so
// a mistyped API path is never answered with the page.
var assets = map[string]string{
	"/":            "index.html",
	"/index.html":  "index.html",
	"/app.js":      "app.js",
	"/clusters.js": "clusters.js",
	"/words.js":    "words.js",
	"/style.css":   "style.css",
}

// Console serves the console's assets.
type Console struct{ files fs.FS }

// New returns the console.
func New() *Console {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return &Console{files: files}
}

// Paths are the URL paths the console answers.
func (*Console) Paths() []string {
	out := make([]string, 0, len(assets))
	for p := range assets {
		out = append(out, p)
	}
	return out
}

// ServeHTTP serves one asset.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := assets[path.Clean("/"+r.URL.Path)]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	// The page holds an API token in the tab's session storage: no
	// framing by other sites, no scripts or connections elsewhere.
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, c.files, name)
}
