package eidasnode

import (
	"net/url"
	"testing"
	"time"

	"github.com/sesame-id/sesame/internal/eidas/light"
	"github.com/sesame-id/sesame/internal/store/memstore"
)

// FuzzEndpoints posts arbitrary forms to every POST endpoint of the node,
// over real HTTP: whatever arrives, the answer is a page below 500 (post
// fails the test on a 5xx).
func FuzzEndpoints(f *testing.F) {
	st := memstore.New()
	f.Cleanup(func() { _ = st.Close() })
	h := newHarness(f, st)
	good := h.connReq.Make(light.NewID(), time.Now())
	for _, s := range []string{good, "", "%", "login=x&scenario=success", "country=BE&loa=http://eidas.europa.eu/LoA/low&attribute=x"} {
		f.Add(uint8(0), s)
		f.Add(uint8(1), s)
	}
	paths := []string{"/SpecificConnectorRequest", "/idp", "/sp", "/SpecificProxyServiceResponse"}
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		form, err := url.ParseQuery(raw)
		if err != nil {
			form = url.Values{"token": {raw}}
		}
		h.t = t
		h.post(paths[int(which)%len(paths)], form)
	})
}
