package loadgen

import (
	"bytes"
	"html"
)

// Markers the flow looks for in the pages it is served. They are the
// exact attribute sequences the broker's and the mock IdPs' templates
// write; a page that lacks one is an error of that step.
var (
	csrfMarker   = []byte(`name="csrf" value="`)
	txMarker     = []byte(`name="tx" value="`)
	actionMarker = []byte(`<form method="post" action="`)
	citizenMark  = []byte(`id="citizen"`)
	codeMarker   = []byte(`<code>S`)
	alertMarker  = []byte(`role="alert"`)
)

// attrAfter returns the attribute value that follows marker in page, up to
// the closing double quote, HTML-unescaped; ok is false when the marker is
// absent or the value is not closed. It is a plain scan, no regexp: the
// generator must cost little per page.
func attrAfter(page, marker []byte) (string, bool) {
	i := bytes.Index(page, marker)
	if i < 0 {
		return "", false
	}
	rest := page[i+len(marker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", false
	}
	v := rest[:j]
	if bytes.IndexByte(v, '&') >= 0 {
		return html.UnescapeString(string(v)), true
	}
	return string(v), true
}

// errorCode returns the first Sésame error code an error page shows
// (<code>S……</code>), or "" when the page shows none.
func errorCode(page []byte) string {
	i := bytes.Index(page, codeMarker)
	if i < 0 {
		return ""
	}
	rest := page[i+len("<code>"):]
	j := bytes.IndexByte(rest, '<')
	if j < 0 || j > 16 {
		return ""
	}
	return string(rest[:j])
}

// errorDetail says what a refused answer shows: the Sésame error code of
// an error page, else the text of the page's alert (the mock IdPs' form
// errors), else the start of the body (a JSON error).
func errorDetail(page []byte) string {
	if c := errorCode(page); c != "" {
		return c
	}
	if i := bytes.Index(page, alertMarker); i >= 0 {
		rest := page[i:]
		if j := bytes.Index(rest, []byte("<p>")); j >= 0 {
			rest = rest[j+3:]
			if k := bytes.Index(rest, []byte("</p>")); k >= 0 {
				return html.UnescapeString(string(bytes.TrimSpace(rest[:k])))
			}
		}
	}
	return string(bytes.TrimSpace(page[:min(len(page), 120)]))
}
