// Package webui is the chat's web page: an inbound adapter that serves one
// HTML page, a plain-JavaScript client and its style sheet, all embedded in
// the binary with go:embed, so that a chatd binary is a complete chat with
// no build step and nothing to deploy beside it. The page speaks only the
// public contract of PROTOCOL.md (the REST API and the WebSocket
// frames), exactly as any other client would; it imports nothing from the
// hexagon.
//
// Caching: the page itself is answered with "no-cache" and an ETag, so a
// browser revalidates it on every visit and picks up a new release at once.
// The page names its assets with a content hash (/assets/app.js?v=HASH),
// computed here at start-up, so those URLs can be cached for a year as
// immutable: a new release changes the hash and therefore the URL. An asset
// asked for without the current hash is served too, but with "no-cache".
//
// Security: every answer carries a strict Content-Security-Policy (scripts
// and styles from this origin only, no inline code, no plugins, no framing,
// and Trusted Types required, so that the browser itself refuses any
// innerHTML-style sink should one ever creep into app.js), nosniff, and no
// Referer: the page's URLs are harmless, but the policy is cheap.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed static
var staticFS embed.FS

// ContentSecurityPolicy is sent with every answer. connect-src 'self'
// covers the same-origin WebSocket (ws: and wss:) in CSP Level 3 browsers.
const ContentSecurityPolicy = "default-src 'none'; " +
	"script-src 'self'; " +
	"style-src 'self'; " +
	"img-src 'self'; " +
	"connect-src 'self'; " +
	"base-uri 'none'; " +
	"form-action 'none'; " +
	"frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; " +
	"trusted-types 'none'"

// assetPrefix is where the page's files other than index.html are served.
const assetPrefix = "/assets/"

// Patterns are the net/http.ServeMux patterns the Handler answers: the
// page at the root only ({$}, so that unknown paths stay 404s of the mux)
// and the assets below /assets/.
var Patterns = []string{"GET /{$}", "GET " + assetPrefix}

type file struct {
	body        []byte
	etag        string // strong, quoted
	hash        string // the ?v= value that makes its URL immutable
	contentType string
}

type site struct {
	index  file
	assets map[string]file // by name below /assets/
}

var (
	loadOnce sync.Once
	loaded   *site
)

// load reads the embedded files once; the page's asset references get the
// assets' content hashes here, so that index.html and the assets it names
// always come from the same build.
func load() *site {
	loadOnce.Do(func() {
		s := &site{assets: map[string]file{}}
		entries, err := fs.ReadDir(staticFS, "static")
		if err != nil {
			panic("webui: reading embedded files: " + err.Error())
		}
		var index []byte
		for _, e := range entries {
			body, err := staticFS.ReadFile("static/" + e.Name())
			if err != nil {
				panic("webui: reading embedded " + e.Name() + ": " + err.Error())
			}
			if e.Name() == "index.html" {
				index = body
				continue
			}
			s.assets[e.Name()] = newFile(e.Name(), body)
		}
		for name, f := range s.assets {
			index = bytes.ReplaceAll(index, []byte(`"`+assetPrefix+name+`"`), []byte(`"`+assetPrefix+name+"?v="+f.hash+`"`))
		}
		s.index = newFile("index.html", index)
		loaded = s
	})
	return loaded
}

func newFile(name string, body []byte) file {
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:8])
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	return file{body: body, etag: `"` + hash + `"`, hash: hash, contentType: ct}
}

// Handler serves the page at / and its assets below /assets/; anything
// else is a 404. Mount it on the Patterns (or use Register).
func Handler() http.Handler {
	s := load()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		switch {
		case r.URL.Path == "/" || r.URL.Path == "/index.html":
			serve(w, r, s.index, "no-cache")
		case strings.HasPrefix(r.URL.Path, assetPrefix):
			f, ok := s.assets[strings.TrimPrefix(r.URL.Path, assetPrefix)]
			if !ok {
				http.NotFound(w, r)
				return
			}
			cache := "no-cache"
			if r.URL.Query().Get("v") == f.hash {
				cache = "public, max-age=31536000, immutable"
			}
			serve(w, r, f, cache)
		default:
			http.NotFound(w, r)
		}
	})
}

// Register mounts Handler on mux at Patterns.
func Register(mux *http.ServeMux) {
	h := Handler()
	for _, p := range Patterns {
		mux.Handle(p, h)
	}
}

// serve answers f, or 304 when the browser's copy is current
// (http.ServeContent compares If-None-Match with the ETag set here).
func serve(w http.ResponseWriter, r *http.Request, f file, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
