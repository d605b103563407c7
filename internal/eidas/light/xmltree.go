package light

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// element is one element of a parsed message: a tiny, bounded DOM that the
// message parsers walk with a schema, so that every unknown, repeated or
// misplaced element is refused by name (encoding/xml's Unmarshal would
// silently skip or overwrite them).
type element struct {
	name     string
	path     string // below the root, with [n] indexes on repeated names
	attrs    []xml.Attr
	text     string
	children []*element
}

// maxDepth is the deepest a light message goes:
// lightRequest/requestedAttributes/attribute/value.
const maxDepth = 4

// parseTree reads one document whose root is root in namespace ns. It
// refuses what has no place in a light message: a DOCTYPE (so no entity
// can be declared, let alone expanded), processing instructions other than
// the XML declaration, elements in another namespace, text beside child
// elements, more depth than the schema has, and anything after the root.
func parseTree(data []byte, ns, root string) (*element, error) {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Message: root, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if len(data) == 0 {
		return nil, bad("", "empty document")
	}
	if len(data) > MaxMessageSize {
		return nil, bad("", "larger than %d bytes", MaxMessageSize)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	// No CharsetReader: a document declaring anything but UTF-8 fails.
	var (
		top   *element
		stack []*element
		done  bool
		texts []*strings.Builder
		first = true
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, bad("", "not well-formed XML (line %d): %s", se.Line, se.Msg)
			}
			return nil, bad("", "not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return nil, bad("", "processing instruction <?%s?> not allowed", t.Target)
			}
		case xml.Directive:
			// <!DOCTYPE ...> and friends: refused outright, so no DTD,
			// no entity declaration, no external reference.
			return nil, bad("", "DOCTYPE or other <!...> directive not allowed")
		case xml.Comment:
			// Harmless; ignored.
		case xml.StartElement:
			if done {
				return nil, bad("", "content after the root element")
			}
			if len(stack) >= maxDepth {
				return nil, bad(pathOf(stack), "nested deeper than the schema allows")
			}
			if t.Name.Space != ns {
				where := ""
				if len(stack) > 0 {
					where = childPath(stack[len(stack)-1], t.Name.Local)
				}
				return nil, bad(where, "element <%s> in namespace %q, expected %q", t.Name.Local, t.Name.Space, ns)
			}
			e := &element{name: t.Name.Local, attrs: t.Attr}
			if len(stack) == 0 {
				if t.Name.Local != root {
					return nil, bad("", "root element <%s>, expected <%s>", t.Name.Local, root)
				}
				top = e
			} else {
				parent := stack[len(stack)-1]
				if strings.TrimSpace(texts[len(texts)-1].String()) != "" {
					return nil, bad(childPath(parent, ""), "text mixed with elements")
				}
				n := 0
				for _, c := range parent.children {
					if c.name == e.name {
						n++
					}
				}
				e.path = childPath(parent, e.name)
				if n > 0 || e.name == "attribute" {
					e.path += "[" + strconv.Itoa(n+1) + "]"
				}
				parent.children = append(parent.children, e)
			}
			stack = append(stack, e)
			texts = append(texts, &strings.Builder{})
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) != 0 {
					return nil, bad("", "text outside the root element")
				}
				break
			}
			b := texts[len(texts)-1]
			if b.Len()+len(t) > maxValue {
				return nil, bad(stack[len(stack)-1].path, "text longer than %d bytes", maxValue)
			}
			b.Write(t)
		case xml.EndElement:
			e := stack[len(stack)-1]
			text := texts[len(texts)-1].String()
			if len(e.children) > 0 {
				if strings.TrimSpace(text) != "" {
					return nil, bad(e.path, "text mixed with elements")
				}
			} else {
				e.text = strings.TrimSpace(text)
			}
			stack, texts = stack[:len(stack)-1], texts[:len(texts)-1]
			if len(stack) == 0 {
				done = true
			}
		}
		first = false
	}
	if top == nil || !done {
		return nil, bad("", "no complete <%s> element", root)
	}
	return top, nil
}

func pathOf(stack []*element) string {
	if len(stack) == 0 {
		return ""
	}
	return stack[len(stack)-1].path
}

func childPath(parent *element, name string) string {
	if parent.path == "" {
		return name
	}
	if name == "" {
		return parent.path
	}
	return parent.path + "/" + name
}

// rule says how often a child may occur (max 0: unbounded) and whether it
// must.
type rule struct {
	required bool
	max      int
}

// checkChildren refuses unknown children of e and enforces the counts of
// the known ones.
func checkChildren(msg string, e *element, rules map[string]rule) error {
	counts := map[string]int{}
	for _, c := range e.children {
		r, ok := rules[c.name]
		if !ok {
			return &FieldError{Message: msg, Field: c.path, Reason: "unknown element"}
		}
		counts[c.name]++
		if r.max > 0 && counts[c.name] > r.max {
			return &FieldError{Message: msg, Field: c.path, Reason: "repeated; at most " + strconv.Itoa(r.max) + " allowed"}
		}
	}
	for name, r := range rules {
		if r.required && counts[name] == 0 {
			return &FieldError{Message: msg, Field: childPath(e, name), Reason: "missing"}
		}
	}
	return nil
}

// checkAttrs refuses attributes other than namespace declarations, the
// XML Schema instance ones (xsi:schemaLocation, which the EC's own samples
// carry) and those allowed.
func checkAttrs(msg string, e *element, allowed ...string) error {
	for _, a := range e.attrs {
		switch {
		case a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns"):
		case a.Name.Space == "http://www.w3.org/2001/XMLSchema-instance":
		case a.Name.Space == "" && contains(allowed, a.Name.Local):
		default:
			where := e.path
			if where == "" {
				where = e.name
			}
			return &FieldError{Message: msg, Field: where, Reason: fmt.Sprintf("attribute %q not allowed", a.Name.Local)}
		}
	}
	return nil
}

func (e *element) attr(name string) (string, bool) {
	for _, a := range e.attrs {
		if a.Name.Space == "" && a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// child returns the first child named name, or nil.
func (e *element) child(name string) *element {
	for _, c := range e.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// leaf returns the text of the child named name ("" when absent) after
// checking that it has no children or attributes of its own.
func (e *element) leaf(msg, name string) (string, error) {
	c := e.child(name)
	if c == nil {
		return "", nil
	}
	if err := c.leafOnly(msg); err != nil {
		return "", err
	}
	return c.text, nil
}

func (e *element) leafOnly(msg string, allowedAttrs ...string) error {
	if len(e.children) > 0 {
		return &FieldError{Message: msg, Field: e.children[0].path, Reason: "unknown element"}
	}
	return checkAttrs(msg, e, allowedAttrs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
