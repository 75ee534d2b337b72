// Package humantime writes times for people: the clock in local time, with
// the date only when it is not today's.
package humantime

import "time"

// Clock writes t as a local clock time, "15:04:05", with the date when t is
// not on now's day: "Nov 21 15:04:05".
func Clock(t, now time.Time) string { return clock(t, now, "15:04:05") }

// ClockMilli is Clock to the millisecond: "15:04:05.000".
func ClockMilli(t, now time.Time) string { return clock(t, now, "15:04:05.000") }

func clock(t, now time.Time, layout string) string {
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format(layout)
	}
	if t.Year() != now.Year() {
		return t.Format("2006 Jan 2 " + layout)
	}
	return t.Format("Jan 2 " + layout)
}
