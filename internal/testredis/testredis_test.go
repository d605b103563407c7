package testredis

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLifecycle(t *testing.T) {
	s := Start(t)
	if err := ping(s.Socket()); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	if got, want := s.URL(), "unix://"+s.Socket(); got != want {
		t.Fatalf("URL() = %q, want %q", got, want)
	}

	s.Kill()
	if err := ping(s.Socket()); err == nil {
		t.Fatal("PING succeeded after Kill")
	}

	s.Restart()
	if err := ping(s.Socket()); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}

	s.Pause()
	c, err := net.Dial("unix", s.Socket())
	if err != nil {
		t.Fatalf("dial paused server: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if _, err := c.Read(make([]byte, 16)); err == nil {
		t.Fatal("paused server answered")
	}
	s.Resume()
	if err := ping(s.Socket()); err != nil {
		t.Fatalf("PING after Resume: %v", err)
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

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		ci, require string
		wantFail    bool
	}{
		{"", "", false},
		{"true", "", true},
		{"", "1", true},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv("SESAME_REQUIRE_REDIS", tc.require)
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Start(r)
		}()
		<-done
		if r.failed != tc.wantFail || r.skipped == tc.wantFail {
			t.Errorf("CI=%q SESAME_REQUIRE_REDIS=%q: failed=%v skipped=%v, want failed=%v",
				tc.ci, tc.require, r.failed, r.skipped, tc.wantFail)
		}
		if !strings.Contains(r.msg, "make deps") {
			t.Errorf("message %q does not tell how to install redis-server", r.msg)
		}
	}
}
