package testsmtp

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
)

// Parsed is a message taken apart the way a mail client would, so a test
// asserts on what the citizen reads, not on one library's encoding.
type Parsed struct {
	Header mail.Header
	// Subject, From and To are the decoded headers (RFC 2047 words
	// decoded).
	Subject, From, To string
	// ContentType is the top-level media type, e.g. multipart/alternative.
	ContentType string
	// Parts are the leaves, in order (one for a single-part message).
	Parts []Part
	// Text and HTML are the first text/plain and text/html leaves,
	// transfer encoding decoded.
	Text, HTML string
}

// Part is one leaf of the MIME tree.
type Part struct {
	ContentType string // media type, e.g. text/plain
	Charset     string // lower case, e.g. utf-8
	Encoding    string // Content-Transfer-Encoding, lower case
	Body        string // decoded
}

// Parse parses m.Data with net/mail and mime/multipart.
func (m Message) Parse() (*Parsed, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	var dec mime.WordDecoder
	p := &Parsed{Header: msg.Header}
	for _, h := range []struct {
		name string
		dst  *string
	}{{"Subject", &p.Subject}, {"From", &p.From}, {"To", &p.To}} {
		v, err := dec.DecodeHeader(msg.Header.Get(h.name))
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", h.name, err)
		}
		*h.dst = v
	}
	ct, params, err := mediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	p.ContentType = ct
	if err := p.walk(ct, params, msg.Header.Get("Content-Transfer-Encoding"), msg.Body); err != nil {
		return nil, err
	}
	for _, part := range p.Parts {
		switch {
		case part.ContentType == "text/plain" && p.Text == "":
			p.Text = part.Body
		case part.ContentType == "text/html" && p.HTML == "":
			p.HTML = part.Body
		}
	}
	return p, nil
}

// MustParse is Parse that fails the test on an error.
func (m Message) MustParse(t testing.TB) *Parsed {
	t.Helper()
	p, err := m.Parse()
	if err != nil {
		t.Fatalf("testsmtp: parse message: %v\n%s", err, m.Data)
	}
	return p
}

func mediaType(v string) (string, map[string]string, error) {
	if v == "" { // RFC 2045: the default
		return "text/plain", map[string]string{"charset": "us-ascii"}, nil
	}
	ct, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "", nil, fmt.Errorf("content type %q: %w", v, err)
	}
	return ct, params, nil
}

func (p *Parsed) walk(ct string, params map[string]string, cte string, body io.Reader) error {
	if strings.HasPrefix(ct, "multipart/") {
		if params["boundary"] == "" {
			return fmt.Errorf("%s without a boundary", ct)
		}
		// NextRawPart, not NextPart: NextPart silently decodes
		// quoted-printable and drops the header, and a test should see
		// what was sent.
		r := multipart.NewReader(body, params["boundary"])
		for {
			part, err := r.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: next part: %w", ct, err)
			}
			pct, pparams, err := mediaType(part.Header.Get("Content-Type"))
			if err != nil {
				return err
			}
			if err := p.walk(pct, pparams, part.Header.Get("Content-Transfer-Encoding"), part); err != nil {
				return err
			}
		}
	}
	cte = strings.ToLower(strings.TrimSpace(cte))
	var r io.Reader
	switch cte {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body) // skips the line ends
	case "", "7bit", "8bit", "binary":
		r = body
	default:
		return fmt.Errorf("%s: unknown transfer encoding %q", ct, cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("%s: decode %s: %w", ct, cte, err)
	}
	p.Parts = append(p.Parts, Part{
		ContentType: ct,
		Charset:     strings.ToLower(params["charset"]),
		Encoding:    cte,
		Body:        string(b),
	})
	return nil
}
