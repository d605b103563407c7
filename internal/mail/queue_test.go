package mail

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sesame-id/sesame/config"
	"github.com/sesame-id/sesame/internal/testsmtp"
)

// logBuffer collects a queue's log lines from its workers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newQueue is a queue in front of SMTP to srv, backing off in
// milliseconds, closed (drained) at the end of the test.
func newQueue(t *testing.T, s Sender, size, retries int) (*Queue, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	q := NewQueue(s, size, retries, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	q.Backoff = 5 * time.Millisecond
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Close(ctx)
		if strings.Contains(strings.ToLower(logs.String()), testTo) {
			t.Errorf("the logs hold the address:\n%s", logs)
		}
	})
	return q, logs
}

// waitStats polls q until ok holds.
func waitStats(t *testing.T, q *Queue, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := q.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v after 5s", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestQueueRetriesThroughTemporaryFailures(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Fail(2, 451))
	q, logs := newQueue(t, newSMTP(t, mailConfig(srv, "none")), 10, 5)
	if !q.Enqueue(ConnectionMessage(testConnection())) {
		t.Fatal("Enqueue refused")
	}
	srv.Wait(t, 1, 5*time.Second)
	st := waitStats(t, q, func(s Stats) bool { return s.Sent == 1 })
	if st.Retried != 2 || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 2 retries", st)
	}
	if a, n := srv.Attempts(), len(srv.Messages()); a != 3 || n != 1 {
		t.Errorf("%d attempts, %d delivered; want 3, 1", a, n)
	}
	if l := logs.String(); !strings.Contains(l, "tag=connection") || !strings.Contains(l, "451") || !strings.Contains(l, "rcpt=") {
		t.Errorf("logs lack the tag, the reply or the recipient id:\n%s", l)
	}
}

func TestQueuePermanentFailureIsNotRetried(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Fail(1, 550))
	q, logs := newQueue(t, newSMTP(t, mailConfig(srv, "none")), 10, 5)
	q.Enqueue(ConnectionMessage(testConnection()))
	st := waitStats(t, q, func(s Stats) bool { return s.Failed == 1 })
	// Give a wrong retry the time to happen.
	time.Sleep(50 * time.Millisecond)
	if st = q.Stats(); st.Retried != 0 || st.Sent != 0 {
		t.Errorf("stats %+v, want no retry", st)
	}
	if a := srv.Attempts(); a != 1 {
		t.Errorf("%d attempts, want 1", a)
	}
	if !strings.Contains(logs.String(), "550") {
		t.Errorf("the drop is not logged with the reply:\n%s", logs)
	}
}

func TestQueueGivesUpAfterRetries(t *testing.T) {
	srv := testsmtp.Start(t, testsmtp.Fail(100, 451))
	q, _ := newQueue(t, newSMTP(t, mailConfig(srv, "none")), 10, 2)
	q.Enqueue(ConnectionMessage(testConnection()))
	st := waitStats(t, q, func(s Stats) bool { return s.Failed == 1 })
	if st.Retried != 2 || srv.Attempts() != 3 {
		t.Errorf("stats %+v, %d attempts; want 2 retries, 3 attempts", st, srv.Attempts())
	}
}

// hungRelay is a relay that accepts connections and never says a word,
// the worst case for the queue: every delivery hangs until the timeout.
func hungRelay(t *testing.T) config.Mail {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return config.Mail{From: testFrom, SMTP: config.SMTP{
		Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, TLS: "none",
		Timeout: config.Duration(3 * time.Second),
	}}
}

func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	q, logs := newQueue(t, newSMTP(t, hungRelay(t)), 3, 5)
	m := ConnectionMessage(testConnection())
	accepted, refused := 0, 0
	start := time.Now()
	for range 20 {
		if q.Enqueue(m) {
			accepted++
		} else {
			refused++
		}
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("20 Enqueue took %v with a hung relay", d)
	}
	// 3 in the buffer, and at most one taken by each worker.
	if accepted < 3 || accepted > 3+workers || refused != 20-accepted {
		t.Errorf("accepted %d, refused %d", accepted, refused)
	}
	if st := q.Stats(); st.Dropped != uint64(refused) {
		t.Errorf("stats %+v, want %d dropped", st, refused)
	}
	if !strings.Contains(logs.String(), "queue full") {
		t.Errorf("the drops are not logged:\n%s", logs)
	}

	// Close gives up at its deadline rather than waiting for the relay.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	err := q.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want the deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if q.Enqueue(m) {
		t.Error("Enqueue accepted after Close")
	}
}

func TestQueueCloseDrains(t *testing.T) {
	srv := testsmtp.Start(t)
	q, _ := newQueue(t, newSMTP(t, mailConfig(srv, "none")), 50, 5)
	for i := range 20 {
		if !q.Enqueue(ConnectionMessage(testConnection())) {
			t.Fatalf("Enqueue %d refused", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// No Wait: Close returned, so all were delivered.
	if n := len(srv.Messages()); n != 20 {
		t.Errorf("%d delivered after Close, want 20", n)
	}
	if st := q.Stats(); st.Sent != 20 || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
	if q.Enqueue(ConnectionMessage(testConnection())) {
		t.Error("Enqueue accepted after Close")
	}
	if st := q.Stats(); st.Dropped != 1 {
		t.Errorf("stats %+v, want the refused one dropped", st)
	}
}

func TestRcptID(t *testing.T) {
	a, b := rcptID(testTo), rcptID(" Alice.Martin@Example.FR ")
	if a != b || len(a) != 8 || strings.Contains(a, "alice") {
		t.Errorf("rcptID = %q, %q", a, b)
	}
	if rcptID("bob@example.fr") == a {
		t.Error("two addresses, one id")
	}
}
