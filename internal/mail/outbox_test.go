package mail

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestOutboxListAndShow(t *testing.T) {
	o := NewOutbox()
	ctx := context.Background()
	first := ConnectionMessage(testConnection())
	_ = o.Send(ctx, first)
	_ = o.Send(ctx, PreferencesMessage(PreferencesChange{To: "bob@example.fr", Future: "allow"}))
	srv := httptest.NewServer(o.Handler())
	defer srv.Close()

	resp, body := get(t, srv, "/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("list: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`<html lang="fr">`, "<h1>Boîte d'envoi de développement</h1>", "<caption>", `scope="col"`, "bob@example.fr", testTo} {
		if !strings.Contains(body, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	// Newest first: the preferences message (2) before the connection (1).
	if i, j := strings.Index(body, `href="messages/2"`), strings.Index(body, `href="messages/1"`); i < 0 || j < 0 || i > j {
		t.Errorf("not newest first:\n%s", body)
	}
	if !strings.Contains(body, ">preferences<") || !strings.Contains(body, ">connection<") {
		t.Error("list lacks the tags")
	}

	resp, body = get(t, srv, "/messages/1")
	if resp.StatusCode != 200 {
		t.Fatalf("show: %d", resp.StatusCode)
	}
	if !strings.Contains(body, "Code de connexion : K7Q-4MZ") {
		t.Error("show lacks the text part")
	}
	if !regexp.MustCompile(`<iframe sandbox srcdoc="[^"]*K7Q-4MZ[^"]*" title="[^"]+"`).MatchString(body) {
		t.Errorf("show lacks the HTML part in a sandboxed, titled iframe:\n%s", body)
	}
	if !strings.Contains(body, `href="../"`) {
		t.Error("no way back to the list")
	}

	if resp, _ := get(t, srv, "/messages/99"); resp.StatusCode != 404 {
		t.Errorf("missing message: %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv, "/messages/x"); resp.StatusCode != 404 {
		t.Errorf("bad id: %d", resp.StatusCode)
	}

	resp, body = get(t, srv, "/messages.json")
	var list []OutboxMessage
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 || list[1].Text != first.Text {
		t.Errorf("json: %v %d", err, len(list))
	}
}

func TestOutboxEscapes(t *testing.T) {
	o := NewOutbox()
	_ = o.Send(context.Background(), Message{
		To:      `"<img src=x onerror=alert(0)>"@example.fr`,
		Subject: `<script>alert(1)</script>`,
		Text:    `</pre><script>alert(2)</script>`,
		HTML:    `<p>Bonjour</p><script>alert(3)</script>"><script>alert(4)</script>`,
		Tag:     "<b>tag</b>",
	})
	srv := httptest.NewServer(o.Handler())
	defer srv.Close()
	for _, path := range []string{"/", "/messages/1", "/messages.json"} {
		resp, body := get(t, srv, path)
		if strings.Contains(body, "<script") || strings.Contains(body, "<img") || strings.Contains(body, "<b>tag") {
			t.Errorf("%s: markup from the message went through:\n%s", path, body)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
	}
	_, body := get(t, srv, "/messages/1")
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the subject is not shown escaped")
	}
	if m := regexp.MustCompile(`<iframe sandbox srcdoc="[^"]*"`).FindString(body); !strings.Contains(m, "alert(3)") || strings.Contains(m, "allow-scripts") {
		t.Errorf("the HTML part is not kept whole in the sandboxed iframe: %s", m)
	}
}

func TestOutboxKeepsTheLast200(t *testing.T) {
	o := NewOutbox()
	for i := 1; i <= OutboxSize+5; i++ {
		_ = o.Send(context.Background(), Message{To: testTo, Subject: fmt.Sprintf("n°%d", i), Tag: "connection"})
	}
	msgs := o.Messages()
	if len(msgs) != OutboxSize || msgs[0].ID != OutboxSize+5 || msgs[len(msgs)-1].ID != 6 {
		t.Fatalf("%d messages, %d to %d", len(msgs), msgs[0].ID, msgs[len(msgs)-1].ID)
	}
	srv := httptest.NewServer(o.Handler())
	defer srv.Close()
	if resp, _ := get(t, srv, "/messages/5"); resp.StatusCode != 404 {
		t.Errorf("message 5 still shown: %d", resp.StatusCode)
	}
	if resp, body := get(t, srv, "/messages/6"); resp.StatusCode != 200 || !strings.Contains(body, "n°6") {
		t.Errorf("message 6: %d", resp.StatusCode)
	}
	if _, body := get(t, srv, "/"); strings.Count(body, "<tr>") != OutboxSize+1 { // + the head row
		t.Errorf("the list has %d rows", strings.Count(body, "<tr>"))
	}
}

// The queue in front of the outbox is how development runs.
func TestQueueToOutbox(t *testing.T) {
	o := NewOutbox()
	q, _ := newQueue(t, o, 10, 0)
	q.Enqueue(ConnectionMessage(testConnection()))
	waitStats(t, q, func(s Stats) bool { return s.Sent == 1 })
	if m := o.Messages(); len(m) != 1 || m[0].Tag != TagConnection {
		t.Errorf("outbox: %+v", m)
	}
}
