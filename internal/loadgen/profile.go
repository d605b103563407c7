package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// profileTarget is one broker's CPU profile endpoint and the file its
// profile goes to.
type profileTarget struct {
	url  string
	file string
}

// profile starts reading every broker's CPU profile over the next d (whole
// seconds, as net/http/pprof takes them) and returns the function that
// waits for them and says what failed. Without profiles it does nothing.
func (sub *subject) profile(ctx context.Context, d time.Duration) func() error {
	if len(sub.profiles) == 0 {
		return func() error { return nil }
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	var wg sync.WaitGroup
	errs := make([]error, len(sub.profiles))
	for i, p := range sub.profiles {
		wg.Go(func() {
			errs[i] = fetchProfile(ctx, fmt.Sprintf("%s?seconds=%d", p.url, secs), filepath.Join(sub.profileDir, p.file))
		})
	}
	return func() error {
		wg.Wait()
		return errors.Join(errs...)
	}
}

func fetchProfile(ctx context.Context, u, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("profile %s: %s: %s", u, resp.Status, b)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", u, err)
	}
	return f.Close()
}
