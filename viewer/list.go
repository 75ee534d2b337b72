package viewer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"camhub/internal/camlist"
	"camhub/internal/humantime"
	"camhub/internal/wire"
)

// PrintList reads the hub's camera list and writes it to w as a table, or
// as JSON. It returns camlist.ErrNoHub if the server has no camhub streams.
func PrintList(ctx context.Context, js jetstream.JetStream, w io.Writer, asJSON bool) error {
	now := time.Now()
	cams, err := camlist.List(ctx, js, now)
	if err != nil {
		return err
	}
	if asJSON {
		return WriteJSON(w, cams)
	}
	return WriteTable(w, cams, now)
}

// WriteJSON writes the camera list as a JSON array of camlist.Entry.
func WriteJSON(w io.Writer, cams []camlist.Camera) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(camlist.Entries(cams))
}

// WriteTable writes the camera list as a table, with last-seen times
// relative to now.
func WriteTable(w io.Writer, cams []camlist.Camera, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// The SITE column shows once any camera says where it is, so a
	// single-site list keeps its columns.
	sites := false
	for _, c := range cams {
		sites = sites || c.Site != ""
	}
	if sites {
		fmt.Fprint(tw, "ID\tSITE\t")
	} else {
		fmt.Fprint(tw, "ID\t")
	}
	fmt.Fprintln(tw, "STATE\tFPS\tSIZE\tHOST\tLAST SEEN")
	for _, c := range cams {
		size := "-"
		if c.Width > 0 && c.Height > 0 {
			size = fmt.Sprintf("%dx%d", c.Width, c.Height)
		}
		state := c.Entry().State
		if state == wire.StateSourceError && c.Error != "" {
			state += " (" + c.Error + ")"
		}
		// Every text an agent reports is escaped: a terminal must not
		// take a report's control characters as commands.
		fmt.Fprintf(tw, "%s\t", Printable(c.ID))
		if sites {
			fmt.Fprintf(tw, "%s\t", dash(Printable(c.Site)))
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\n", Printable(state), c.FPS, size, dash(Printable(c.Host)), lastSeen(c.LastSeen, now))
	}
	return tw.Flush()
}

// Printable escapes what a terminal would act on or hide in s: control
// characters (escape sequences, tabs, newlines), Unicode format characters
// (such as bidirectional overrides) and invalid UTF-8, as Go escapes them
// (\x1b, \u202e).
func Printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// lastSeen writes a time as "2s ago (15:04:05)".
func lastSeen(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%s ago (%s)", ago(now.Sub(t)), humantime.Clock(t, now))
}

// ago writes a duration the way people say it: "2s", "5m", "3h", "2d".
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}
