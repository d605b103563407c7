package config

import (
	"strings"
	"testing"
)

// broker.pprof is served on the metrics listener: without one it is an
// error naming both, with one it is kept.
func TestPprofNeedsMetricsListen(t *testing.T) {
	_, err := Parse("x.yaml", []byte(minimal+"  pprof: true\n"))
	if err == nil || !strings.Contains(err.Error(), "broker: pprof") || !strings.Contains(err.Error(), "metrics_listen") {
		t.Errorf("pprof without metrics_listen: %v, want an error naming broker: pprof and metrics_listen", err)
	}
	c, err := Parse("x.yaml", []byte(minimal+"  pprof: true\n  metrics_listen: 127.0.0.1:9090\n"))
	if err != nil || !c.Broker.Pprof {
		t.Errorf("pprof with metrics_listen: %v, pprof %v", err, c != nil && c.Broker.Pprof)
	}
}
