package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// checkPath refuses what is not an absolute, clean path.
func checkPath(p string) error {
	if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return &os.PathError{Op: "check", Path: p, Err: syscall.EINVAL}
	}
	return nil
}

func (a *agent) handle(req request, body []byte) {
	switch req.Op {
	case "ack":
		a.mu.Lock()
		c := a.credits[req.ID]
		a.mu.Unlock()
		if c != nil {
			select {
			case c <- struct{}{}:
			default:
			}
		}
		return
	case "data":
		a.writeData(req.ID, body)
		return
	case "close":
		a.closeWrite(req.ID)
		return
	case "cancel":
		a.cancel(req.ID)
		return
	}
	if err := checkPath(req.Path); err != nil {
		a.out.send(failure(req.ID, err), nil)
		return
	}
	switch req.Op {
	case "stat":
		info, err := os.Lstat(req.Path)
		if err != nil {
			a.out.send(failure(req.ID, err), nil)
			return
		}
		s := statOf(filepath.Base(req.Path), info, req.Path)
		a.out.send(answer{ID: req.ID, Stat: &s}, nil)
	case "list":
		go a.list(req)
	case "mkdir":
		mode := os.FileMode(req.Mode)
		if mode == 0 {
			mode = 0o755
		}
		var err error
		if req.Parents {
			err = os.MkdirAll(req.Path, mode)
		} else {
			err = os.Mkdir(req.Path, mode)
		}
		a.reply(req.ID, err)
	case "remove":
		if req.Path == "/" {
			a.out.send(failure(req.ID, &os.PathError{Op: "remove", Path: "/", Err: syscall.EINVAL}), nil)
			return
		}
		if _, err := os.Lstat(req.Path); err != nil {
			a.reply(req.ID, err)
			return
		}
		if req.Recursive {
			a.reply(req.ID, os.RemoveAll(req.Path))
		} else {
			a.reply(req.ID, os.Remove(req.Path))
		}
	case "rename":
		if err := checkPath(req.To); err != nil {
			a.out.send(failure(req.ID, err), nil)
			return
		}
		a.reply(req.ID, os.Rename(req.Path, req.To))
	case "read":
		a.startRead(req)
	case "write":
		a.startWrite(req)
	case "watch":
		a.startWatch(req)
	default:
		a.out.send(answer{ID: req.ID, Error: &errorBody{Code: "invalid_argument", Message: fmt.Sprintf("unknown op %q", req.Op)}}, nil)
	}
}

func (a *agent) reply(id uint64, err error) {
	if err != nil {
		a.out.send(failure(id, err), nil)
		return
	}
	a.out.send(answer{ID: id, Done: true}, nil)
}

func (a *agent) list(req request) {
	entries, err := os.ReadDir(req.Path)
	if err != nil {
		a.out.send(failure(req.ID, err), nil)
		return
	}
	list := make([]stat, 0, len(entries))
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		list = append(list, statOf(e.Name(), info, filepath.Join(req.Path, e.Name())))
	}
	a.out.send(answer{ID: req.ID, Entries: list, Done: true}, nil)
}

func (a *agent) startRead(req request) {
	f, err := os.Open(req.Path)
	if err != nil {
		a.out.send(failure(req.ID, err), nil)
		return
	}
	if info, err := f.Stat(); err == nil && info.IsDir() {
		f.Close()
		a.out.send(failure(req.ID, &os.PathError{Op: "read", Path: req.Path, Err: syscall.EISDIR}), nil)
		return
	}
	window := req.Window
	if window < 1 || window > 64 {
		window = 4
	}
	credits := make(chan struct{}, 64)
	for i := 0; i < window; i++ {
		credits <- struct{}{}
	}
	cancelled := make(chan struct{})
	a.mu.Lock()
	a.credits[req.ID] = credits
	a.cancels[req.ID] = cancelled
	a.mu.Unlock()
	go func() {
		defer f.Close()
		defer a.forget(req.ID)
		buf := make([]byte, chunkSize)
		for {
			select {
			case <-credits:
			case <-cancelled:
				return
			}
			n, err := io.ReadFull(f, buf)
			if n > 0 {
				a.out.send(answer{ID: req.ID, Chunk: true}, buf[:n])
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				a.out.send(answer{ID: req.ID, Done: true}, nil)
				return
			}
			if err != nil {
				a.out.send(failure(req.ID, err), nil)
				return
			}
		}
	}()
}

func (a *agent) startWrite(req request) {
	mode := os.FileMode(req.Mode)
	if mode == 0 {
		mode = 0o644
	}
	if info, err := os.Stat(req.Path); err == nil && info.IsDir() {
		a.out.send(failure(req.ID, &os.PathError{Op: "write", Path: req.Path, Err: syscall.EISDIR}), nil)
		return
	}
	dir, base := filepath.Split(req.Path)
	f, err := os.CreateTemp(dir, "."+base+".chalk-*")
	if err != nil {
		// Name the target, not the temporary file.
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = &os.PathError{Op: "write", Path: req.Path, Err: pe.Err}
		}
		a.out.send(failure(req.ID, err), nil)
		return
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(f.Name())
		a.out.send(failure(req.ID, err), nil)
		return
	}
	a.mu.Lock()
	a.writes[req.ID] = f
	a.targets[req.ID] = req.Path
	a.mu.Unlock()
	a.out.send(answer{ID: req.ID}, nil) // ready for data
}

func (a *agent) takeWrite(id uint64) (*os.File, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, target := a.writes[id], a.targets[id]
	delete(a.writes, id)
	delete(a.targets, id)
	return f, target
}

func (a *agent) writeData(id uint64, body []byte) {
	a.mu.Lock()
	f := a.writes[id]
	a.mu.Unlock()
	if f == nil {
		return // failed or cancelled already
	}
	if _, err := f.Write(body); err != nil {
		f, target := a.takeWrite(id)
		f.Close()
		os.Remove(f.Name())
		a.out.send(failure(id, &os.PathError{Op: "write", Path: target, Err: errors.Unwrap(err)}), nil)
	}
}

func (a *agent) closeWrite(id uint64) {
	f, target := a.takeWrite(id)
	if f == nil {
		return
	}
	err := f.Close()
	if err == nil {
		err = os.Rename(f.Name(), target)
	}
	if err != nil {
		os.Remove(f.Name())
		a.out.send(failure(id, err), nil)
		return
	}
	info, err := os.Lstat(target)
	if err != nil {
		a.out.send(failure(id, err), nil)
		return
	}
	s := statOf(filepath.Base(target), info, target)
	a.out.send(answer{ID: id, Stat: &s, Done: true}, nil)
}

func (a *agent) forget(id uint64) {
	a.mu.Lock()
	delete(a.credits, id)
	delete(a.cancels, id)
	a.mu.Unlock()
}

func (a *agent) cancel(id uint64) {
	if f, _ := a.takeWrite(id); f != nil {
		f.Close()
		os.Remove(f.Name())
	}
	a.mu.Lock()
	c := a.cancels[id]
	delete(a.cancels, id)
	a.mu.Unlock()
	if c != nil {
		close(c)
	}
}

// abortAll removes the temporary files of writes that never closed (the server went away).
func (a *agent) abortAll() {
	a.mu.Lock()
	ids := make([]uint64, 0, len(a.writes))
	for id := range a.writes {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	for _, id := range ids {
		a.cancel(id)
	}
}
