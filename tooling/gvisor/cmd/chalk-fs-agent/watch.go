package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
)

// startWatch streams create, modify and delete events of a directory's entries (or of one file)
// through inotify, until cancelled.
func (a *agent) startWatch(req request) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		a.out.send(failure(req.ID, os.NewSyscallError("inotify_init1", err)), nil)
		return
	}
	mask := uint32(syscall.IN_CREATE | syscall.IN_MOVED_TO | syscall.IN_CLOSE_WRITE | syscall.IN_MODIFY |
		syscall.IN_DELETE | syscall.IN_MOVED_FROM | syscall.IN_DELETE_SELF | syscall.IN_MOVE_SELF)
	if _, err := syscall.InotifyAddWatch(fd, req.Path, mask); err != nil {
		syscall.Close(fd)
		a.out.send(failure(req.ID, &os.PathError{Op: "watch", Path: req.Path, Err: err}), nil)
		return
	}
	cancelled := make(chan struct{})
	a.mu.Lock()
	a.cancels[req.ID] = cancelled
	a.mu.Unlock()
	a.out.send(answer{ID: req.ID}, nil) // watching
	go func() {
		<-cancelled
		syscall.Close(fd) // ends the read below
	}()
	go func() {
		defer a.forget(req.ID)
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if err != nil || n <= 0 {
				select {
				case <-cancelled:
				default:
					a.out.send(answer{ID: req.ID, Done: true}, nil)
				}
				return
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				mask := binary.LittleEndian.Uint32(buf[off+4 : off+8])
				nameLen := int(binary.LittleEndian.Uint32(buf[off+12 : off+16]))
				name := ""
				if nameLen > 0 {
					raw := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+nameLen]
					for i, b := range raw {
						if b == 0 {
							raw = raw[:i]
							break
						}
					}
					name = string(raw)
				}
				off += syscall.SizeofInotifyEvent + nameLen
				path := req.Path
				if name != "" {
					path = filepath.Join(req.Path, name)
				}
				var kind string
				switch {
				case mask&(syscall.IN_CREATE|syscall.IN_MOVED_TO) != 0:
					kind = "create"
				case mask&(syscall.IN_DELETE|syscall.IN_MOVED_FROM|syscall.IN_DELETE_SELF|syscall.IN_MOVE_SELF) != 0:
					kind = "delete"
				case mask&(syscall.IN_MODIFY|syscall.IN_CLOSE_WRITE) != 0:
					kind = "modify"
				default:
					continue
				}
				a.out.send(answer{ID: req.ID, Event: &event{Type: kind, Path: path}}, nil)
			}
		}
	}()
}
