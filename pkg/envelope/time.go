package envelope

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/omninode/onex-fleet/pkg/envelope/pyjson"
)

// Time is a timestamp as pydantic v2 puts it in JSON: RFC 3339 with "Z" for
// UTC, "+HH:MM" for other offsets, and a six-digit fraction only when the
// microseconds are non-zero ("2026-03-02T14:05:07.401122Z",
// "2026-03-02T14:05:08Z").
//
// Decoding requires an explicit offset: a naive timestamp is rejected,
// because the Python models that matter for registration reject it too and
// guessing a zone would silently shift deadlines. The offset of the input is
// kept, so a value re-encodes as it was received. Precision is microseconds
// (finer input digits are truncated, as Python's datetime can hold no more).
type Time struct {
	time.Time
}

// Now returns the current time in UTC truncated to microseconds.
func Now() Time { return Time{time.Now().UTC().Truncate(time.Microsecond)} }

// String returns FormatTime(t.Time).
func (t Time) String() string { return FormatTime(t.Time) }

// MarshalJSON writes the pydantic form as a JSON string.
func (t Time) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, FormatTime(t.Time)), nil
}

// UnmarshalJSON parses a JSON string with ParseTime.
func (t *Time) UnmarshalJSON(b []byte) error {
	s, err := pyjson.String.Decode(b)
	if err != nil {
		return &FieldError{Reason: "must be a datetime string"}
	}
	p, err := ParseTime(s)
	if err != nil {
		return &FieldError{Reason: err.Error(), Err: err}
	}
	t.Time = p
	return nil
}

// MarshalText returns FormatTime(t.Time).
func (t Time) MarshalText() ([]byte, error) { return []byte(FormatTime(t.Time)), nil }

// UnmarshalText parses with ParseTime.
func (t *Time) UnmarshalText(b []byte) error {
	p, err := ParseTime(string(b))
	if err != nil {
		return err
	}
	t.Time = p
	return nil
}

// FormatTime formats t as pydantic v2 serializes an aware datetime in JSON
// mode: YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM), fraction only when the
// microseconds are non-zero, "Z" exactly when the offset is zero.
func FormatTime(t time.Time) string {
	b := appendClock(nil, t, true)
	_, off := t.Zone()
	if off == 0 {
		return string(append(b, 'Z'))
	}
	return string(appendOffset(b, off))
}

// FormatHeaderTime formats t as Python's datetime.isoformat() does for the
// "timestamp" Kafka header: fraction only when microseconds are non-zero
// and the offset always numeric ("2026-03-02T14:05:07.413015+00:00").
func FormatHeaderTime(t time.Time) string {
	_, off := t.Zone()
	return string(appendOffset(appendClock(nil, t, true), off))
}

func appendClock(b []byte, t time.Time, fraction bool) []byte {
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; fraction && us != 0 {
		b = append(b, '.')
		s := strconv.Itoa(us)
		for i := len(s); i < 6; i++ {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	return b
}

func appendOffset(b []byte, off int) []byte {
	sign := byte('+')
	if off < 0 {
		sign = '-'
		off = -off
	}
	b = append(b, sign)
	b = append2(b, off/3600)
	b = append(b, ':')
	b = append2(b, off/60%60)
	if s := off % 60; s != 0 {
		b = append(b, ':')
		b = append2(b, s)
	}
	return b
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10%10), byte('0'+n%10)) }

// ErrNaiveTime is wrapped by ParseTime's error for a timestamp without a
// timezone offset.
var ErrNaiveTime = errors.New("timestamp has no timezone offset (naive datetimes are rejected)")

// ParseTime parses an ISO 8601 / RFC 3339 timestamp the way pydantic v2
// accepts it in JSON, requiring an offset: YYYY-MM-DD, a 'T', 't' or ' '
// separator, HH:MM[:SS[.fraction]], then 'Z', 'z', ±HH:MM or ±HHMM. The
// result keeps the input's offset and is truncated to microseconds. A
// timestamp without offset fails with an error wrapping ErrNaiveTime.
func ParseTime(s string) (time.Time, error) {
	t, naive, err := parseISO(s)
	if err != nil {
		return time.Time{}, err
	}
	if naive {
		return time.Time{}, fmt.Errorf("%q: %w", s, ErrNaiveTime)
	}
	return t, nil
}

// ParseHeaderTime parses the "timestamp" Kafka header as the Python reader
// does: the same formats as ParseTime, but a missing offset means UTC.
func ParseHeaderTime(s string) (time.Time, error) {
	t, _, err := parseISO(s)
	return t, err
}

func parseISO(s string) (t time.Time, naive bool, err error) {
	bad := func(why string) (time.Time, bool, error) {
		return time.Time{}, false, fmt.Errorf("invalid datetime %q: %s", s, why)
	}
	num := func(i, n int) (int, bool) {
		if i+n > len(s) {
			return 0, false
		}
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return bad("want YYYY-MM-DD")
	}
	if len(s) < 16 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') {
		return bad("want date, 'T', time")
	}
	hour, ok1 := num(11, 2)
	minute, ok2 := num(14, 2)
	if !ok1 || !ok2 || s[13] != ':' {
		return bad("want HH:MM")
	}
	i := 16
	sec, nsec := 0, 0
	if i < len(s) && s[i] == ':' {
		v, ok := num(i+1, 2)
		if !ok {
			return bad("want seconds as SS")
		}
		sec, i = v, i+3
		if i < len(s) && (s[i] == '.' || s[i] == ',') {
			i++
			start := i
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				if i-start < 9 {
					nsec = nsec*10 + int(s[i]-'0')
				}
				i++
			}
			n := i - start
			if n == 0 {
				return bad("empty fraction")
			}
			for ; n < 9; n++ {
				nsec *= 10
			}
		}
	}
	if year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || sec > 59 {
		return bad("field out of range")
	}
	nsec -= nsec % 1000 // microsecond precision
	loc := time.UTC
	switch {
	case i == len(s):
		naive = true
	case s[i] == 'Z' || s[i] == 'z':
		if i+1 != len(s) {
			return bad("trailing characters")
		}
	case s[i] == '+' || s[i] == '-':
		oh, ok1 := num(i+1, 2)
		j := i + 3
		if j < len(s) && s[j] == ':' {
			j++
		}
		om, ok2 := num(j, 2)
		if !ok1 || !ok2 || j+2 != len(s) || om > 59 || oh > 23 {
			return bad("want offset ±HH:MM")
		}
		off := oh*3600 + om*60
		if s[i] == '-' {
			off = -off
		}
		if off != 0 {
			loc = time.FixedZone("", off)
		}
	default:
		return bad("trailing characters")
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc), naive, nil
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
