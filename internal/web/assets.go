package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// static holds the stylesheets, fonts and icons the pages load. The DSFR
// part is vendored by scripts/refresh-dsfr.sh; do not edit it by hand.
//
//go:embed static
var static embed.FS

// staticRoot is static without its "static/" prefix, so URL paths under
// /static/ map one to one onto it.
var staticRoot = func() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // "static" is a valid literal path; this cannot happen
	}
	return sub
}()

// Cache lifetimes. A URL carrying the current asset version can never change
// content, so it is cached for good; a bare URL (fonts and icons reached
// through relative url()s in a stylesheet, links typed by hand) may change
// on the next deployment, so it is kept a day and then revalidated with its
// ETag, which costs a 304.
const (
	cacheVersioned   = "public, max-age=31536000, immutable"
	cacheUnversioned = "public, max-age=86400"
	// A URL naming another version comes from a page rendered by another
	// release (a rolling deployment, a page left open): serving today's file
	// under it is fine, caching it as if it were that version is not.
	cacheOtherVersion = "no-cache"
)

// contentTypes is explicit because mime.TypeByExtension knows neither woff2
// nor ico without the host's /etc/mime.types, and the answer must not depend
// on the machine the binary runs on.
var contentTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".woff2": "font/woff2",
	".woff":  "font/woff",
	".svg":   "image/svg+xml",
	".ico":   "image/x-icon",
	".png":   "image/png",
	".md":    "text/markdown; charset=utf-8",
	"":       "text/plain; charset=utf-8", // VERSION
}

type assetIndex struct {
	version string            // hash of the whole tree
	etags   map[string]string // per file, quoted
}

// assets hashes the embedded tree once, lazily: about 1.5 MB, a few
// milliseconds, paid by the first page or asset served.
var assets = sync.OnceValue(func() assetIndex {
	idx := assetIndex{etags: map[string]string{}}
	var names []string
	err := fs.WalkDir(staticRoot, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(staticRoot, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		idx.etags[p] = `"` + hex.EncodeToString(sum[:8]) + `"`
		names = append(names, p)
		return nil
	})
	if err != nil {
		panic(err) // reading an embed.FS cannot fail
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		io.WriteString(h, n+"\x00"+idx.etags[n]+"\n")
	}
	idx.version = hex.EncodeToString(h.Sum(nil))[:12]
	return idx
})

// AssetVersion identifies the embedded asset tree; it changes whenever any
// embedded file does.
func AssetVersion() string { return assets().version }

// AssetURL returns the URL of an embedded asset (name relative to static/,
// e.g. "neutral.css") with the version query that lets Assets cache it for
// good. Templates reach it as {{asset "name"}}.
func AssetURL(name string) string {
	return "/static/" + strings.TrimPrefix(name, "/") + "?v=" + AssetVersion()
}

// Assets returns an http.Handler serving the embedded static files. Mount it
// at /static/ (mux.Handle("/static/", web.Assets())); it also works behind
// http.StripPrefix("/static/", ...). Directory listings are not served.
func Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		serveAsset(w, req, func(w http.ResponseWriter, r *http.Request, status int) {
			SecurityPolicy{}.Apply(w.Header())
			http.Error(w, http.StatusText(status), status)
		})
	})
}

// Assets is the package's Assets with misses and wrong methods answered
// by r's error pages (S900404, S900405), security headers included, as
// every other answer of a service.
func (r *Renderer) Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		serveAsset(w, req, func(w http.ResponseWriter, req *http.Request, status int) {
			if status == http.StatusMethodNotAllowed {
				r.RenderError(w, req, ErrMethodNotAllowed)
				return
			}
			r.RenderError(w, req, ErrNotFound)
		})
	})
}

func serveAsset(w http.ResponseWriter, req *http.Request, miss func(http.ResponseWriter, *http.Request, int)) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		miss(w, req, http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(req.URL.Path, "/")
	name = strings.TrimPrefix(name, "static/")
	idx := assets()
	etag, ok := idx.etags[name] // also rejects "..", directories and unknown files
	if !ok {
		miss(w, req, http.StatusNotFound)
		return
	}
	f, err := staticRoot.Open(name)
	if err != nil {
		miss(w, req, http.StatusNotFound)
		return
	}
	defer f.Close()
	rs, ok := f.(io.ReadSeeker)
	if !ok { // embed.FS files always seek; guard rather than panic
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}

	h := w.Header()
	SecurityPolicy{}.Apply(h) // nosniff matters most here: never let an SVG become a page
	h.Set("Content-Type", contentType(name))
	h.Set("ETag", etag)
	switch v := req.URL.Query().Get("v"); v {
	case "":
		h.Set("Cache-Control", cacheUnversioned)
	case idx.version:
		h.Set("Cache-Control", cacheVersioned)
	default:
		h.Set("Cache-Control", cacheOtherVersion)
	}
	// A zero modtime leaves Last-Modified out; the ETag set above is what
	// ServeContent uses to answer conditional requests with 304.
	http.ServeContent(w, req, name, time.Time{}, rs)
}

func contentType(name string) string {
	if ct, ok := contentTypes[path.Ext(name)]; ok {
		return ct
	}
	return "application/octet-stream"
}
