package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"camhub/internal/h264"
	"camhub/internal/mpegts"
	"camhub/internal/natsconn"
)

// CommandPrefix starts a command source: --source 'exec:CMD ARGS...' runs
// CMD (found on PATH) with ARGS and reads H.264 in MPEG-TS from its
// standard output. The words are split on spaces; single or double quotes
// keep spaces in a word. No shell runs it: for pipes or variables, say so
// with exec:sh -c '...'.
const CommandPrefix = "exec:"

// splitCommand splits a command line into words: spaces separate them,
// and single or double quotes group (a quote of the other kind inside is
// kept). There are no escapes.
func splitCommand(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	in := false // inside a word
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			w.WriteByte(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c quote", quote)
	}
	if in {
		words = append(words, w.String())
	}
	if len(words) == 0 {
		return nil, errors.New("no command")
	}
	return words, nil
}

// command is a running command source: the command and the MPEG-TS
// reader of its standard output.
type command struct {
	name   string // for errors: the program's name
	cmd    *exec.Cmd
	ts     *mpegts.Source
	stderr *tail
	once   sync.Once
	err    error // how the command ended, once closed
}

// startCommand starts src's command and waits, at most timeout, for its
// H.264 track.
func startCommand(ctx context.Context, src Source, timeout time.Duration, log *slog.Logger) (*command, error) {
	args, err := splitCommand(src.Path) // checked by ParseSource
	if err != nil {
		return nil, err
	}
	c := &command{name: args[0], stderr: &tail{max: 1024}}
	c.cmd = exec.Command(args[0], args[1:]...)
	c.cmd.Stderr = c.stderr
	// its own process group, so that stopping it stops what it started
	// too (sh -c ...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.cmd.WaitDelay = 2 * time.Second // a grandchild holding the pipes open cannot stall Wait
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", src, err)
	}
	octx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.ts, err = mpegts.Open(octx, out, mpegts.Options{Queue: mpegtsQueue, Logger: log})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no H.264 within %v", timeout)
		}
		c.stop()
		return nil, fmt.Errorf("%s: %w%s", src, err, c.ended())
	}
	return c, nil
}

// Read returns the next access unit. When the command's output ends, the
// error says how the command ended and the last of what it wrote to its
// standard error.
func (c *command) Read(ctx context.Context) (h264.AccessUnit, error) {
	au, err := c.ts.Read(ctx)
	if err != nil && ctx.Err() == nil {
		c.stop()
		return au, fmt.Errorf("command %s: %w%s", c.name, err, c.ended())
	}
	return au, err
}

// Close kills the command and waits for it.
func (c *command) Close() error {
	c.stop()
	return nil
}

func (c *command) stop() {
	c.once.Do(func() {
		// the group may be gone already: the error does not matter
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		if c.ts != nil {
			c.ts.Close()
		}
		c.err = c.cmd.Wait()
	})
}

// ended says how the command ended, for an error, once stopped.
func (c *command) ended() string {
	var b strings.Builder
	if c.err != nil {
		b.WriteString(" (" + c.err.Error() + ")")
	}
	if s := strings.TrimSpace(c.stderr.String()); s != "" {
		// the command line may hold a camera's password, and so may
		// what it says
		b.WriteString("; it wrote: " + natsconn.RedactURL(s))
	}
	return b.String()
}

// tail keeps the last max bytes written to it, for the end of a command's
// standard error.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
