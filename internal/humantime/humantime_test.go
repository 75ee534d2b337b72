package humantime

import (
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.Local)
	for _, tc := range []struct {
		t           time.Time
		clock, msec string
	}{
		{now.Add(-1500 * time.Millisecond), "11:59:58", "11:59:58.500"},
		{time.Date(2026, 11, 24, 0, 0, 0, 0, time.Local), "00:00:00", "00:00:00.000"},
		{now.Add(-72 * time.Hour), "Nov 21 12:00:00", "Nov 21 12:00:00.000"},
		{now.Add(24 * time.Hour), "Nov 25 12:00:00", "Nov 25 12:00:00.000"}, // a clock ahead
		{time.Date(2025, 12, 31, 23, 0, 0, 0, time.Local), "2025 Dec 31 23:00:00", "2025 Dec 31 23:00:00.000"},
	} {
		if got := Clock(tc.t, now); got != tc.clock {
			t.Errorf("Clock(%v) = %q, want %q", tc.t, got, tc.clock)
		}
		if got := ClockMilli(tc.t, now); got != tc.msec {
			t.Errorf("ClockMilli(%v) = %q, want %q", tc.t, got, tc.msec)
		}
	}
}
