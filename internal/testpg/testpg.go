// Package testpg runs a private, throw-away PostgreSQL server for tests,
// from the binaries of Debian's postgresql package (initdb and postgres
// under /usr/lib/postgresql/N/bin).
//
// A Server lives in its own temporary directory (data and unix socket),
// listens on a free loopback port, trusts every local connection, does not
// fsync (its data is thrown away), and is stopped when its test ends
// (Start) or when the test binary ends (Shared with Main). NewDB gives
// each test or subtest a fresh database on it.
//
// initdb and postgres refuse to run as root. Run as root (as CI and the
// development containers are), both run as the postgres system user the
// Debian package creates, and the directory is given to that user.
package testpg

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// readyTimeout bounds how long Start waits for the server to accept
// connections, stopTimeout how long a fast shutdown may take before the
// server is killed.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// missingMsg tells a developer how to get PostgreSQL.
const missingMsg = "PostgreSQL not found (no initdb and postgres under /usr/lib/postgresql/*/bin nor on PATH); run `make deps` (apt-get install postgresql)"

// debianBins is where Debian's postgresql-N packages put their programs;
// a variable so the tests can point it at nothing.
var debianBins = "/usr/lib/postgresql/*/bin"

// superuser is the role initdb creates, trusted without password.
const superuser = "postgres"

// Server is a running PostgreSQL server.
type Server struct {
	binDir string
	dir    string // owns data/, the socket and the log
	port   int

	mu     sync.Mutex
	cmd    *exec.Cmd  // nil once stopped
	exited chan error // receives cmd.Wait's result

	dbMu sync.Mutex // CREATE DATABASE one at a time (template1 is copied)
	dbN  int
}

// Start launches a private server and registers its shutdown with
// t.Cleanup.
//
// When PostgreSQL is not installed the test is skipped, unless
// SESAME_REQUIRE_POSTGRES=1 or the CI environment variable is non-empty,
// in which case it fails: CI must never go green by silently skipping the
// PostgreSQL tests.
func Start(t testing.TB) *Server {
	t.Helper()
	binDir := lookup(t)
	s, err := start(binDir)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(s.Stop)
	t.Logf("testpg: PostgreSQL from %s on 127.0.0.1:%d", binDir, s.port)
	return s
}

// shared is the server of Shared, stopped by Main.
var shared struct {
	mu      sync.Mutex
	main    bool // Main is running the tests
	srv     *Server
	err     error
	started bool
}

// Shared returns the test binary's one server, starting it on first use:
// a package whose tests all use Shared pays for initdb once. The package
// must have a TestMain that calls Main, which stops it. A missing
// PostgreSQL skips or fails the test as Start does.
func Shared(t testing.TB) *Server {
	t.Helper()
	binDir := lookup(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		t.Fatal("testpg: Shared needs a TestMain calling testpg.Main(m), which stops the server")
	}
	if !shared.started {
		shared.started = true
		shared.srv, shared.err = start(binDir)
	}
	if shared.err != nil {
		t.Fatalf("testpg: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests of m and then stops the Shared server, if one was
// started, before exiting. Call it from TestMain.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// lookup finds the directory holding initdb and postgres: the newest
// Debian postgresql-N, else the one of initdb on PATH. It skips or fails
// the test when there is none (see Start).
func lookup(t testing.TB) string {
	t.Helper()
	if dir := findBinDir(); dir != "" {
		return dir
	}
	if os.Getenv("CI") != "" || os.Getenv("SESAME_REQUIRE_POSTGRES") == "1" {
		t.Fatal(missingMsg)
	}
	t.Skip(missingMsg)
	return ""
}

func findBinDir() string {
	dirs, _ := filepath.Glob(debianBins)
	// Newest major first: /usr/lib/postgresql/17 before .../9.6.
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		switch va, vb := version(a), version(b); {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return strings.Compare(a, b)
	})
	if initdb, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(initdb))
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d
		}
	}
	return ""
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// runAs is who initdb and postgres run as: nil for ourselves, the
// postgres system user when we are root.
type runAs struct {
	uid, gid uint32
}

func (r *runAs) apply(cmd *exec.Cmd) {
	attr := &syscall.SysProcAttr{}
	setDeathSignal(attr)
	if r != nil {
		attr.Credential = &syscall.Credential{Uid: r.uid, Gid: r.gid}
	}
	cmd.SysProcAttr = attr
}

func whoRuns() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and initdb refuses root: no postgres user to run it as (%v); it comes with apt-get install postgresql", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres user: uid %q gid %q", u.Uid, u.Gid)
	}
	return &runAs{uid: uint32(uid), gid: uint32(gid)}, nil
}

// makeDir creates the server's directory, owned by the user the server
// runs as, under a parent that user can traverse: the usual temporary
// directory, else /tmp (a TMPDIR under /root would not do).
func makeDir(who *runAs) (string, error) {
	parents := []string{os.TempDir()}
	if who != nil && os.TempDir() != "/tmp" {
		parents = append(parents, "/tmp")
	}
	var why []string
	for _, parent := range parents {
		if who != nil {
			if err := traversable(parent, who); err != nil {
				why = append(why, err.Error())
				continue
			}
		}
		// Not t.TempDir: its path embeds the test name, and a unix socket
		// path must fit in 107 bytes.
		dir, err := os.MkdirTemp(parent, "sesame-pg-")
		if err != nil {
			return "", err
		}
		if who != nil {
			if err := os.Chown(dir, int(who.uid), int(who.gid)); err != nil {
				_ = os.RemoveAll(dir)
				return "", err
			}
		}
		return dir, nil
	}
	return "", fmt.Errorf("no temporary directory the postgres user can reach: %s; set TMPDIR", strings.Join(why, "; "))
}

// traversable checks that who may search every directory from / to dir.
func traversable(dir string, who *runAs) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		switch {
		case !ok, mode&0o001 != 0:
		case st.Uid == who.uid && mode&0o100 != 0:
		case st.Gid == who.gid && mode&0o010 != 0:
		default:
			return fmt.Errorf("%s (mode %v, owner %d:%d) is closed to the postgres user", p, mode, st.Uid, st.Gid)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// start runs initdb and then postgres, on a free port, retrying with
// another port if one was taken between picking and binding it.
func start(binDir string) (*Server, error) {
	who, err := whoRuns()
	if err != nil {
		return nil, err
	}
	dir, err := makeDir(who)
	if err != nil {
		return nil, err
	}
	s := &Server{binDir: binDir, dir: dir}
	if err := s.initdb(who); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err = s.launch(who)
		if err == nil {
			return s, nil
		}
		if attempt == 5 || !strings.Contains(err.Error(), "in use") {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

func (s *Server) env() []string {
	return append(os.Environ(), "LC_ALL=C", "HOME="+s.dir, "PGDATA=")
}

func (s *Server) initdb(who *runAs) error {
	cmd := exec.Command(filepath.Join(s.binDir, "initdb"),
		"--pgdata", filepath.Join(s.dir, "data"),
		"--username", superuser,
		"--auth", "trust",
		"--encoding", "UTF8",
		"--locale", "C",
		"--no-sync",
	)
	cmd.Dir, cmd.Env = s.dir, s.env()
	who.apply(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

// launch starts postgres on a fresh port and waits until it accepts
// connections.
func (s *Server) launch(who *runAs) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(s.dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	if who != nil {
		_ = logFile.Chown(int(who.uid), int(who.gid))
	}
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"),
		"-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.dir,
		// Throw-away data: durability only costs time.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
	)
	cmd.Dir, cmd.Env = s.dir, s.env()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	who.apply(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	s.port = port
	if err := s.waitReady(exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		log, _ := os.ReadFile(logPath)
		if strings.Contains(string(log), "already in use") {
			return fmt.Errorf("port %d in use", port)
		}
		return fmt.Errorf("postgres on 127.0.0.1:%d not ready: %v\nlog:\n%s", port, err, log)
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

func (s *Server) waitReady(exited <-chan error) error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("postgres exited: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.URL())
		if err == nil {
			err = c.Ping(ctx)
			_ = c.Close(ctx)
		}
		cancel()
		if lastErr = err; err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no connection within %v: %w", readyTimeout, lastErr)
}

// freePort returns a loopback port free at the time of asking.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Port returns the TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// SocketDir returns the directory of the server's unix socket (a pgx
// host=... value).
func (s *Server) SocketDir() string { return s.dir }

// URL returns the URL of the postgres database, as the superuser.
func (s *Server) URL() string { return s.dbURL("postgres") }

func (s *Server) dbURL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, db)
}

// NewDB creates an empty database, dropped at t.Cleanup, and returns its
// URL.
func (s *Server) NewDB(t testing.TB) string {
	t.Helper()
	s.dbMu.Lock()
	s.dbN++
	name := fmt.Sprintf("test_%d", s.dbN)
	err := s.admin(fmt.Sprintf("CREATE DATABASE %s", name))
	s.dbMu.Unlock()
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() {
		// FORCE: a store the test forgot to close must not keep the
		// database (and its disk) alive.
		if err := s.admin(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
			t.Errorf("testpg: %v", err)
		}
	})
	return s.dbURL(name)
}

// admin runs one statement on the postgres database.
func (s *Server) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// Stop shuts the server down (a fast shutdown, then SIGKILL after
// stopTimeout) and removes its directory. It may be called again.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		s.cmd, s.exited = nil, nil
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
		s.dir = ""
	}
}

// Running reports whether the server is up (it is until Stop).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}
