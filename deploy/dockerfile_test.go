package deploy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
	stage     int // index of the FROM it belongs to
}

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var list []instruction
	stage := -1
	var cur string
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		list = append(list, instruction{cmd, strings.TrimSpace(args), stage})
		cur = ""
	}
	return list
}

// execForm decodes an exec-form (JSON array) argument list; a shell-form
// one would need /bin/sh, which the final image does not have.
func execForm(t *testing.T, what, args string) []string {
	t.Helper()
	var list []string
	if err := json.Unmarshal([]byte(args), &list); err != nil {
		t.Fatalf("Dockerfile: %s %s: not the exec form (a JSON array); the image has no shell", what, args)
	}
	return list
}

// The HEALTHCHECK command of the image, the contract with cmd/sesame.
var healthcheck = []string{"/sesame", "healthcheck", "http://127.0.0.1:8000/healthz"}

// TestDockerfile: multi-stage, a static binary, a final image with no
// shell, a non-root user, a health check on the standard platform's
// liveness endpoint as the chart and the production example place it.
func TestDockerfile(t *testing.T) {
	ins := readDockerfile(t)
	var froms []instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			froms = append(froms, in)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a final one", len(froms))
	}
	final := len(froms) - 1
	build := froms[0]
	if !strings.HasPrefix(build.args, "golang:") || !strings.HasSuffix(build.args, " AS build") {
		t.Errorf("Dockerfile: first stage %q: want golang:... AS build", build.args)
	}
	base := froms[final].args
	if !regexp.MustCompile(`^gcr\.io/distroless/static(-debian\d+)?:nonroot$`).MatchString(base) && base != "scratch" {
		t.Errorf("Dockerfile: final image %q: want distroless static nonroot (no shell) or scratch", base)
	}
	goVersion := ""
	for _, in := range ins {
		if in.cmd == "ARG" && strings.HasPrefix(in.args, "GO_VERSION=") {
			goVersion = strings.TrimPrefix(in.args, "GO_VERSION=")
		}
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod); m == nil || string(m[1]) != goVersion {
		t.Errorf("Dockerfile: GO_VERSION %q, go.mod asks go %s", goVersion, m[1])
	}
	var built, copied bool
	var user, entry, cmd, hc []string
	var expose []string
	for _, in := range ins {
		switch {
		case in.cmd == "RUN" && in.stage == final:
			t.Errorf("Dockerfile: RUN %s in the final stage: it has no shell to run it", in.args)
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			built = true
			for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "./cmd/sesame"} {
				if !strings.Contains(in.args, want) {
					t.Errorf("Dockerfile: go build lacks %s: %s", want, in.args)
				}
			}
		case in.cmd == "COPY" && in.stage == final:
			if f := strings.Fields(in.args); len(f) == 3 && f[0] == "--from=build" && f[2] == "/sesame" {
				copied = true
			}
		case in.cmd == "USER" && in.stage == final:
			user = strings.Split(in.args, ":")
		case in.cmd == "ENTRYPOINT" && in.stage == final:
			entry = execForm(t, "ENTRYPOINT", in.args)
		case in.cmd == "CMD" && in.stage == final:
			cmd = execForm(t, "CMD", in.args)
		case in.cmd == "EXPOSE" && in.stage == final:
			expose = strings.Fields(in.args)
		case in.cmd == "HEALTHCHECK" && in.stage == final:
			_, after, ok := strings.Cut(in.args, "CMD ")
			if !ok {
				t.Fatalf("Dockerfile: HEALTHCHECK %s has no CMD", in.args)
			}
			hc = execForm(t, "HEALTHCHECK CMD", after)
		}
	}
	if !built || !copied {
		t.Errorf("Dockerfile: want a go build in the build stage and its binary copied to /sesame (built %v, copied %v)", built, copied)
	}
	if len(user) == 0 {
		t.Error("Dockerfile: no USER in the final stage")
	}
	for _, id := range user {
		if n, err := strconv.Atoi(id); err != nil || n == 0 {
			t.Errorf("Dockerfile: USER %v: want a numeric non-root uid:gid, which runAsNonRoot can check", user)
		}
	}
	if !slices.Equal(entry, []string{"/sesame"}) || len(cmd) == 0 || cmd[0] != "broker" {
		t.Errorf("Dockerfile: ENTRYPOINT %q CMD %q: want /sesame and a broker command", entry, cmd)
	}
	if !slices.Equal(hc, healthcheck) {
		t.Errorf("Dockerfile: HEALTHCHECK %q, want %q", hc, healthcheck)
	}

	// The ports: those the chart and the production example listen on,
	// and the health check's is the standard platform's.
	r := renderChart(t, nil)
	b := loadComponent(t, r, release+"-broker", "broker")
	want := []string{portOf(t, b.cfg.Broker.Platforms[0].Listen), portOf(t, b.cfg.Broker.Platforms[1].Listen), portOf(t, b.cfg.Broker.MetricsListen)}
	if !slices.Equal(expose, want) {
		t.Errorf("Dockerfile: EXPOSE %v, the chart's broker listens on %v (std, plus, metrics)", expose, want)
	}
	if !strings.Contains(hc[2], ":"+want[0]+"/healthz") {
		t.Errorf("Dockerfile: HEALTHCHECK %s is not on the standard platform's port %s", hc[2], want[0])
	}
	prod := loadProduction(t)
	if portOf(t, prod.Broker.Platforms[0].Listen) != want[0] || portOf(t, prod.Broker.MetricsListen) != want[2] {
		t.Error("Dockerfile: config/production.example.yaml listens on other ports than the image's")
	}
}

// TestDockerignore: the build context keeps everything the binary is
// built from.
func TestDockerignore(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	if !slices.Contains(patterns, ".git") {
		t.Error("Dockerfile.dockerignore: .git is sent to the builder")
	}
	// The folders of the packages cmd/sesame imports.
	out, err := exec.Command("go", "-C", "..", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/sesame").Output()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("..")
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module dependency, downloaded in the build
		}
		for _, p := range patterns {
			top := strings.SplitN(rel, string(filepath.Separator), 2)[0]
			if ok, _ := filepath.Match(p, top); ok || p == rel {
				t.Errorf("Dockerfile.dockerignore: %q leaves out %s, which cmd/sesame is built from", p, rel)
			}
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if slices.Contains(patterns, f) {
			t.Errorf("Dockerfile.dockerignore leaves out %s", f)
		}
	}
}

// TestHealthcheckCommand is the contract of the image's HEALTHCHECK with
// cmd/sesame: `sesame healthcheck URL` GETs URL and exits 0 on a 2xx
// answer, non-zero on any other answer or none. (The image has no shell
// and no curl: the binary checks itself.)
func TestHealthcheckCommand(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		http.Error(w, "draining", http.StatusServiceUnavailable)
	}))
	defer up.Close()
	run := func(url string) ([]byte, error) {
		return exec.Command(sesameBin, "healthcheck", url).CombinedOutput()
	}
	if out, err := run(up.URL + "/healthz"); err != nil {
		t.Fatalf("sesame healthcheck %s/healthz: %v\n%s\ndeploy/Dockerfile's HEALTHCHECK and compose.yaml's health checks run %q: cmd/sesame must provide the healthcheck subcommand", up.URL, err, out, healthcheck)
	}
	if _, err := run(up.URL + "/readyz"); err == nil {
		t.Error("sesame healthcheck exited 0 on a 503")
	}
	if _, err := run("http://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/healthz"); err == nil {
		t.Error("sesame healthcheck exited 0 with nothing listening")
	}
}
