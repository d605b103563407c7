package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sesameBin is cmd/sesame built from the parent module by TestMain.
var sesameBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sesame-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sesameBin = filepath.Join(dir, "sesame")
	// The parent module's own build: the binary the image ships.
	build := exec.Command("go", "build", "-o", sesameBin, "./cmd/sesame")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building cmd/sesame: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// envRef is config.Parse's reference syntax: ${VAR} or ${VAR:-default}.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// configRefs returns the variables a config text references without a
// default (required) and with one.
func configRefs(text string) (required, optional []string) {
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		if m[2] == "" {
			required = append(required, m[1])
		} else {
			optional = append(optional, m[1])
		}
	}
	slices.Sort(required)
	slices.Sort(optional)
	return slices.Compact(required), slices.Compact(optional)
}

// readEnvFile reads a compose env_file: KEY=VALUE lines, # comments.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

// onlyEnv makes the process environment hold exactly env for the
// variables a config references, so that a variable the deployment does
// not set cannot be found in the test's own environment.
func onlyEnv(t *testing.T, text string, env map[string]string) {
	t.Helper()
	req, opt := configRefs(text)
	for _, k := range append(req, opt...) {
		t.Setenv(k, "") // restored at cleanup
		if v, ok := env[k]; ok {
			t.Setenv(k, v)
		} else {
			os.Unsetenv(k)
		}
	}
}

// checkConfig runs `sesame check-config` on a file with exactly env.
func checkConfig(t *testing.T, path string, env map[string]string) string {
	t.Helper()
	cmd := exec.Command(sesameBin, "check-config", path)
	cmd.Env = envList(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sesame check-config %s: %v\n%s", path, err, out)
	}
	return string(out)
}

func envList(env map[string]string) []string {
	list := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	return list
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a sesame process started by a test; its output is kept for the
// failure message.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startSesame runs the binary with args and exactly env; it is killed at
// cleanup if still running.
func startSesame(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(sesameBin, args...), done: make(chan error, 1)}
	p.cmd.Env = envList(env)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("sesame %s output:\n%s", strings.Join(args, " "), p.output())
		}
	})
	return p
}

// sigterm stops the process as Kubernetes and Docker do.
func (p *proc) sigterm() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }

var client = &http.Client{Timeout: 3 * time.Second}

// status GETs url and returns the status code, 0 if nothing answered.
func status(url string) int {
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls url until it answers want, the process dies, or 20 s
// pass.
func waitStatus(t *testing.T, p *proc, url string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := 0
	for ctx.Err() == nil {
		if got = status(url); got == want {
			return
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("sesame exited (%v) before %s answered %d", err, url, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("%s: got %d, want %d", url, got, want)
}

// portOf returns the port of a host:port.
func portOf(t *testing.T, hostport string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return port
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return d
}
