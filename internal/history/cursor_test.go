package history

import (
	"errors"
	"testing"
	"time"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		t  time.Time
		id int64
	}{
		{time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600)), 1},
		{time.Unix(0, 0), 1 << 62},
		{time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), 42},
	} {
		c := EncodeCursor(tc.t, tc.id)
		gt, gid, err := DecodeCursor(c)
		if err != nil {
			t.Fatalf("DecodeCursor(%q): %v", c, err)
		}
		if want := tc.t.Truncate(time.Microsecond); !gt.Equal(want) || gt.Location() != time.UTC || gid != tc.id {
			t.Errorf("round trip of (%v, %d) = (%v, %d)", want, tc.id, gt, gid)
		}
	}
}

func TestCursorRejects(t *testing.T) {
	good := EncodeCursor(time.Now(), 7)
	flip := []byte(good)
	flip[5] ^= 1 // still base64url, different bytes
	bad := []string{
		"", "x", "!!!!", good[:len(good)-1], good + "A", string(flip),
		EncodeCursor(time.Now(), 0), EncodeCursor(time.Now(), -3),
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "////////////////////////////",
	}
	for _, s := range bad {
		if _, _, err := DecodeCursor(s); !errors.Is(err, ErrBadCursor) {
			t.Errorf("DecodeCursor(%q) = %v, want ErrBadCursor", s, err)
		}
	}
}

func TestPageLimit(t *testing.T) {
	for in, want := range map[int]int{-1: DefaultLimit, 0: DefaultLimit, 1: 1, MaxLimit: MaxLimit, MaxLimit + 1: MaxLimit} {
		if got := PageLimit(in); got != want {
			t.Errorf("PageLimit(%d) = %d, want %d", in, got, want)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(time.Now(), 1))
	f.Add("")
	f.Add("AQAAAAAAAAAAAAAAAAAAAAE")
	f.Fuzz(func(t *testing.T, s string) {
		ts, id, err := DecodeCursor(s)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("error %v does not wrap ErrBadCursor", err)
			}
			return
		}
		if EncodeCursor(ts, id) != s {
			t.Fatalf("accepted a non-canonical cursor %q", s)
		}
	})
}
