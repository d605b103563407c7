package e2e

import (
	"strings"
	"testing"
)

// TestE2EDataExchange is "zéro justificatif" on real processes and a
// private Redis: a login at the demo SP with data scopes, then the demo SP
// fetches the tax and family data from both mock data providers over
// HTTP with its access token; each provider introspects the token at the
// broker (its log shows it) and answers what the scopes cover. On "+" the
// same with DPoP-bound tokens.
func TestE2EDataExchange(t *testing.T) {
	st := startStack(t, stackOptions{})
	t.Run("standard", func(t *testing.T) {
		before := st.logCount("providers", "dataprovider: call")
		res := demoSPLogin(t, st, newAgent(t), "impots", "angela-dubois")
		checkDataShown(t, res.Me)
		if n := st.logCount("providers", "dataprovider: call") - before; n < 3 {
			t.Errorf("the data providers logged %d calls, want one per endpoint (3)", n)
		}
		log := st.logText("providers")
		if !strings.Contains(log, "dp=dgfip") || !strings.Contains(log, "dp=cnaf") || !strings.Contains(log, st.Broker+": active") {
			t.Errorf("the providers' log does not show the introspection at the broker:\n%s", tail(log, 20))
		}
	})
	t.Run("plus", func(t *testing.T) {
		me := demoSPPlusLogin(t, st, newAgent(t), "eidas3", "france-identite", "angela-dubois")
		checkDataShown(t, me)
		if !strings.Contains(st.logText("providers"), "scheme=DPoP") {
			t.Error("no DPoP call reached the data providers on +")
		}
	})
}

// checkDataShown reads the demo SP's pre-filled form: figures from the
// DGFiP and from the CNAF.
func checkDataShown(t *testing.T, me *page) {
	t.Helper()
	if !strings.Contains(me.body, "Démarche pré-remplie par les administrations") {
		t.Error("demo SP /me has no pre-filled form")
	}
	// The reference tax income of the last two years, the tax shares, the
	// family quotient and the household, each field from its source.
	for _, id := range []string{"dgfip-rfr-2025", "dgfip-rfr-2024", "dgfip-nbpart-2025", "cnaf-qf", "cnaf-allocataire-1"} {
		if !me.has(id) {
			t.Errorf("demo SP /me has no field %s", id)
		}
	}
	for _, src := range []string{"Source&nbsp;: DGFiP", "Source&nbsp;: CNAF"} {
		if !strings.Contains(me.body, src) {
			t.Errorf("demo SP /me does not name its source %q", src)
		}
	}
	for _, bad := range []string{"ne vous connaît pas", "ne répond pas"} {
		if strings.Contains(me.body, bad) {
			t.Errorf("demo SP /me says %q: %s", bad, excerpt(me.body))
		}
	}
}

// logText is the whole log of the process name.
func (s *stack) logText(name string) string {
	for _, p := range s.procs {
		if p.name == name {
			return readFile(p.log)
		}
	}
	return ""
}
