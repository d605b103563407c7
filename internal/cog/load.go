package cog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
)

//go:embed data/communes.tsv.gz
var communesGz []byte

//go:embed data/countries.tsv
var countriesTSV string

// key is a commune code as a value, so the map holds no pointers for the
// garbage collector to scan.
type key [5]byte

// span is one period of a code. Names live in one shared string; a period
// points into it.
type span struct {
	from, until int32 // days since 1970-01-01; from is MinInt32 before the history, until MaxInt32 while current
	nameOff     uint32
	nameLen     uint8
	kind        Kind
}

// run locates a code's periods in spans.
type run struct {
	off uint32
	n   uint16
}

type tableSet struct {
	communes  map[key]run
	spans     []span
	names     string
	countries map[string]Country
	byISO     map[string]string
}

// tables decodes the embedded data once, on first use. The data is part of
// the binary and checked by the tests, so a decoding error is a broken
// build, not a bad input: it panics with the reason.
var tables = sync.OnceValue(func() *tableSet {
	t, err := decode(communesGz, countriesTSV)
	if err != nil {
		panic("cog: embedded tables: " + err.Error())
	}
	return t
})

func communeKey(code string) (key, bool) {
	var k key
	if len(code) != len(k) {
		return k, false
	}
	copy(k[:], code)
	return k, true
}

func (t *tableSet) commune(code string, s *span) Commune {
	c := Commune{
		Code:       code,
		Name:       t.names[s.nameOff : s.nameOff+uint32(s.nameLen)],
		Department: department(code),
		Kind:       s.kind,
	}
	if s.from != math.MinInt32 {
		c.From = dateOf(s.from)
	}
	if s.until != math.MaxInt32 {
		c.Until = dateOf(s.until)
	}
	return c
}

// department derives the department from the code: its first two
// characters, three overseas (97X, 98X).
func department(code string) string {
	if strings.HasPrefix(code, "97") || strings.HasPrefix(code, "98") {
		return code[:3]
	}
	return code[:2]
}

var kindOf = map[string]Kind{"C": KindCommune, "D": KindDelegated, "A": KindAssociated, "R": KindArrondissement}

func decode(gz []byte, countries string) (*tableSet, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("communes: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("communes: %w", err)
	}
	t := &tableSet{communes: make(map[key]run, 40000), spans: make([]span, 0, bytes.Count(raw, []byte{'\n'}))}
	var names strings.Builder
	nameAt := map[string]uint32{} // the same label is stored once
	sc := bufio.NewScanner(bytes.NewReader(raw))
	line := 0
	var prev key
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("communes line %d: %d fields", line, len(f))
		}
		k, ok := communeKey(f[0])
		kind := kindOf[f[3]]
		if !ok || kind == 0 || f[4] == "" || len(f[4]) > math.MaxUint8 {
			return nil, fmt.Errorf("communes line %d: malformed", line)
		}
		s := span{from: math.MinInt32, until: math.MaxInt32, kind: kind}
		if f[1] != "" {
			if s.from, err = parseDay(f[1]); err != nil {
				return nil, fmt.Errorf("communes line %d: %w", line, err)
			}
		}
		if f[2] != "" {
			if s.until, err = parseDay(f[2]); err != nil {
				return nil, fmt.Errorf("communes line %d: %w", line, err)
			}
		}
		if s.from >= s.until {
			return nil, fmt.Errorf("communes line %d: ends before it starts", line)
		}
		off, ok := nameAt[f[4]]
		if !ok {
			off = uint32(names.Len())
			names.WriteString(f[4])
			nameAt[f[4]] = off
		}
		s.nameOff, s.nameLen = off, uint8(len(f[4]))
		// The file is sorted by code: each code's periods are contiguous.
		r, seen := t.communes[k]
		switch {
		case !seen:
			r = run{off: uint32(len(t.spans))}
		case k != prev:
			return nil, fmt.Errorf("communes line %d: code %s not contiguous", line, f[0])
		case r.n == math.MaxUint16:
			return nil, fmt.Errorf("communes line %d: too many periods", line)
		}
		r.n++
		t.communes[k] = r
		t.spans = append(t.spans, s)
		prev = k
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("communes: %w", err)
	}
	t.names = names.String()

	t.countries = map[string]Country{}
	t.byISO = map[string]string{}
	for i, text := range strings.Split(strings.TrimSuffix(countries, "\n"), "\n") {
		if strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 4 || len(f[0]) != 5 || !strings.HasPrefix(f[0], "99") || f[1] == "" {
			return nil, fmt.Errorf("countries line %d: malformed", i+1)
		}
		t.countries[f[0]] = Country{Code: f[0], Name: f[1], ISO: f[2]}
		isos := []string{}
		if f[2] != "" {
			isos = append(isos, f[2])
		}
		if f[3] != "" {
			isos = append(isos, strings.Split(f[3], ",")...)
		}
		for _, iso := range isos {
			if len(iso) != 2 || t.byISO[iso] != "" {
				return nil, fmt.Errorf("countries line %d: bad or repeated ISO code", i+1)
			}
			t.byISO[iso] = f[0]
		}
	}
	return t, nil
}

func parseDay(s string) (int32, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, err
	}
	return dayOf(d), nil
}
