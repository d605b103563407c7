package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// sesameKeys runs `sesame keys ARGS...` and returns its output.
func sesameKeys(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(sesameBin, append([]string{"keys"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("sesame keys %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// publishedKids are the kids of a platform's /jwks.
func publishedKids(t *testing.T, issuer string) []string {
	t.Helper()
	resp, err := http.Get(issuer + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

func (s *stack) proc(name string) *proc {
	for _, p := range s.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

var nextKidRE = regexp.MustCompile(`ES256: (\S+) is next`)

// The real binary signs from a key directory made by `sesame keys init`;
// `sesame keys rotate` prepares a next key, which SIGHUP publishes without
// a restart; it signs once its time has come, and the id_tokens verify
// with go-oidc throughout. A broken manifest at the next SIGHUP is
// refused, logged, and logins go on with the keys in use.
func TestE2EKeyRotationSIGHUP(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if out := sesameKeys(t, "init", dir); !strings.Contains(out, "ES256: ") || !strings.Contains(out, "RS256: ") {
		t.Fatalf("keys init: %s", out)
	}
	st := startStack(t, stackOptions{KeysDir: dir})
	broker := st.proc("broker")
	login := func(step string) string {
		t.Helper()
		r := newRP(t, st, demoSPID, oauth2.AuthStyleInHeader, "openid", "identite_pivot")
		start := time.Now()
		code, _ := r.login(t, newAgent(t), "impots", "angela-dubois", loginHooks{})
		tok, err := r.exchange(t, code)
		if err != nil {
			t.Fatalf("%s: exchange: %v", step, err)
		}
		r.verifyIDToken(t, tok, start)
		kid, _ := jwtHeader(t, tok.Extra("id_token").(string))["kid"].(string)
		t.Logf("%s: id_token signed by %s, verified by go-oidc", step, kid)
		return kid
	}
	first := login("after init")

	out := sesameKeys(t, "rotate", dir, "-lead", "3s", "-keep", "1h")
	m := nextKidRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keys rotate: %s", out)
	}
	next := m[1]
	if strings.Contains(strings.Join(publishedKids(t, st.Broker), " "), next) {
		t.Fatal("next key published before any reload (signing_keys_reload is 1h)")
	}
	reloaded := st.logCount("broker", "signing keys reloaded")
	if err := broker.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !st.waitLog("broker", "signing keys reloaded", reloaded) {
		t.Fatalf("no reload logged after SIGHUP:\n%s", tail(readFile(broker.log), 20))
	}
	// A 3s lead is shorter than the 1s max-age plus the 1h reload
	// period: the broker warns that an SP's cache may miss the key.
	if !strings.Contains(readFile(broker.log), "a next key signs sooner than SPs' caches of /jwks are sure to hold it") {
		t.Errorf("no warning of the short lead:\n%s", tail(readFile(broker.log), 5))
	}
	if kids := strings.Join(publishedKids(t, st.Broker), " "); !strings.Contains(kids, next) || !strings.Contains(kids, first) {
		t.Fatalf("after SIGHUP /jwks has %s, want %s (next) and %s", kids, next, first)
	}
	if kid := login("next key published, not yet signing"); kid != first {
		t.Fatalf("signed by %s before the next key's time, want %s", kid, first)
	}
	// activate_at is rounded up to the second: read it, do not guess.
	var manifest struct {
		Keys []struct {
			Kid        string    `json:"kid"`
			ActivateAt time.Time `json:"activate_at"`
		} `json:"keys"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	for _, k := range manifest.Keys {
		if k.Kid == next {
			time.Sleep(time.Until(k.ActivateAt))
		}
	}
	if kid := login("after the next key's activate_at"); kid != next {
		t.Fatalf("signed by %s, want the next key %s", kid, next)
	}

	// A broken manifest: the reload fails, says why, and the keys stay.
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"version":1,"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	failed := st.logCount("broker", "reload failed")
	if err := broker.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !st.waitLog("broker", "reload failed", failed) {
		t.Fatalf("no failed reload logged:\n%s", tail(readFile(broker.log), 20))
	}
	if !strings.Contains(readFile(broker.log), "the manifest lists no key") {
		t.Errorf("the failed reload does not say why:\n%s", tail(readFile(broker.log), 5))
	}
	if kid := login("after a failed reload"); kid != next {
		t.Fatalf("signed by %s after a failed reload, want %s", kid, next)
	}
}
