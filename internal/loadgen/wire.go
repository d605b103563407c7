package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// wire is one party's kept-alive connections, one per host, used one
// request at a time, as a browser tab or an SP's worker does. It writes
// with Request.Write and reads with http.ReadResponse, so the protocol is
// net/http's own, but without http.Transport's two goroutines per
// connection and the hand-offs between them, which cost the generator
// more than the parsing does.
type wire struct {
	conns map[string]*wireConn
}

type wireConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// wireTimeout bounds one request, send to last byte.
const wireTimeout = 30 * time.Second

func newWire() *wire { return &wire{conns: map[string]*wireConn{}} }

// roundTrip sends req and reads the whole answer into body. A kept-alive
// connection the server closed meanwhile is redialled once, before any
// answer was read.
func (w *wire) roundTrip(req *http.Request, body io.Writer) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return nil, fmt.Errorf("%s: the bench speaks http only", req.URL)
	}
	host := req.URL.Host
	if req.URL.Port() == "" {
		host += ":80"
	}
	for attempt := 0; ; attempt++ {
		wc, reused, err := w.conn(host)
		if err != nil {
			return nil, err
		}
		resp, err := wc.exchange(req, body)
		if err == nil {
			if resp.Close {
				w.drop(host)
			}
			return resp, nil
		}
		w.drop(host)
		// Only a request that may be sent again: a GET, or a POST whose
		// connection died before the answer began (the server closed an
		// idle connection as the bench reused it).
		if !reused || attempt > 0 || !errors.Is(err, errBeforeAnswer) {
			return nil, err
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

var errBeforeAnswer = errors.New("connection closed before the answer")

func (w *wire) conn(host string) (*wireConn, bool, error) {
	if wc, ok := w.conns[host]; ok {
		return wc, true, nil
	}
	c, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		return nil, false, err
	}
	wc := &wireConn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 4<<10)}
	w.conns[host] = wc
	return wc, false, nil
}

func (w *wire) drop(host string) {
	if wc, ok := w.conns[host]; ok {
		_ = wc.c.Close()
		delete(w.conns, host)
	}
}

// close ends every connection.
func (w *wire) close() {
	for h := range w.conns {
		w.drop(h)
	}
}

func (wc *wireConn) exchange(req *http.Request, body io.Writer) (*http.Response, error) {
	if err := wc.c.SetDeadline(time.Now().Add(wireTimeout)); err != nil {
		return nil, err
	}
	if err := req.Write(wc.bw); err != nil {
		return nil, fmt.Errorf("%w: %w", errBeforeAnswer, err)
	}
	if err := wc.bw.Flush(); err != nil {
		return nil, fmt.Errorf("%w: %w", errBeforeAnswer, err)
	}
	if _, err := wc.br.Peek(1); err != nil {
		return nil, fmt.Errorf("%w: %w", errBeforeAnswer, err)
	}
	resp, err := http.ReadResponse(wc.br, req)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(body, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp, nil
}

// close ends the user's connections.
func (u *user) close() {
	u.browser.close()
	u.sp.close()
}
