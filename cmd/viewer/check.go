package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"camhub/internal/replay"
	"camhub/viewer"
)

// checkRewind checks the grid's rewind flags.
func (o *options) checkRewind(fs *pflag.FlagSet) error {
	switch {
	case o.since != 0 && !o.at.t.IsZero():
		return errors.New("--since and --at both say where to start: give one")
	case o.since < 0:
		return fmt.Errorf("--since %v: must be positive, such as 20s", o.since)
	case o.at.t.After(time.Now()):
		return fmt.Errorf("--at %s is in the future; the replay buffer holds the past", o.at.String())
	case fs.Changed("speed") && !o.rewinding():
		return errors.New("--speed applies to a rewind only: give --since or --at too")
	case !(o.speed >= replay.MinSpeed && o.speed <= replay.MaxSpeed):
		return fmt.Errorf("--speed %v: must be from %v to %v (1 is real time, 2 twice as fast)", o.speed, replay.MinSpeed, replay.MaxSpeed)
	}
	return nil
}

// rewinding reports whether the grid starts in the past.
func (o *options) rewinding() bool { return o.since > 0 || !o.at.t.IsZero() }

// checkTargets checks the cameras and files of an export or a snapshot.
func (o *options) checkTargets(fs *pflag.FlagSet, what string) error {
	if fs.Changed("cam") && fs.Changed("cams") {
		return errors.New("--cam and --cams both name the cameras: give one")
	}
	if fs.Changed("out") && fs.Changed("out-dir") {
		return errors.New("--out and --out-dir both say where to write: give one")
	}
	if o.cam != "" {
		// a camera named for this run wins over cams from the file
		o.cams = []string{o.cam}
		if err := viewer.CheckCams(o.cams); err != nil {
			return fmt.Errorf("--cam: %w", err)
		}
	}
	switch {
	case len(o.cams) == 0:
		return errors.New("which camera? give --cam ID (or --cams ID,ID... with --out-dir DIR); `viewer list` shows them")
	case o.out != "" && len(o.cams) > 1:
		return fmt.Errorf("--out names one file, for one camera, but the cameras are %s: give --cam ID, or --out-dir DIR to %s them all",
			strings.Join(o.cams, ","), what)
	case o.out == "" && o.outDir == "":
		return errors.New("where to? give --out FILE or --out-dir DIR")
	case o.out != "" && fs.Changed("format"):
		return errors.New("--format applies with --out-dir; with --out the file name's extension (.mp4 or .avi) chooses the format")
	}
	return nil
}

// checkRange checks an export's time range.
func (o *options) checkRange() error {
	switch {
	case o.since != 0 && (!o.from.t.IsZero() || !o.to.t.IsZero()):
		return errors.New("--since cannot be combined with --from or --to: give --since (up to now) or --from and --to")
	case o.since < 0:
		return fmt.Errorf("--since %v: must be positive, such as 60s", o.since)
	case !o.from.t.IsZero() && !o.to.t.IsZero() && o.from.t.After(o.to.t):
		return fmt.Errorf("--from %s is after --to %s", o.from.String(), o.to.String())
	}
	return nil
}
