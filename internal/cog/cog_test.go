package cog

import (
	"bytes"
	"compress/gzip"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestCommuneAt(t *testing.T) {
	for _, tc := range []struct {
		name, code, date string
		ok               bool
		want             string // name
		kind             Kind
		dep              string
	}{
		{"no such code", "00000", "1980-01-01", false, "", 0, ""},
		{"a country code is no commune", "99999", "1980-01-01", false, "", 0, ""},
		{"short", "7510", "1980-01-01", false, "", 0, ""},
		{"empty", "", "1980-01-01", false, "", 0, ""},
		{"letters", "ABCDE", "1980-01-01", false, "", 0, ""},
		{"current commune", "21231", "1949-07-08", true, "Dijon", KindCommune, "21"},
		{"current commune today", "21231", "2025-06-01", true, "Dijon", KindCommune, "21"},
		{"Paris arrondissement", "75107", "1962-08-24", true, "Paris 7e Arrondissement", KindArrondissement, "75"},
		{"Lyon arrondissement", "69381", "1962-08-24", true, "Lyon 1er Arrondissement", KindArrondissement, "69"},
		{"Marseille arrondissement", "13216", "1990-01-01", true, "Marseille 16e Arrondissement", KindArrondissement, "13"},
		// Val-de-Reuil was created on 1981-09-28 under a new code.
		{"created after the birth", "27701", "1950-03-01", false, "", 0, ""},
		{"the day before its creation", "27701", "1981-09-27", false, "", 0, ""},
		{"on its creation day", "27701", "1981-09-28", true, "Vaudreuil-Ex-Ensemble Urbain", KindCommune, "27"},
		{"after its renaming", "27701", "1990-01-01", true, "Val-de-Reuil", KindCommune, "27"},
		// Annecy-le-Vieux became a commune déléguée of Annecy on 2017-01-01.
		{"merged since the birth", "74011", "1960-05-04", true, "Annecy-le-Vieux", KindCommune, "74"},
		{"delegated after the merger", "74011", "2018-01-01", true, "Annecy-le-Vieux", KindDelegated, "74"},
		// Voisinlieu was absorbed by Beauvais on 1943-02-19.
		{"absorbed before the birth", "60696", "1950-01-01", false, "", 0, ""},
		{"absorbed after the birth", "60696", "1943-02-18", true, "Voisinlieu", KindCommune, "60"},
		// Nonsard (55386) joined Lamarche in 1973; the code names the
		// merged commune since 1983.
		{"code of one commune", "55386", "1960-01-01", true, "Nonsard", KindCommune, "55"},
		{"same code, associated", "55386", "1975-01-01", true, "Nonsard", KindAssociated, "55"},
		{"same code, another commune", "55386", "1990-01-01", true, "Nonsard-Lamarche", KindCommune, "55"},
		// Corsica was renumbered on 1976-01-01: the new code also stands
		// for births before, the old one only until then.
		{"Corsican code before 1976", "2A004", "1960-01-01", true, "Ajaccio", KindCommune, "2A"},
		{"Corsican code before the history", "2A004", "1900-01-01", true, "Ajaccio", KindCommune, "2A"},
		{"old Corsican code before 1976", "20004", "1960-01-01", true, "Ajaccio", KindCommune, "20"},
		{"old Corsican code after 1976", "20004", "1980-01-01", false, "", 0, ""},
		{"Seine renumbered in 1968", "92012", "1960-01-01", true, "Boulogne-Billancourt", KindCommune, "92"},
		{"old Seine code after 1968", "75012", "1970-01-01", false, "", 0, ""},
		{"before the history", "01001", "1900-01-01", true, "L'Abergement-Clémenciat", KindCommune, "01"},
		{"overseas", "97411", "2000-02-29", true, "Saint-Denis", KindCommune, "974"},
		{"Mayotte", "97611", "2003-05-05", true, "Mamoudzou", KindCommune, "976"},
		{"Saint-Barthélemy before 2007", "97123", "1990-01-01", true, "Saint-Barthélemy", KindCommune, "971"},
		{"Saint-Barthélemy's old code after 2007", "97123", "2010-01-01", false, "", 0, ""},
		{"Saint-Barthélemy as a collectivité", "97701", "2010-01-01", true, "Saint-Barthélemy", KindCommune, "977"},
		// Béon became a commune déléguée of Culoz-Béon on 2023-01-01, a
		// change known from the yearly COGs only.
		{"merged after 2019", "01039", "1970-01-01", true, "Béon", KindCommune, "01"},
		{"delegated after 2019", "01039", "2024-01-01", true, "Béon", KindDelegated, "01"},
		{"commune nouvelle keeps its chef-lieu's code", "01138", "2024-01-01", true, "Culoz-Béon", KindCommune, "01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := CommuneAt(tc.code, day(tc.date))
			if ok && !KnownCommune(tc.code) {
				t.Error("found on a date but not known")
			}
			if ok != tc.ok {
				t.Fatalf("CommuneAt(%q, %s) ok = %v, want %v (%+v)", tc.code, tc.date, ok, tc.ok, c)
			}
			if !ok {
				if c != (Commune{}) || CommuneName(tc.code, day(tc.date)) != "" {
					t.Errorf("refused code returned %+v", c)
				}
				return
			}
			if c.Name != tc.want || c.Kind != tc.kind || c.Department != tc.dep || c.Code != tc.code {
				t.Errorf("got %+v (%s), want %q %s in %s", c, c.Kind, tc.want, tc.kind, tc.dep)
			}
			if CommuneName(tc.code, day(tc.date)) != tc.want {
				t.Errorf("CommuneName disagrees with CommuneAt")
			}
			d := day(tc.date)
			if (!c.From.IsZero() && d.Before(c.From)) || (!c.Until.IsZero() && !d.Before(c.Until)) {
				t.Errorf("period %s..%s does not cover %s", c.From, c.Until, tc.date)
			}
		})
	}
}

// The date's own calendar day counts, whatever its time zone.
func TestCommuneAtTimeZone(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	late := time.Date(1981, time.September, 28, 0, 30, 0, 0, paris) // 1981-09-27 in UTC
	if _, ok := CommuneAt("27701", late); !ok {
		t.Error("the birth day in its own zone was not used")
	}
}

func TestCommuneHistory(t *testing.T) {
	h := CommuneHistory("27701")
	if len(h) != 2 || h[0].Name != "Vaudreuil-Ex-Ensemble Urbain" || !h[0].From.Equal(day("1981-09-28")) ||
		!h[0].Until.Equal(day("1984-11-19")) || h[1].Name != "Val-de-Reuil" || !h[1].Until.IsZero() {
		t.Errorf("history of 27701: %+v", h)
	}
	if len(CommuneHistory("00000")) != 0 || KnownCommune("00000") || KnownCommune("7510") {
		t.Error("history of an unknown code")
	}
	if !KnownCommune("27701") || !KnownCommune("20004") {
		t.Error("a code that existed at some time is unknown")
	}
	if h := CommuneHistory("01001"); len(h) != 1 || !h[0].From.IsZero() {
		t.Errorf("01001 existed at the start of the history: %+v", h)
	}
}

func TestCountries(t *testing.T) {
	for _, tc := range []struct {
		code string
		ok   bool
		name string
		iso  string
	}{
		{"99100", true, "FRANCE", "FR"},
		{"99109", true, "ALLEMAGNE", "DE"},
		{"99134", true, "ESPAGNE", "ES"},
		{"99350", true, "MAROC", "MA"},
		{"99404", true, "ETATS-UNIS", "US"},
		{"99132", true, "ROYAUME-UNI", "GB"},
		{"99141", true, "REPUBLIQUE DEMOCRATIQUE ALLEMANDE", ""}, // a former country
		{"99425", true, "TERRITOIRES DU ROYAUME-UNI AUX ANTILLES", ""},
		{"99999", false, "", ""},
		{"99000", false, "", ""},
		{"12345", false, "", ""},
		{"75107", false, "", ""},
		{"", false, "", ""},
	} {
		c, ok := LookupCountry(tc.code)
		if ok != tc.ok || c.Name != tc.name || c.ISO != tc.iso || (ok && c.Code != tc.code) {
			t.Errorf("LookupCountry(%q) = %+v, %v; want %q %q %v", tc.code, c, ok, tc.name, tc.iso, tc.ok)
		}
		if at, okAt := CountryAt(tc.code, day("1960-01-01")); at != c || okAt != ok {
			t.Errorf("CountryAt(%q) disagrees with LookupCountry", tc.code)
		}
		if CountryName(tc.code) != tc.name {
			t.Errorf("CountryName(%q) = %q", tc.code, CountryName(tc.code))
		}
	}
	for iso, want := range map[string]string{"FR": "99100", "DE": "99109", "GB": "99132", "GG": "99132", "JE": "99132", "AW": "99135", "BM": "99425", "XK": "99157"} {
		if c, ok := CountryByISO(iso); !ok || c.Code != want {
			t.Errorf("CountryByISO(%q) = %+v, %v; want %s", iso, c, ok, want)
		}
	}
	for _, iso := range []string{"", "XX", "de", "GP", "DEU"} {
		if c, ok := CountryByISO(iso); ok {
			t.Errorf("CountryByISO(%q) = %+v", iso, c)
		}
	}
	// Every ISO code of a country leads back to it (the eIDAS mapping
	// goes both ways).
	n := 0
	for code, c := range tables().countries {
		if c.ISO == "" {
			continue
		}
		n++
		if back, ok := CountryByISO(c.ISO); !ok || back.Code != code {
			t.Errorf("%s -> %s -> %+v", code, c.ISO, back)
		}
	}
	if n < 190 {
		t.Errorf("only %d countries with an ISO code", n)
	}
}

// The embedded tables decode, hold what a current COG holds, and every row
// is well formed; decode refuses damaged data.
func TestTables(t *testing.T) {
	tb := tables()
	current := 0
	for k, r := range tb.communes {
		for _, s := range tb.spans[r.off : r.off+uint32(r.n)] {
			if s.until == maxDay && s.kind == KindCommune {
				current++
			}
			if s.from >= s.until {
				t.Errorf("%s: empty period", k)
			}
		}
	}
	// 34,875 communes and 94 municipalities of the collectivités
	// d'outre-mer in the COG 2026.
	if current < 34000 || current > 36000 {
		t.Errorf("%d current communes", current)
	}
	if len(tb.countries) < 230 {
		t.Errorf("%d countries", len(tb.countries))
	}

	raw, err := io.ReadAll(must(gzip.NewReader(bytes.NewReader(communesGz))))
	if err != nil {
		t.Fatal(err)
	}
	zip := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	for name, bad := range map[string]struct{ communes, countries string }{
		"not gzip":        {"", countriesTSV},
		"short row":       {"01001\t\t\tC\n", countriesTSV},
		"bad kind":        {"01001\t\t\tX\tA\n", countriesTSV},
		"bad date":        {"01001\t1999-02-30\t\tC\tA\n", countriesTSV},
		"backwards":       {"01001\t2000-01-01\t1999-01-01\tC\tA\n", countriesTSV},
		"not contiguous":  {"01001\t\t\tC\tA\n01002\t\t\tC\tB\n01001\t\t\tD\tA\n", countriesTSV},
		"bad country":     {string(raw), "9910\tFRANCE\tFR\t\n"},
		"repeated ISO":    {string(raw), "99100\tFRANCE\tFR\t\n99101\tX\tFR\t\n"},
		"bad ISO":         {string(raw), "99100\tFRANCE\tFRA\t\n"},
		"country no name": {string(raw), "99100\t\tFR\t\n"},
	} {
		gz := zip(bad.communes)
		if name == "not gzip" {
			gz = []byte("plain")
		}
		if _, err := decode(gz, bad.countries); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := decode(zip(string(raw)), countriesTSV); err != nil {
		t.Errorf("re-zipped table: %v", err)
	}
}

const maxDay = 1<<31 - 1

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func FuzzLookups(f *testing.F) {
	for _, s := range []struct {
		code string
		day  int32
	}{
		{"75107", -2700}, {"27701", 4288}, {"2A004", -25567}, {"00000", 0}, {"99100", 20000}, {"", 0},
		{"74011", 18000}, {"\xff\xfe\x00ab", 1}, {"55386", 1 << 30}, {"01001", -1 << 30},
	} {
		f.Add(s.code, s.day)
	}
	f.Fuzz(func(t *testing.T, code string, d int32) {
		date := dateOf(d)
		c, ok := CommuneAt(code, date)
		if ok {
			if c.Code != code || c.Name == "" || c.Kind == 0 || !strings.HasPrefix(code, c.Department) {
				t.Errorf("CommuneAt(%q, %s) = %+v", code, date, c)
			}
			if (!c.From.IsZero() && date.Before(c.From)) || (!c.Until.IsZero() && !date.Before(c.Until)) {
				t.Errorf("CommuneAt(%q, %s) = %+v, outside its period", code, date, c)
			}
		} else if c != (Commune{}) {
			t.Errorf("refused with %+v", c)
		}
		if n := CommuneName(code, date); (n != "") != ok {
			t.Errorf("CommuneName(%q) = %q, CommuneAt ok %v", code, n, ok)
		}
		if len(CommuneHistory(code)) > 0 != KnownCommune(code) || (ok && !KnownCommune(code)) {
			t.Errorf("KnownCommune(%q) disagrees", code)
		}
		for _, h := range CommuneHistory(code) {
			if h.Code != code || h.Name == "" {
				t.Errorf("history %+v", h)
			}
		}
		country, ok := LookupCountry(code)
		if ok != (country.Code == code && country.Name != "") {
			t.Errorf("LookupCountry(%q) = %+v, %v", code, country, ok)
		}
		if c, ok := CountryByISO(code); ok && c.ISO != code {
			if back, _ := LookupCountry(c.Code); back != c {
				t.Errorf("CountryByISO(%q) = %+v", code, c)
			}
		}
	})
}

func BenchmarkCommuneAt(b *testing.B) {
	tables()
	d := day("1962-08-24")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := CommuneAt("74011", d); !ok {
			b.Fatal("refused")
		}
	}
}

// BenchmarkDecode measures the first use: decoding the embedded tables,
// and the heap they keep (retained-B).
func BenchmarkDecode(b *testing.B) {
	var before, after runtime.MemStats
	var keep *tableSet
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		keep = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		t, err := decode(communesGz, countriesTSV)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		keep = t
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.StartTimer()
	}
	b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "retained-B")
	runtime.KeepAlive(keep)
}
