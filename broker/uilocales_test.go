package broker_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sesame-id/sesame/broker/teststack"
)

// The language of a login reaches the IdP's own page: ui_locales is
// passed on with the authorization request (OIDC Core 3.1.2.1).
func TestUILocalesReachTheIdP(t *testing.T) {
	for _, c := range []struct{ ui, want string }{{"en", "en"}, {"", "fr"}} {
		r := newRig(t, nil, false)
		p := authParams()
		if c.ui != "" {
			p.Set("ui_locales", c.ui)
		}
		to := r.toIdP(t, p, "laposte")
		if got := to.Query().Get("ui_locales"); got != c.want {
			t.Errorf("ui_locales %q: the IdP is asked ui_locales=%q, want %q", c.ui, got, c.want)
		}
		resp, page := teststack.Get(t, r.Browser, to.String())
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<html lang="`+c.want+`"`) {
			t.Errorf("ui_locales %q: the IdP's page is not in %s (%d)", c.ui, c.want, resp.StatusCode)
		}
	}
}
