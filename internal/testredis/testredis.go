// Package testredis runs a private, throw-away redis-server for tests.
//
// Each Server listens only on a unix socket in its own temporary directory
// (no TCP port, so parallel test binaries cannot collide), persists nothing,
// and is killed when the test ends. Kill, Restart, Pause and Resume let fault
// tests simulate an outage or a hung server on the same socket.
package testredis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyTimeout bounds how long Start and Restart wait for PONG.
const readyTimeout = 10 * time.Second

// missingMsg tells a developer how to get redis-server.
const missingMsg = "redis-server not found on PATH; run `make deps` (apt-get install redis-server)"

// Server is a running redis-server owned by one test.
type Server struct {
	t      testing.TB
	bin    string
	dir    string
	socket string

	mu     sync.Mutex
	cmd    *exec.Cmd  // nil while killed
	exited chan error // receives cmd.Wait's result
}

// Start launches a private redis-server and registers its shutdown with
// t.Cleanup.
//
// When redis-server is not installed the test is skipped, unless the CI
// environment variable is non-empty or SESAME_REQUIRE_REDIS=1, in which case
// it fails: CI must never go green by silently skipping the Redis tests.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("SESAME_REQUIRE_REDIS") == "1" {
			t.Fatal(missingMsg)
		}
		t.Skip(missingMsg)
	}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		t.Logf("testredis: using %s (%s)", bin, strings.TrimSpace(string(out)))
	} else {
		t.Logf("testredis: using %s (version unknown: %v)", bin, err)
	}

	// Not t.TempDir: its path embeds the test name and can exceed the
	// 108-byte limit of unix socket paths.
	dir, err := os.MkdirTemp("", "sesame-redis-")
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	s := &Server{t: t, bin: bin, dir: dir, socket: filepath.Join(dir, "redis.sock")}
	t.Cleanup(func() {
		s.stop()
		_ = os.RemoveAll(dir)
	})
	s.start()
	return s
}

// Socket returns the unix socket path.
func (s *Server) Socket() string { return s.socket }

// URL returns a go-redis URL for the server, e.g. unix:///tmp/x/redis.sock.
func (s *Server) URL() string { return "unix://" + s.socket }

// Kill stops the server abruptly (SIGKILL), as a crash or OOM kill would.
// The socket path stays valid for Restart. Data is lost.
func (s *Server) Kill() {
	s.t.Helper()
	s.stop()
}

// Restart starts a fresh, empty server on the same socket, killing the
// current one first if it is still running.
func (s *Server) Restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

// Pause freezes the server (SIGSTOP): connections stay open but nothing is
// answered, which is how an overloaded or partitioned Redis looks to a
// client.
func (s *Server) Pause() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
}

// Resume undoes Pause.
func (s *Server) Resume() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("testredis: %v sent to a server that is not running", sig)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("testredis: signal %v: %v", sig, err)
	}
}

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("testredis: server already running")
	}

	logPath := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command(s.bin,
		"--port", "0",
		"--unixsocket", s.socket,
		"--unixsocketperm", "700",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", logPath,
		"--loglevel", "warning",
	)
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("testredis: start %s: %v", s.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	if err := waitReady(s.socket, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		log, _ := os.ReadFile(logPath)
		s.t.Fatalf("testredis: redis-server on %s not ready: %v\nlog:\n%s", s.socket, err, log)
	}
	s.cmd, s.exited = cmd, exited
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	// cmd.Wait runs in the goroutine started by start; reaping here makes
	// sure the socket is really dead before Kill returns.
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// waitReady polls the socket until it answers PING or the process dies.
func waitReady(socket string, exited <-chan error) error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %v", err)
		default:
		}
		if lastErr = ping(socket); lastErr == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no PONG within %v: %w", readyTimeout, lastErr)
}

// ping speaks just enough RESP to tell a ready server from a loading one, so
// the package does not depend on the client under test.
func ping(socket string) error {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return err
	}
	if !bytes.Equal(bytes.TrimSpace(line), []byte("+PONG")) {
		return errors.New("unexpected reply " + strings.TrimSpace(string(line)))
	}
	return nil
}
