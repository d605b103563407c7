package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/store/memstore"
)

func TestWithEIDASNode(t *testing.T) {
	idps := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("mock IdPs")) })
	cfg := &config.Providers{BaseURL: "http://localhost:9000"}
	if h, _, err := withEIDASNode(cfg, idps, nil); err != nil || h == nil {
		t.Fatalf("no eidas_node: %v", err)
	}
	cfg.EIDASNode = &config.EIDASNode{
		BaseURL:                 "http://localhost:9000/eidas-node",
		ConnectorRequestSecret:  strings.Repeat("a", 32),
		ConnectorResponseSecret: strings.Repeat("b", 32),
		ProxyRequestSecret:      strings.Repeat("c", 32),
		ProxyResponseSecret:     strings.Repeat("d", 32),
		ConnectorResponseURLs:   map[string]string{"*": "http://localhost:8000/eidas/connector/response"},
		ProxyRequestURL:         "http://localhost:8000/eidas/proxy/request",
	}
	if _, _, err := withEIDASNode(cfg, idps, nil); err == nil || !strings.Contains(err.Error(), "redis") {
		t.Fatalf("no store: %v", err)
	}
	st := memstore.New()
	defer st.Close()
	h, closeNode, err := withEIDASNode(cfg, idps, st)
	if err != nil {
		t.Fatal(err)
	}
	defer closeNode()
	for path, want := range map[string]string{"/eidas-node/": "Nœud eIDAS de test", "/": "mock IdPs", "/idp1/authorize": "mock IdPs"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d, lacks %q", path, rec.Code, want)
		}
	}
}
