// Package atomicfile writes files that appear complete or not at all: the
// data goes to a temporary file in the same directory, which a rename puts
// in place at the end.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// create creates an empty file in path's directory whose name ends with
// path's extension (video writers choose the container by it), so that
// rename can put it in place. It fails with a clear error if the directory
// does not exist or cannot be written.
func create(path string) (*os.File, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ext := filepath.Ext(base)
	f, err := os.CreateTemp(dir, "."+strings.TrimSuffix(base, ext)+"-*.part"+ext)
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: directory %s: %w", path, dir, unwrapPathError(err))
	}
	return f, nil
}

// Pending is a file being written through a temporary file: Commit puts it
// in place, Discard (safe to defer: it does nothing after a Commit) removes
// it. Write to the embedded *os.File, or close it and write by Name (a
// video writer that opens the file itself).
type Pending struct {
	*os.File
	path      string
	committed bool
}

// New reserves a temporary file for path, as create does.
func New(path string) (*Pending, error) {
	f, err := create(path)
	if err != nil {
		return nil, err
	}
	return &Pending{File: f, path: path}, nil
}

// Commit closes the file (if it is still open) and puts it in place at
// the path given to New, readable by everyone.
func (p *Pending) Commit() error {
	if err := p.File.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("writing %s: %w", p.path, err)
	}
	if err := rename(p.Name(), p.path); err != nil {
		return err
	}
	p.committed = true
	return nil
}

// Discard closes and removes the temporary file unless it was committed.
func (p *Pending) Discard() {
	if p.committed {
		return
	}
	p.File.Close()
	os.Remove(p.Name())
}

// unwrapPathError drops the temporary name from an *os.PathError, which
// would only confuse: the user never asked for that file.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// WriteFile writes data to path through a temporary file in the same
// directory and a rename.
func WriteFile(path string, data []byte) error { return WriteFileMode(path, data, 0o644) }

// rename puts tmp, a file made by create and written, in place at path,
// readable by everyone.
func rename(tmp, path string) error {
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, unwrapLinkError(err))
	}
	return nil
}

// unwrapLinkError drops the temporary name from a failed rename.
func unwrapLinkError(err error) error {
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// WriteFileMode is WriteFile for a file of the given mode (e.g. 0600 for
// a secret): the temporary file has that mode before any byte is written.
func WriteFileMode(path string, data []byte, mode os.FileMode) (err error) {
	f, err := create(path)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, unwrapLinkError(err))
	}
	return nil
}
