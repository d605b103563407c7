package config

import (
	"cmp"
	"encoding"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// The structure check. The YAML decoder, told to refuse unknown fields,
// stops being helpful at its first error and names Go types ("field
// redirect_uri not found in type config.SP"). So before the file is
// decoded, its YAML tree is walked against the Go types: every unknown
// key and every value of the wrong shape is reported, with its line and
// in the words of the validation (entries and fields, never a Go type),
// and the position of every key is kept, so that validation problems
// name their line too.
//
// The walk follows the decoder's rules (yaml.v3 decode.go) closely
// enough that a file it finds nothing wrong with decodes, and a file that
// decodes gives it nothing to say: FuzzStructure checks both.

// pos is a place in the file, 1-based; line 0 means unknown.
type pos struct{ line, col int }

// positions is what the structure check learnt of a file, handed to the
// validation through Config.
type positions struct {
	// at maps a canonical path ("broker.platforms[0].service_providers[1]
	// .client_secret": no labels, Go slice indexes) to where its key, or
	// its list item, is written.
	at map[string]pos
	// reported holds the paths whose value the check refused: the decoder
	// left them empty, and a validation problem under them would only say
	// it again.
	reported map[string]bool
	// found are the check's own problems, in file order.
	found []Problem
	// aborted means the decoder cannot decode the file at all (a merge
	// key on a scalar, an anchor inside itself, duplicate keys at the
	// top): nothing can be validated.
	aborted bool
	lines   *lineMap
	// nodes are the keys and scalars walked, where they start in the
	// expanded text, to tell which field an unset ${VAR} was in.
	nodes []walked
}

// walked is a node the walk went through.
type walked struct {
	line, col int
	at        where
}

// unset reports the unset variables, each in the field it was written in;
// the field's validation would only say it again ("is missing").
func (ps *positions) unset(vars []unsetVar) {
	if len(vars) == 0 {
		return
	}
	slices.SortStableFunc(ps.nodes, func(a, b walked) int {
		return cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(a.col, b.col))
	})
	expLs := lineStarts(ps.lines.exp)
	for _, v := range vars {
		e := lineCol(ps.lines.exp, expLs, v.exp)
		q := Problem{Field: "${" + v.name + "}",
			Message: fmt.Sprintf("environment variable %s is not set (${%s:-default} gives a default)", v.name, v.name)}
		// The last node starting at or before the reference holds it.
		i, _ := slices.BinarySearchFunc(ps.nodes, e, func(n walked, p pos) int {
			return cmp.Or(cmp.Compare(n.line, p.line), cmp.Compare(n.col, p.col))
		})
		if i < len(ps.nodes) && ps.nodes[i].line == e.line && ps.nodes[i].col == e.col {
			i++
		}
		if i > 0 {
			at := ps.nodes[i-1].at
			q.Entry, q.Field = at.entry, at.field
			ps.reported[at.path] = true
		}
		r := ps.lines.rawPos(v.offset)
		q.Line, q.Column = r.line, r.col
		ps.found = append(ps.found, q)
	}
}

func newPositions(lm *lineMap) *positions {
	return &positions{at: map[string]pos{}, reported: map[string]bool{}, lines: lm}
}

// find returns where path is written, or its closest ancestor that is
// (a missing field is reported at its entry).
func (ps *positions) find(path string) pos {
	for path != "" {
		if p, ok := ps.at[path]; ok {
			return p
		}
		path = parentPath(path)
	}
	return pos{}
}

// covers reports whether path or one of its ancestors was refused by the
// structure check.
func (ps *positions) covers(path string) bool {
	for {
		if ps.reported[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// parentPath drops the last segment of a canonical path: ".name" or
// "[index]".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
		return ""
	}
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		if path[i] == ']' {
			return path[:i+1]
		}
		return path[:i]
	}
	return ""
}

// plainField matches the field names validation uses for a path under
// its entry: "client_secret", "redis.url", "trusted_proxies[2]".
var plainField = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+|\[[^\]]*\])*$`)

// canonical turns validation's words for an entry and a field
// ("broker.platforms[0] (std).service_providers[1] (demo-sp)",
// "redirect_uris") into the path the structure check indexed. Labels are
// dropped: a label is " (...)" followed by "." or the end.
func canonical(entry, field string) string {
	var b strings.Builder
	for rest := entry; rest != ""; {
		i := strings.Index(rest, " (")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		rest = rest[i+2:]
		end := -1
		for j := 0; j < len(rest); j++ {
			if rest[j] == ')' && (j+1 == len(rest) || rest[j+1] == '.') {
				end = j
				break
			}
		}
		if end < 0 {
			break
		}
		rest = rest[end+1:]
	}
	path := b.String()
	if path == "(file)" {
		path = ""
	}
	if plainField.MatchString(field) {
		if path == "" {
			return field
		}
		return path + "." + field
	}
	return path
}

// where is a place in the walk, in two spellings.
type where struct {
	// entry and field are validation's words: the entry is a section or
	// a list item ("broker.platforms[0] (std)"), the field the path under
	// it ("redis.url"), empty at the entry itself.
	entry, field string
	// path is the canonical path, with the indexes of the decoded slices.
	path string
}

var root = where{entry: "(file)"}

func (w where) key(name string) where {
	if w.path == "" {
		return where{entry: name, path: name}
	}
	return where{entry: w.entry, field: joinField(w.field, name), path: w.path + "." + name}
}

// item is the i-th element of a list, decoded as element n of the slice.
// A struct element is an entry of its own, named by its label.
func (w where) item(i, n int, entry bool, label string) where {
	idx := "[" + strconv.Itoa(i) + "]"
	path := w.path + "[" + strconv.Itoa(n) + "]"
	if !entry {
		return where{entry: w.entry, field: w.field + idx, path: path}
	}
	e := w.entry
	if w.field != "" {
		e += "." + w.field
	}
	e += idx
	if label != "\x00" {
		e += " (" + label + ")"
	}
	return where{entry: e, path: path}
}

func (w where) mapKey(k string) where {
	idx := "[" + strconv.Quote(k) + "]"
	return where{entry: w.entry, field: w.field + idx, path: w.path + idx}
}

func joinField(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// walker walks one document.
type walker struct {
	ps *positions
	// active are the aliases being walked, to catch an anchor inside
	// itself as the decoder does.
	active map[*yaml.Node]bool
	// done remembers what each node gave for a type, so an anchor used
	// many times is walked once (no blow-up on alias bombs, no repeated
	// problems).
	done map[walkKey]bool
	// aliasDepth counts the aliases being walked, and aliasSteps the
	// steps taken through them: merges are walked again at each use, so
	// they are bounded as the decoder bounds aliases.
	aliasDepth, aliasSteps int
}

// maxAliasSteps is far beyond any real file's use of anchors, and what an
// alias bomb reaches in a moment.
const maxAliasSteps = 1_000_000

type walkKey struct {
	n *yaml.Node
	t reflect.Type
}

// checkStructure walks the document's top node against the type of v (a
// pointer) and records what it finds in ps.
func checkStructure(top *yaml.Node, t reflect.Type, ps *positions) {
	w := &walker{ps: ps, active: map[*yaml.Node]bool{}, done: map[walkKey]bool{}}
	if !w.walk(top, t, root) && ps.reported[""] {
		ps.aborted = true
	}
}

func (w *walker) at(n *yaml.Node) pos {
	return w.ps.lines.pos(n.Line, n.Column)
}

func (w *walker) problem(at where, n *yaml.Node, format string, args ...any) {
	p := w.at(n)
	w.ps.found = append(w.ps.found, Problem{Line: p.line, Column: p.col, Entry: at.entry, Field: at.field, Message: fmt.Sprintf(format, args...)})
}

// abort reports what makes the decoder give up on the whole file.
func (w *walker) abort(at where, n *yaml.Node, format string, args ...any) {
	w.problem(at, n, format, args...)
	w.ps.aborted = true
}

// refuse reports a value the decoder will not take; the path is then left
// empty by the decoder.
func (w *walker) refuse(at where, n *yaml.Node, format string, args ...any) {
	w.problem(at, n, format, args...)
	w.ps.reported[at.path] = true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && (n.Tag == "" || n.Tag == "!" || n.ShortTag() == "!!merge")
}

// walk checks n against t and reports whether the decoder keeps the value
// (it drops list items it cannot decode, which shifts the indexes).
func (w *walker) walk(n *yaml.Node, t reflect.Type, at where) bool {
	if !w.step(n, at) {
		return false
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return true
		}
		if w.active[n] {
			w.abort(at, n, "the anchor %q contains itself", n.Value)
			return false
		}
		w.active[n] = true
		w.aliasDepth++
		defer func() { delete(w.active, n); w.aliasDepth-- }()
		return w.walk(n.Alias, t, at)
	}
	if isLeaf(t) {
		return w.leaf(n, t, at)
	}
	k := walkKey{n, t}
	if kept, ok := w.done[k]; ok {
		return kept
	}
	kept := w.composite(n, t, at)
	w.done[k] = kept
	return kept
}

// step counts one step of the walk, and stops it for good when the file
// is an alias bomb or the decoder will give up on it anyway.
func (w *walker) step(n *yaml.Node, at where) bool {
	if w.ps.aborted {
		return false
	}
	if w.aliasDepth > 0 {
		if w.aliasSteps++; w.aliasSteps > maxAliasSteps {
			w.abort(at, n, "the file uses its anchors too many times over (excessive aliasing)")
			return false
		}
	}
	return true
}

func (w *walker) composite(n *yaml.Node, t reflect.Type, at where) bool {
	if isNull(n) {
		// nil for a pointer, a list or a map; a struct stays as it is,
		// and a list item that is null is dropped.
		return t.Kind() != reflect.Struct
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.walk(n, t.Elem(), at)
	case reflect.Struct:
		return w.structure(n, t, at, nil)
	case reflect.Slice:
		return w.list(n, t, at)
	case reflect.Map:
		return w.mapping(n, t, at, nil)
	}
	return w.leaf(n, t, at)
}

// leaf decodes n as the decoder would: a scalar type, or one with its own
// unmarshaler (Duration).
func (w *walker) leaf(n *yaml.Node, t reflect.Type, at where) bool {
	if n.Kind == yaml.ScalarNode {
		w.ps.nodes = append(w.ps.nodes, walked{n.Line, n.Column, at})
	}
	v := reflect.New(t)
	if err := n.Decode(v.Interface()); err != nil {
		w.refuse(at, n, "%s", mismatch(n, t, err))
		return false
	}
	if isNull(resolve(n)) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
			return true
		}
		return false
	}
	return true
}

// resolve follows aliases, a bounded number of times.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < 100 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

// duplicates reports keys written twice in a mapping; the decoder then
// drops the whole mapping.
func (w *walker) duplicates(n *yaml.Node, at where) bool {
	type key struct {
		kind  yaml.Kind
		value string
	}
	first := map[key]*yaml.Node{}
	dup := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if f, ok := first[key{k.Kind, k.Value}]; ok {
			w.problem(at.key(k.Value), k, "is set twice (first at line %d)", w.at(f).line)
			dup = true
			continue
		}
		first[key{k.Kind, k.Value}] = k
	}
	if dup {
		w.ps.reported[at.path] = true
	}
	return dup
}

// keyString decodes a mapping key as a string; ok is false for a null key,
// which the decoder skips, and for a key that is not a scalar.
func (w *walker) keyString(k *yaml.Node, at where) (string, bool) {
	if isNull(resolve(k)) {
		return "", false
	}
	var s string
	if err := k.Decode(&s); err != nil {
		w.problem(at, k, "expected a field name, got %s", shape(resolve(k)))
		return "", false
	}
	return s, true
}

// structure walks a mapping decoded into a struct. skip holds the keys a
// merge must not override, shared along one merge as the decoder does.
func (w *walker) structure(n *yaml.Node, t reflect.Type, at where, skip map[string]bool) bool {
	if !w.step(n, at) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		w.refuse(at, n, "%s", mismatch(n, t, nil))
		return false
	}
	if w.duplicates(n, at) {
		return false
	}
	info := structInfo(t)
	var merge *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			merge = v
			continue
		}
		name, ok := w.keyString(k, at)
		if !ok {
			continue
		}
		if skip != nil {
			if skip[name] {
				continue
			}
			skip[name] = true
		}
		f, known := info.fields[name]
		child := at.key(name)
		w.ps.nodes = append(w.ps.nodes, walked{k.Line, k.Column, child})
		if !known {
			if info.inlineMap != nil {
				w.walk(v, info.inlineMap, at.mapKey(name))
				continue
			}
			w.problem(child, k, "%s", unknownField(name, info.names))
			continue
		}
		w.ps.at[child.path] = w.at(k)
		w.walk(v, f, child)
	}
	if merge != nil {
		w.merge(n, merge, t, at, skip)
	}
	return true
}

// mapping walks a mapping decoded into a Go map.
func (w *walker) mapping(n *yaml.Node, t reflect.Type, at where, skip map[string]bool) bool {
	if !w.step(n, at) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		w.refuse(at, n, "%s", mismatch(n, t, nil))
		return false
	}
	if w.duplicates(n, at) {
		return false
	}
	var merge *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMerge(k) {
			merge = v
			continue
		}
		if isNull(resolve(k)) {
			continue
		}
		kv := reflect.New(t.Key())
		if err := k.Decode(kv.Interface()); err != nil {
			w.problem(at, k, "expected a key, got %s", shape(resolve(k)))
			continue
		}
		name := fmt.Sprint(kv.Elem().Interface())
		if skip != nil {
			if skip[name] {
				continue
			}
			skip[name] = true
		}
		child := at.mapKey(name)
		w.ps.nodes = append(w.ps.nodes, walked{k.Line, k.Column, child})
		w.ps.at[child.path] = w.at(k)
		w.walk(v, t.Elem(), child)
	}
	if merge != nil {
		w.merge(n, merge, t, at, skip)
	}
	return true
}

// merge walks the mappings a merge key (<<) brings in. The decoder gives
// up on the whole file when one is not a mapping.
func (w *walker) merge(parent, m *yaml.Node, t reflect.Type, at where, skip map[string]bool) {
	if skip == nil {
		skip = map[string]bool{}
		for i := 0; i+1 < len(parent.Content); i += 2 {
			if k := resolve(parent.Content[i]); k.Kind == yaml.ScalarNode && !isNull(k) {
				skip[k.Value] = true
			}
		}
	}
	var sources []*yaml.Node
	switch m.Kind {
	case yaml.MappingNode, yaml.AliasNode:
		sources = []*yaml.Node{m}
	case yaml.SequenceNode:
		sources = m.Content
	default:
		w.abort(at.key("<<"), m, "a merge takes a mapping or a list of mappings")
		return
	}
	for _, s := range sources {
		target := s
		if s.Kind == yaml.AliasNode {
			if w.active[s] {
				w.abort(at.key("<<"), s, "the anchor %q contains itself", s.Value)
				return
			}
			if s.Alias == nil {
				continue
			}
			target = s.Alias
		}
		if target.Kind != yaml.MappingNode {
			w.abort(at.key("<<"), s, "a merge takes a mapping or a list of mappings")
			return
		}
		if s.Kind == yaml.AliasNode {
			w.active[s] = true
			w.aliasDepth++
		}
		if deref(t).Kind() == reflect.Struct {
			w.structure(target, deref(t), at, skip)
		} else {
			w.mapping(target, deref(t), at, skip)
		}
		if s.Kind == yaml.AliasNode {
			delete(w.active, s)
			w.aliasDepth--
		}
	}
}

// list walks a sequence decoded into a slice.
func (w *walker) list(n *yaml.Node, t reflect.Type, at where) bool {
	if n.Kind != yaml.SequenceNode {
		w.refuse(at, n, "%s", mismatch(n, t, nil))
		return false
	}
	et := t.Elem()
	entry := deref(et).Kind() == reflect.Struct && !isLeaf(et)
	kept := 0
	for i, e := range n.Content {
		label := "\x00"
		if entry {
			label = labelOf(resolve(e), structInfo(deref(et)))
		}
		child := at.item(i, kept, entry, label)
		if w.walk(e, et, child) {
			w.ps.at[child.path] = w.at(e)
			kept++
		} else {
			// The decoder drops the item: the next one takes its index.
			delete(w.ps.reported, child.path)
		}
	}
	return true
}

// labelFields name a list item in validation's words, first found wins:
// platforms and IdPs by id, SPs by client_id, data scopes by scope.
var labelFields = []string{"id", "client_id", "scope"}

// labelOf is the value of the item's label field, "" when absent, or
// "\x00" when its type has none.
func labelOf(n *yaml.Node, info *typeInfo) string {
	if n.Kind != yaml.MappingNode {
		return "\x00"
	}
	for _, f := range labelFields {
		if _, ok := info.fields[f]; !ok {
			continue
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == f {
				if v := resolve(n.Content[i+1]); v.Kind == yaml.ScalarNode && !isNull(v) {
					return v.Value
				}
			}
		}
		return ""
	}
	return "\x00"
}

// typeInfo is what the decoder knows of a struct: its YAML field names.
type typeInfo struct {
	fields map[string]reflect.Type
	// names are the fields in declaration order, for suggestions.
	names []string
	// inlineMap is the value type of an ",inline" map, which takes every
	// other key.
	inlineMap reflect.Type
}

var typeInfos sync.Map

// structInfo reads the yaml tags as yaml.v3's getStructInfo does:
// exported fields, "-" skipped, the lower-cased Go name without a tag,
// inline structs flattened.
func structInfo(t reflect.Type) *typeInfo {
	if v, ok := typeInfos.Load(t); ok {
		return v.(*typeInfo)
	}
	info := &typeInfo{fields: map[string]reflect.Type{}}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.PkgPath != "" && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" && !strings.Contains(string(f.Tag), ":") {
			tag = string(f.Tag)
		}
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(opts, ","), "inline") {
			switch ft := f.Type; {
			case ft.Kind() == reflect.Map:
				info.inlineMap = ft.Elem()
			case deref(ft).Kind() == reflect.Struct:
				in := structInfo(deref(ft))
				for _, n := range in.names {
					info.fields[n] = in.fields[n]
					info.names = append(info.names, n)
				}
				if in.inlineMap != nil {
					info.inlineMap = in.inlineMap
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		info.fields[name] = f.Type
		info.names = append(info.names, name)
	}
	typeInfos.Store(t, info)
	return info
}

var (
	durationType      = reflect.TypeFor[Duration]()
	nodeType          = reflect.TypeFor[yaml.Node]()
	unmarshalerType   = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// isLeaf reports whether the decoder takes values of t whole: scalars,
// and types with their own unmarshaler.
func isLeaf(t reflect.Type) bool {
	b := deref(t)
	if b == nodeType || reflect.PointerTo(b).Implements(unmarshalerType) || reflect.PointerTo(b).Implements(textUnmarshalType) {
		return true
	}
	switch b.Kind() {
	case reflect.Struct, reflect.Slice, reflect.Map:
		return false
	}
	return true
}

// shape says in plain words what a node is.
func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value"
}

// mismatch says what was expected and what was found. A scalar is shown
// only where a scalar was expected (a number, a duration): elsewhere it
// could be a secret written at the wrong place.
func mismatch(n *yaml.Node, t reflect.Type, err error) string {
	r := resolve(n)
	want := describe(t)
	if want == "" {
		return cleanDecodeError(err)
	}
	got := shape(r)
	b := deref(t)
	if b == durationType && r.Kind == yaml.ScalarNode {
		return strconv.Quote(r.Value) + " is not " + want
	}
	if r.Kind == yaml.ScalarNode && isLeaf(b) && b.Kind() != reflect.String && b.Kind() != reflect.Interface {
		got = strconv.Quote(r.Value)
	}
	msg := "expected " + want + ", got " + got
	if r.Kind == yaml.ScalarNode && b.Kind() == reflect.Slice {
		msg += " (write [value], or one \"- value\" line per item)"
	}
	return msg
}

// describe names what a type takes in a file, or "" for a custom
// unmarshaler whose own error says it.
func describe(t reflect.Type) string {
	t = deref(t)
	if t == durationType {
		return "a duration like 30s or 10m"
	}
	if isLeaf(t) && (reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalType)) {
		return ""
	}
	switch t.Kind() {
	case reflect.String:
		return "a single value"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list" + ofPlural(t.Elem())
	case reflect.Map:
		return "a mapping of names to " + strings.TrimPrefix(ofPlural(t.Elem()), " of ")
	case reflect.Struct:
		names := structInfo(t).names
		if len(names) > 4 {
			names = append(names[:4:4], "...")
		}
		return "a mapping of fields (" + strings.Join(names, ", ") + ")"
	}
	return "a value"
}

func ofPlural(t reflect.Type) string {
	t = deref(t)
	switch {
	case t == durationType:
		return " of durations"
	case t.Kind() == reflect.String:
		return " of strings"
	case t.Kind() == reflect.Bool:
		return " of true/false values"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64:
		return " of numbers"
	case t.Kind() == reflect.Struct:
		return " of entries"
	case t.Kind() == reflect.Slice:
		return " of lists"
	case t.Kind() == reflect.Map:
		return " of mappings"
	}
	return " of values"
}

// goTypeName catches what the decoder says of Go types, for the rare
// message passed on from it.
var goTypeName = regexp.MustCompile(`\s+(in type|into)\s.*$`)

// yamlLine is the position prefix of the decoder's messages.
var yamlLine = regexp.MustCompile(`^(yaml: )?(unmarshal errors:\s*)?(line \d+: )?`)

// cleanDecodeError keeps what a decoder message says, without its
// position (the problem has its own) or a Go type name.
func cleanDecodeError(err error) string {
	if err == nil {
		return "cannot be read here"
	}
	msg := strings.TrimSpace(err.Error())
	msg = yamlLine.ReplaceAllString(msg, "")
	msg = strings.TrimSpace(goTypeName.ReplaceAllString(msg, ""))
	if msg == "" {
		return "cannot be read here"
	}
	return msg
}

// unknownField says a key is not a field here and which one was meant.
func unknownField(key string, known []string) string {
	if s := nearest(key, known); s != "" {
		return "unknown field, did you mean " + s + "?"
	}
	if len(known) == 0 {
		return "unknown field (this takes no fields)"
	}
	return "unknown field (known: " + strings.Join(known, ", ") + ")"
}

// suggest is the tail of a message about an unknown reference: the
// nearest known value when one is close, and the known values.
func suggest(word string, known []string) string {
	if len(known) == 0 {
		return " (none defined)"
	}
	list := known
	if len(list) > 12 {
		list = append(list[:12:12], fmt.Sprintf("and %d more", len(known)-12))
	}
	tail := " (known: " + strings.Join(list, ", ") + ")"
	if s := nearest(word, known); s != "" {
		return ": did you mean " + strconv.Quote(s) + "?" + tail
	}
	return tail
}

// nearest is the known word closest to word by edit distance, ignoring
// case, when it is close enough to be a typo: one edit for short words,
// up to three for long ones, or word being the start of it.
func nearest(word string, known []string) string {
	if word == "" {
		return ""
	}
	lw := strings.ToLower(word)
	n := utf8.RuneCountInString(lw)
	limit := max(1, min(3, n/3))
	best, bestD := "", limit+1
	for _, k := range known {
		lk := strings.ToLower(k)
		d := distance(lw, lk)
		if n >= 4 && d > limit && strings.HasPrefix(lk, lw) {
			d = limit
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	if bestD > limit || best == word {
		return ""
	}
	return best
}

// distance is the optimal-string-alignment edit distance: insertions,
// deletions, substitutions and swaps of two neighbours cost one each.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		// Long keys are not typos of field names; keep the cost bounded.
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// lineMap turns positions in the expanded text (what the YAML parser
// read) into positions in the file: a ${VAR} replaced by a longer value,
// or one with line breaks, shifts what follows it.
type lineMap struct {
	raw, exp     []byte
	subs         []subst
	rawLs, expLs []int
	rawInit      bool
}

// subst is one ${VAR} replaced: its byte ranges in the file and in the
// expanded text.
type subst struct{ rawStart, rawEnd, expStart, expEnd int }

// lineStarts are the byte offsets where lines begin, counting line breaks
// as the YAML parser does (\n, \r, \r\n, NEL, LS, PS).
func lineStarts(b []byte) []int {
	starts := []int{0}
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == '\r' && i+1 < len(b) && b[i+1] == '\n':
			size = 2
			starts = append(starts, i+size)
		case r == '\n' || r == '\r' || r == '\u0085' || r == '\u2028' || r == '\u2029':
			starts = append(starts, i+size)
		}
		i += size
	}
	return starts
}

// offset is the byte offset of a 1-based line and column (in characters)
// in b.
func offset(b []byte, starts []int, line, col int) int {
	if line < 1 {
		return 0
	}
	if line > len(starts) {
		return len(b)
	}
	off := starts[line-1]
	for c := 1; c < col && off < len(b); c++ {
		r, size := utf8.DecodeRune(b[off:])
		if r == '\n' || r == '\r' {
			break
		}
		off += size
	}
	return off
}

// lineCol is the 1-based line and column of a byte offset in b.
func lineCol(b []byte, starts []int, off int) pos {
	off = min(max(off, 0), len(b))
	i, found := slices.BinarySearch(starts, off)
	if !found {
		i--
	}
	return pos{line: i + 1, col: utf8.RuneCount(b[starts[i]:off]) + 1}
}

// pos maps a position of the expanded text to the file.
func (m *lineMap) pos(line, col int) pos {
	if m == nil || len(m.subs) == 0 || line < 1 {
		return pos{line, col}
	}
	if !m.rawInit {
		m.rawLs, m.expLs, m.rawInit = lineStarts(m.raw), lineStarts(m.exp), true
	}
	off := offset(m.exp, m.expLs, line, col)
	shift := 0
	for _, s := range m.subs {
		switch {
		case s.expEnd <= off:
			shift += (s.expEnd - s.expStart) - (s.rawEnd - s.rawStart)
		case s.expStart <= off:
			return lineCol(m.raw, m.rawLs, s.rawStart)
		}
	}
	return lineCol(m.raw, m.rawLs, off-shift)
}

// rawPos is the position of a byte offset of the file.
func (m *lineMap) rawPos(off int) pos {
	if !m.rawInit {
		m.rawLs, m.expLs, m.rawInit = lineStarts(m.raw), lineStarts(m.exp), true
	}
	return lineCol(m.raw, m.rawLs, off)
}
