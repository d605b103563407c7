package testpg

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestLifecycle(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/", s.Port())) {
		t.Fatalf("URL() = %q", s.URL())
	}
	if _, err := os.Stat(fmt.Sprintf("%s/.s.PGSQL.%d", s.SocketDir(), s.Port())); err != nil {
		t.Fatalf("no unix socket in the server's directory: %v", err)
	}
	c := connect(t, s.URL())
	var who string
	if err := c.QueryRow(context.Background(), `SELECT current_user`).Scan(&who); err != nil || who != "postgres" {
		t.Fatalf("current_user = %q, %v", who, err)
	}
	// The socket works too.
	sc := connect(t, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", s.SocketDir(), s.Port()))
	if err := sc.Ping(context.Background()); err != nil {
		t.Fatalf("ping over the unix socket: %v", err)
	}

	dir := s.SocketDir()
	s.Stop()
	s.Stop() // idempotent
	if s.Running() {
		t.Fatal("Running after Stop")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory left after Stop: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, s.URL()); err == nil {
		_ = c.Close(ctx)
		t.Fatal("connected after Stop")
	}
}

func TestNewDB(t *testing.T) {
	s := Shared(t)
	a, b := s.NewDB(t), s.NewDB(t)
	if a == b {
		t.Fatalf("NewDB twice gave %s", a)
	}
	ca, cb := connect(t, a), connect(t, b)
	ctx := context.Background()
	if _, err := ca.Exec(ctx, `CREATE TABLE only_in_a (x int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.Exec(ctx, `SELECT * FROM only_in_a`); err == nil {
		t.Fatal("a table of one database is seen in another")
	}
	var name string
	if err := ca.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil || !strings.HasSuffix(a, "/"+name+"?sslmode=disable") {
		t.Fatalf("current_database = %q (%v) for %s", name, err, a)
	}

	// At cleanup the database goes, even with a connection still open.
	var dropped string
	t.Run("sub", func(t *testing.T) {
		u := s.NewDB(t)
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.QueryRow(ctx, `SELECT current_database()`).Scan(&dropped)
		// c left open on purpose
	})
	var n int
	if err := ca.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, dropped).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %q still there after its test (%d, %v)", dropped, n, err)
	}
}

func TestSharedIsShared(t *testing.T) {
	if Shared(t) != Shared(t) {
		t.Fatal("Shared started two servers")
	}
}

// As root, the server runs as the postgres user; otherwise as the user
// running the tests. Either way the data directory is owned by whoever
// whoRuns says.
func TestRunsAsPostgresWhenRoot(t *testing.T) {
	c := connect(t, Shared(t).URL())
	// The postmaster's data directory belongs to the user it runs as.
	var dataDir string
	if err := c.QueryRow(context.Background(), `SHOW data_directory`).Scan(&dataDir); err != nil {
		t.Fatal(err)
	}
	who, err := whoRuns()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	want := uint32(os.Geteuid())
	if os.Geteuid() == 0 {
		if who == nil || who.uid == 0 {
			t.Fatal("as root, whoRuns chose root: initdb would refuse")
		}
		want = who.uid
	}
	if st := statUID(fi); st != want {
		t.Fatalf("data directory owned by uid %d, want %d", st, want)
	}
}

// recorder intercepts the outcome of Start without ending the real test.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) {
	r.failed, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

func TestMissingBinary(t *testing.T) {
	old := debianBins
	t.Cleanup(func() { debianBins = old })
	debianBins = t.TempDir() + "/*/bin"
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		ci, require string
		wantFail    bool
	}{
		{"", "", false},
		{"", "0", false},
		{"true", "", true},
		{"", "1", true},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv("SESAME_REQUIRE_POSTGRES", tc.require)
		for name, fn := range map[string]func(testing.TB){"Start": func(tb testing.TB) { Start(tb) }, "Shared": func(tb testing.TB) { Shared(tb) }} {
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				fn(r)
			}()
			<-done
			if r.failed != tc.wantFail || r.skipped == tc.wantFail {
				t.Errorf("%s, CI=%q SESAME_REQUIRE_POSTGRES=%q: failed=%v skipped=%v, want failed=%v",
					name, tc.ci, tc.require, r.failed, r.skipped, tc.wantFail)
			}
			if !strings.Contains(r.msg, "apt-get install postgresql") {
				t.Errorf("message %q does not tell how to install PostgreSQL", r.msg)
			}
		}
	}
}

func TestTraversable(t *testing.T) {
	who := &runAs{uid: 54321, gid: 54321}
	// A directory open to others (made so here, since t.TempDir nests in
	// a 0700 one) is traversable; one closed on the way is not.
	open, err := os.MkdirTemp(os.TempDir(), "sesame-traversable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(open) })
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := traversable(open, who); err != nil {
		t.Fatalf("traversable(%s) = %v, want nil", open, err)
	}
	closed := t.TempDir()
	if err := os.Mkdir(closed+"/inner", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := traversable(closed+"/inner", who); err == nil || !strings.Contains(err.Error(), "closed to the postgres user") {
		t.Fatalf("traversable through a 0700 directory = %v", err)
	}
}
