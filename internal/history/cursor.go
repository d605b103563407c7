package history

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// A cursor is the position of the last row of a page, (time, id), since
// List orders by that pair: a keyset cursor stays right when rows are
// appended or purged between two pages, where an offset would skip or
// repeat rows.
//
// Layout, before base64url: a version byte, the time in Unix microseconds
// and the id (big-endian int64s), then a CRC-32 of those 17 bytes. The
// checksum catches a cursor edited or cut in a URL; it is no secret: a
// forged cursor only moves within the account the query already names.
const (
	cursorVersion = 1
	cursorLen     = 1 + 8 + 8 + 4
)

var cursorEncoding = base64.RawURLEncoding.Strict()

// EncodeCursor returns the Page.Next that resumes a listing after the row
// (t, id). Stores keep times to the microsecond, so t is cut to that.
func EncodeCursor(t time.Time, id int64) string {
	var b [cursorLen]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(t.UnixMicro()))
	binary.BigEndian.PutUint64(b[9:17], uint64(id))
	binary.BigEndian.PutUint32(b[17:], crc32.ChecksumIEEE(b[:17]))
	return cursorEncoding.EncodeToString(b[:])
}

// DecodeCursor reads a cursor EncodeCursor wrote. Anything else gives an
// error wrapping ErrBadCursor.
func DecodeCursor(s string) (t time.Time, id int64, err error) {
	if len(s) != cursorEncoding.EncodedLen(cursorLen) {
		return time.Time{}, 0, fmt.Errorf("%w: length %d", ErrBadCursor, len(s))
	}
	b, err := cursorEncoding.DecodeString(s)
	if err != nil || len(b) != cursorLen {
		return time.Time{}, 0, fmt.Errorf("%w: not base64url", ErrBadCursor)
	}
	if b[0] != cursorVersion {
		return time.Time{}, 0, fmt.Errorf("%w: version %d", ErrBadCursor, b[0])
	}
	if crc32.ChecksumIEEE(b[:17]) != binary.BigEndian.Uint32(b[17:]) {
		return time.Time{}, 0, fmt.Errorf("%w: checksum", ErrBadCursor)
	}
	id = int64(binary.BigEndian.Uint64(b[9:17]))
	if id <= 0 {
		return time.Time{}, 0, fmt.Errorf("%w: id %d", ErrBadCursor, id)
	}
	return time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC(), id, nil
}

// PageLimit is the page size a store uses for a Query.Limit: DefaultLimit
// for zero or less, at most MaxLimit.
func PageLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultLimit
	case limit > MaxLimit:
		return MaxLimit
	}
	return limit
}
