package civilregistry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/sesame-id/sesame/broker/identity"
)

// The wire format, which the mock of providers/civilregistry serves:
//
//	POST <url>   Authorization: Bearer <secret>   Content-Type: application/json
//	{"given_name": ..., "family_name": ..., "birthdate": ..., "gender": ...,
//	 "birthplace": ..., "birthcountry": ...}
//
//	200 {"status": "found", "identity": {<the registry's pivot>}}
//	200 {"status": "not_found"}   200 {"status": "deceased"}
//
// Any other status, a body that is not that JSON, or a registry identity
// that is not a valid pivot is an error. The client decides Found or
// Corrected by comparing the registry's identity with the one asked.

// maxResponse bounds the registry's answer: a pivot is a few hundred
// bytes, and a broken or hostile registry must not make the broker read
// megabytes on every login.
const maxResponse = 16 << 10

// wire statuses of the registry's answer.
const (
	wireFound    = "found"
	wireNotFound = "not_found"
	wireDeceased = "deceased"
)

// response is the registry's answer as sent.
type response struct {
	Status   string          `json:"status"`
	Identity *identity.Pivot `json:"identity,omitempty"`
}

// Client checks identities at an HTTP registry.
type Client struct {
	url    string
	secret string
	http   *http.Client
}

// NewClient makes a client for the registry's check endpoint u, which it
// authenticates to with the bearer secret; each call takes at most
// timeout (0: 2s).
func NewClient(u, secret string, timeout time.Duration) (*Client, error) {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
		return nil, fmt.Errorf("civil registry: url %q: expected an absolute http(s) URL", u)
	}
	if secret == "" {
		return nil, errors.New("civil registry: a secret is required")
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Every login calls the registry: keep enough connections for a
	// busy replica instead of opening one per check.
	tr.MaxIdleConnsPerHost = 64
	return &Client{url: u, secret: secret, http: &http.Client{
		Timeout: timeout, Transport: tr,
		// A redirect is no answer: the secret must not follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Check implements Registry.
func (c *Client) Check(ctx context.Context, p identity.Pivot) (Result, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return Result{}, fmt.Errorf("civil registry: encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("civil registry: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.secret)
	resp, err := c.http.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return Result{}, fmt.Errorf("%w: read answer: %w", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		// The registry's own text is not logged: it may echo the
		// identity.
		return Result{}, fmt.Errorf("%w: HTTP %d", ErrUnavailable, resp.StatusCode)
	}
	if len(raw) > maxResponse {
		return Result{}, fmt.Errorf("%w: answer over %d bytes", ErrUnavailable, maxResponse)
	}
	res, err := ParseResponse(raw, p)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return res, nil
}

// ParseResponse reads a registry's answer to a check of asked. Its errors
// name what is wrong, never a value, so they are safe to log.
func ParseResponse(raw []byte, asked identity.Pivot) (Result, error) {
	var r response
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&r); err != nil {
		return Result{}, errors.New("civil registry: answer is not a JSON object")
	}
	if dec.More() {
		return Result{}, errors.New("civil registry: answer has data after its JSON object")
	}
	switch r.Status {
	case wireFound:
		if r.Identity == nil {
			return Result{}, errors.New("civil registry: found without an identity")
		}
		if err := r.Identity.Validate(); err != nil {
			return Result{}, fmt.Errorf("civil registry: the registry's identity is invalid: %w", err)
		}
		if *r.Identity == asked {
			return Result{Status: Found, Pivot: asked}, nil
		}
		return Result{Status: Corrected, Pivot: *r.Identity}, nil
	case wireNotFound:
		return Result{Status: NotFound}, nil
	case wireDeceased:
		return Result{Status: Deceased}, nil
	}
	return Result{}, errors.New("civil registry: unknown status in answer")
}
