package web

import (
	"bytes"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// The layout around a page is the same for every request of one language
// and page shape: only the title, the language switch's link and the
// page's content change. Executing it is most of a page's cost (a dozen
// message lookups, links, asset URLs, each a reflective call), so a
// Renderer executes it once per shape with a marker in each of those
// three places, keeps the text between the markers (a frame), and per
// request writes the frame's pieces around the three values, each escaped
// by html/template in the same context as in the layout. The output is
// the layout's, byte for byte (TestFrameMatchesLayout).

// The markers are lowercase letters only, which every html/template
// escaper (text, RCDATA, attribute, URL) leaves as they are.
const (
	markTitle   = "zqsesametitlemarkzq"
	markHref    = "zqsesamehrefmarkzq"
	markContent = "zqsesamecontentmarkzq"
)

// slot is what goes between two pieces of a frame.
type slot uint8

const (
	slotNone slot = iota
	slotTitle
	slotHref
	slotContent
)

// piece is static text followed by a slot.
type piece struct {
	text []byte
	then slot
}

// frame is the layout cut at its slots.
type frame struct{ pieces []piece }

// frameKey is what the layout's output depends on, besides the
// Renderer's fixed settings (theme, brand, Layout, catalogue).
type frameKey struct {
	lang        string
	stylesheets string
	titled      bool
	// switchLang is the language switch's target ("" when there is no
	// switch); its label follows from it.
	switchLang, switchLabel string
}

// maxFrames bounds the cache: languages and stylesheet lists come from
// code and config, but a page's Lang could come from a request.
const maxFrames = 256

// frames is a Renderer's frame cache. A nil frame stored for a key means
// that shape cannot be framed (a marker did not appear exactly once).
type frames struct {
	// tmpl is the layout with a "content" that writes markContent;
	// nil when the layout reads per-request values a frame would freeze.
	tmpl *template.Template
	m    sync.Map // frameKey → *frame
	n    atomic.Int32
}

// reset forgets the frames, built with settings that changed.
func (f *frames) reset() {
	f.m.Clear()
	f.n.Store(0)
}

// frameTemplate is a copy of layout whose "content" is the content
// marker, or nil if the layout reads the page's Body or correlation id,
// which a frame would freeze at their first value.
func frameTemplate(layout *template.Template, source string) (*template.Template, error) {
	if strings.Contains(source, ".Body") || strings.Contains(source, ".CorrelationID") {
		return nil, nil
	}
	t, err := layout.Clone()
	if err != nil {
		return nil, fmt.Errorf("web: layout frame: %w", err)
	}
	if _, err := t.Parse(`{{define "content"}}` + markContent + `{{end}}`); err != nil {
		return nil, fmt.Errorf("web: layout frame: %w", err)
	}
	return t, nil
}

// execute writes page t with v inside the layout: through the frame of
// v's shape, or by executing the layout when there is none.
func (r *Renderer) execute(buf *bytes.Buffer, t *template.Template, v View) error {
	f, err := r.frameFor(v)
	if err != nil {
		return err
	}
	if f == nil {
		return t.ExecuteTemplate(buf, layoutName, v)
	}
	for _, p := range f.pieces {
		buf.Write(p.text)
		switch p.then {
		case slotTitle:
			if err := escapeIn(buf, titleContext, v.Title); err != nil {
				return err
			}
		case slotHref:
			if err := escapeIn(buf, hrefContext, v.Switch.Href); err != nil {
				return err
			}
		case slotContent:
			if err := t.ExecuteTemplate(buf, "content", v); err != nil {
				return err
			}
		}
	}
	return nil
}

// frameFor returns the frame of v's shape, building it on first use; nil
// when the layout must be executed instead.
func (r *Renderer) frameFor(v View) (*frame, error) {
	if r.frames.tmpl == nil {
		return nil, nil
	}
	k := frameKey{lang: v.Lang, stylesheets: strings.Join(v.Stylesheets, "\n"), titled: v.Title != ""}
	if v.Switch != nil {
		k.switchLang, k.switchLabel = v.Switch.Lang, v.Switch.Label
	}
	if f, ok := r.frames.m.Load(k); ok {
		return f.(*frame), nil
	}
	if r.frames.n.Load() >= maxFrames {
		return nil, nil
	}
	f, err := r.buildFrame(v)
	if err != nil {
		return nil, err
	}
	if _, loaded := r.frames.m.LoadOrStore(k, f); !loaded {
		r.frames.n.Add(1)
	}
	return f, nil
}

// buildFrame executes the layout with markers in v's slots and cuts its
// output at them. A marker missing or repeated leaves no frame (nil):
// the layout is then executed for that shape.
func (r *Renderer) buildFrame(v View) (*frame, error) {
	type mark struct {
		s    string
		slot slot
	}
	marks := []mark{{markContent, slotContent}}
	if v.Title != "" {
		v.Title = markTitle
		marks = append(marks, mark{markTitle, slotTitle})
	}
	if v.Switch != nil {
		sw := *v.Switch
		sw.Href = markHref
		v.Switch = &sw
		marks = append(marks, mark{markHref, slotHref})
	}
	var buf bytes.Buffer
	if err := r.frames.tmpl.ExecuteTemplate(&buf, layoutName, v); err != nil {
		return nil, fmt.Errorf("web: layout frame: %w", err)
	}
	out := buf.Bytes()
	type at struct {
		i    int
		n    int
		slot slot
	}
	var cuts []at
	for _, m := range marks {
		if bytes.Count(out, []byte(m.s)) != 1 {
			return nil, nil
		}
		cuts = append(cuts, at{bytes.Index(out, []byte(m.s)), len(m.s), m.slot})
	}
	slices.SortFunc(cuts, func(a, b at) int { return a.i - b.i })
	f := &frame{}
	prev := 0
	for _, c := range cuts {
		f.pieces = append(f.pieces, piece{text: bytes.Clone(out[prev:c.i]), then: c.slot})
		prev = c.i + c.n
	}
	f.pieces = append(f.pieces, piece{text: bytes.Clone(out[prev:])})
	return f, nil
}

// The contexts of the layout's per-request values, for html/template to
// escape each as the layout would: the title's text inside <title>, and
// the switch's link as an href.
var (
	titleContext = escapeContext(`<title>`, `</title>`, plainText)
	hrefContext  = escapeContext(`<a href="`, `">`, plainPath)
)

// escapeCtx is a one-action template whose output is the value, escaped,
// between a known prefix and suffix; plain says whether a value is
// written as it is, but for & as &amp; (the common case, without the
// cost of executing a template).
type escapeCtx struct {
	t              *template.Template
	prefix, suffix int
	plain          func(string) bool
}

func escapeContext(before, after string, plain func(string) bool) escapeCtx {
	return escapeCtx{
		t:      template.Must(template.New("").Parse(before + "{{.}}" + after)),
		prefix: len(before),
		suffix: len(after),
		plain:  plain,
	}
}

// plainText: no character html/template's HTML escaper changes (NUL, the
// quotes, &, +, < and >), valid UTF-8.
func plainText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsAny(s, "\x00\"&'+<>")
}

// plainPath: a path on this site ("/…", so no scheme for the URL filter
// to refuse) made of characters that the URL normaliser keeps and the
// attribute escaper leaves, but for &.
func plainPath(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~/?=&%:@,;!$*", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// escapeIn writes s escaped in c's context to buf.
func escapeIn(buf *bytes.Buffer, c escapeCtx, s string) error {
	if c.plain(s) {
		for {
			i := strings.IndexByte(s, '&')
			if i < 0 {
				buf.WriteString(s)
				return nil
			}
			buf.WriteString(s[:i])
			buf.WriteString("&amp;")
			s = s[i+1:]
		}
	}
	start := buf.Len()
	if err := c.t.Execute(buf, s); err != nil {
		return fmt.Errorf("web: escape %q: %w", s, err)
	}
	// Drop the context's markup around the value.
	b := buf.Bytes()[start:]
	n := copy(b, b[c.prefix:len(b)-c.suffix])
	buf.Truncate(start + n)
	return nil
}
