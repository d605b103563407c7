package mail

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workers is how many messages are sent at once. Two, not one: a slow
// relay reply for one message does not hold every other one, and the relay
// (which does the real delivery, and its retries) is not flooded.
const workers = 2

// DefaultQueueSize is the queue's bound when NewQueue is given none.
const DefaultQueueSize = 1000

// Queue is the Mailer in front of a Sender: a bounded buffer and a few
// background workers, so that a slow or absent relay never slows a login.
// When the buffer is full, messages are dropped (counted and logged): an
// e-mail is a notice, the login matters more.
type Queue struct {
	// Backoff is the wait before the first retry of a temporary failure,
	// doubled at each retry up to MaxBackoff (1 s and 5 min by default).
	// Set them before the first Enqueue (tests use milliseconds).
	Backoff, MaxBackoff time.Duration

	s       Sender
	log     *slog.Logger
	retries int
	ch      chan Message

	// mu orders Enqueue and Close, so nothing is sent on a closed channel.
	mu     sync.Mutex
	closed bool

	// ctx is cancelled when Close gives up waiting: it stops the retry
	// waits and the deliveries in progress.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sent, retried, dropped, failed atomic.Uint64
}

var _ Mailer = (*Queue)(nil)

// Stats are a Queue's counters since it started, for tests and metrics.
type Stats struct {
	// Sent counts messages the relay accepted.
	Sent uint64
	// Retried counts retries (one message can be retried several times).
	Retried uint64
	// Dropped counts messages never tried: refused by Enqueue (queue
	// full or closed), or still queued when Close gave up.
	Dropped uint64
	// Failed counts messages given up after trying: a permanent refusal,
	// or temporary failures beyond the retries.
	Failed uint64
	// Queued is how many messages are waiting now.
	Queued int
}

// NewQueue starts a queue of at most size messages (DefaultQueueSize if
// size <= 0) in front of s, trying each message at most 1+retries times.
// A nil log discards the queue's log lines.
func NewQueue(s Sender, size, retries int, log *slog.Logger) *Queue {
	if size <= 0 {
		size = DefaultQueueSize
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := &Queue{
		Backoff:    time.Second,
		MaxBackoff: 5 * time.Minute,
		s:          s,
		log:        log,
		retries:    max(retries, 0),
		ch:         make(chan Message, size),
	}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	q.wg.Add(workers)
	for range workers {
		go q.work()
	}
	return q
}

// Enqueue queues m for delivery and returns at once: false when m was
// dropped because the queue is full or closed.
func (q *Queue) Enqueue(m Message) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.dropped.Add(1)
		q.log.Warn("mail: queue closed, message dropped", "tag", m.Tag, "rcpt", rcptID(m.To))
		return false
	}
	select {
	case q.ch <- m:
		return true
	default:
		q.dropped.Add(1)
		q.log.Warn("mail: queue full, message dropped", "tag", m.Tag, "rcpt", rcptID(m.To), "size", cap(q.ch))
		return false
	}
}

// Close stops accepting messages and waits until the queued ones are
// delivered (or given up), or until ctx ends: then the retries waiting and
// the deliveries in progress are abandoned, the messages left are counted
// as dropped, and the error says about how many.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()

	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		// Those queued, plus at most one in progress per worker.
		left := len(q.ch)
		q.log.Error("mail: queue closed before it was drained", "unsent", left)
		return fmt.Errorf("mail: queue closed with %d message(s) or more unsent: %w", left, ctx.Err())
	}
}

// Stats returns the counters.
func (q *Queue) Stats() Stats {
	return Stats{
		Sent:    q.sent.Load(),
		Retried: q.retried.Load(),
		Dropped: q.dropped.Load(),
		Failed:  q.failed.Load(),
		Queued:  len(q.ch),
	}
}

func (q *Queue) work() {
	defer q.wg.Done()
	for m := range q.ch {
		q.deliver(m)
	}
}

// deliver tries m until it is sent, permanently refused, or out of
// retries. Log lines carry the tag and rcptID, never the address, and the
// error text is redacted in case a Sender other than SMTPSender lets the
// address through.
func (q *Queue) deliver(m Message) {
	if q.ctx.Err() != nil { // Close gave up: do not start new deliveries
		q.dropped.Add(1)
		return
	}
	id := rcptID(m.To)
	delay := q.Backoff
	for attempt := 1; ; attempt++ {
		err := q.s.Send(q.ctx, m)
		switch {
		case err == nil:
			q.sent.Add(1)
			if attempt > 1 {
				q.log.Info("mail: sent after retries", "tag", m.Tag, "rcpt", id, "attempts", attempt)
			}
			return
		case q.ctx.Err() != nil:
			q.dropped.Add(1)
			q.log.Warn("mail: abandoned at shutdown", "tag", m.Tag, "rcpt", id, "attempts", attempt)
			return
		case Permanent(err):
			q.failed.Add(1)
			q.log.Error("mail: refused, message dropped", "tag", m.Tag, "rcpt", id,
				"attempts", attempt, "err", redact(err.Error(), m.To))
			return
		case attempt > q.retries:
			q.failed.Add(1)
			q.log.Error("mail: still failing, message dropped", "tag", m.Tag, "rcpt", id,
				"attempts", attempt, "err", redact(err.Error(), m.To))
			return
		}
		q.retried.Add(1)
		q.log.Warn("mail: temporary failure, will retry", "tag", m.Tag, "rcpt", id,
			"attempt", attempt, "in", delay, "err", redact(err.Error(), m.To))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-q.ctx.Done():
			t.Stop()
			q.dropped.Add(1)
			q.log.Warn("mail: abandoned at shutdown", "tag", m.Tag, "rcpt", id, "attempts", attempt)
			return
		}
		delay = min(delay*2, q.MaxBackoff)
	}
}

// rcptKey keys rcptID. Random per process, so the short hash correlates
// the lines of one message but cannot be matched against a list of known
// addresses, as a plain hash could.
var rcptKey = func() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand panics instead)
	return k
}()

// rcptID is what logs say instead of the address: 8 hex digits.
func rcptID(addr string) string {
	h := hmac.New(sha256.New, rcptKey)
	h.Write([]byte(strings.ToLower(strings.TrimSpace(addr))))
	return hex.EncodeToString(h.Sum(nil)[:4])
}
