package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

// A log sink writes one JSON line per event with the fields set, and
// nothing for the empty ones.
func TestLogSink(t *testing.T) {
	var buf bytes.Buffer
	var got []Event
	s := Sinks{Log{slog.New(slog.NewJSONHandler(&buf, nil))}, recorder(func(e Event) { got = append(got, e) })}
	s.Record(context.Background(), Event{Name: Introspection, Step: IntrospectionStep, Outcome: "ok", SP: "sp", DataProvider: "dp", Scopes: []string{"a", "b"}})
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q", buf.String())
	}
	if line["msg"] != "audit" || line["event"] != Introspection || line["step"] != float64(IntrospectionStep) || line["sp"] != "sp" || line["data_provider"] != "dp" {
		t.Fatalf("line %v", line)
	}
	if _, ok := line["idp"]; ok {
		t.Error("an empty field was written")
	}
	if len(got) != 1 || got[0].Name != Introspection {
		t.Fatalf("second sink got %v", got)
	}
}

type recorder func(Event)

func (r recorder) Record(_ context.Context, e Event) { r(e) }
