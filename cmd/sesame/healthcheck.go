package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthcheck is the container's HEALTHCHECK: the final image has no
// shell and no curl, so the binary probes its own endpoint. It succeeds
// on a 2xx answer within 2 s (Docker's timeout is 3 s).
func healthcheck(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: sesame healthcheck URL")
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(args[0])
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck: %s answered %s", args[0], resp.Status)
	}
	return nil
}
