// Command chalk-fs-agent serves the files API of one container from inside it: the server starts it
// once per container, on first use, as a process of the container (so every path is the
// container's own and every access has the container's permissions), and speaks a framed protocol
// with it over its stdin and stdout. Built statically beside runsc by tooling/gvisor/build.sh.
//
// A frame is a 4-byte big-endian header length, a 4-byte big-endian body length, the header (JSON)
// and the body (bytes). Headers are at most 64 KiB, bodies at most 1 MiB. Requests carry an id;
// every answer carries the id of its request.
//
//	stat   {path}                      -> {stat}
//	list   {path}                      -> {entries: [stat...]}
//	mkdir  {path, parents, mode}       -> {}
//	remove {path, recursive}           -> {}
//	rename {path, to}                  -> {}
//	read   {path, window}              -> {chunk} + body, ..., then {done}; at most `window` chunks
//	                                      unacknowledged ({op: "ack"} grants one more)
//	write  {path, mode}, data + body..., close -> {stat} (written to a temporary file beside the
//	                                      target, renamed over it on close; cancel removes it)
//	watch  {path}                      -> {event: {type: create|modify|delete, path}}... until cancel
//	cancel {}                          -> ends a read, write or watch of that id
//
// An error answers {error: {code, message}} with a gRPC code name: not_found, permission_denied,
// already_exists, failed_precondition (also any other errno), invalid_argument, resource_exhausted.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
)

const (
	maxHeader = 64 << 10
	maxBody   = 1 << 20
	chunkSize = 256 << 10
)

type request struct {
	ID        uint64 `json:"id"`
	Op        string `json:"op"`
	Path      string `json:"path,omitempty"`
	To        string `json:"to,omitempty"`
	Parents   bool   `json:"parents,omitempty"`
	Recursive bool   `json:"recursive,omitempty"`
	Mode      uint32 `json:"mode,omitempty"`
	Window    int    `json:"window,omitempty"`
}

type stat struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Size    int64  `json:"size"`
	Mode    uint32 `json:"mode"`
	MtimeMs int64  `json:"mtimeMs"`
	Target  string `json:"target,omitempty"`
}

type event struct {
	Type string `json:"type"`
	Path string `json:"path"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type answer struct {
	ID      uint64     `json:"id"`
	Error   *errorBody `json:"error,omitempty"`
	Stat    *stat      `json:"stat,omitempty"`
	Entries []stat     `json:"entries,omitempty"`
	Chunk   bool       `json:"chunk,omitempty"`
	Done    bool       `json:"done,omitempty"`
	Event   *event     `json:"event,omitempty"`
}

// out serialises frames onto stdout.
type out struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (o *out) send(a answer, body []byte) {
	h, _ := json.Marshal(a)
	o.mu.Lock()
	defer o.mu.Unlock()
	var lens [8]byte
	binary.BigEndian.PutUint32(lens[0:4], uint32(len(h)))
	binary.BigEndian.PutUint32(lens[4:8], uint32(len(body)))
	o.w.Write(lens[:])
	o.w.Write(h)
	o.w.Write(body)
	if err := o.w.Flush(); err != nil {
		os.Exit(0) // the server went away
	}
}

func readFrame(r io.Reader) (request, []byte, error) {
	var lens [8]byte
	if _, err := io.ReadFull(r, lens[:]); err != nil {
		return request{}, nil, err
	}
	hl, bl := binary.BigEndian.Uint32(lens[0:4]), binary.BigEndian.Uint32(lens[4:8])
	if hl > maxHeader || bl > maxBody {
		return request{}, nil, fmt.Errorf("frame too large: header %d, body %d", hl, bl)
	}
	buf := make([]byte, int(hl)+int(bl))
	if _, err := io.ReadFull(r, buf); err != nil {
		return request{}, nil, err
	}
	var req request
	if err := json.Unmarshal(buf[:hl], &req); err != nil {
		return request{}, nil, fmt.Errorf("bad header: %w", err)
	}
	return req, buf[hl:], nil
}

// codeOf maps an error of the file system to a gRPC code name.
func codeOf(err error) string {
	var errno syscall.Errno
	switch {
	// Before ErrExist, which ENOTEMPTY also matches.
	case errors.As(err, &errno) && (errno == syscall.ENOTDIR || errno == syscall.EISDIR || errno == syscall.ENOTEMPTY || errno == syscall.EXDEV || errno == syscall.EBUSY):
		return "failed_precondition"
	case errors.Is(err, fs.ErrNotExist):
		return "not_found"
	case errors.Is(err, fs.ErrPermission), errors.As(err, &errno) && errno == syscall.EROFS:
		return "permission_denied"
	case errors.Is(err, fs.ErrExist):
		return "already_exists"
	case errors.As(err, &errno) && (errno == syscall.ENOSPC || errno == syscall.EDQUOT):
		return "resource_exhausted"
	case errors.As(err, &errno) && (errno == syscall.EINVAL || errno == syscall.ENAMETOOLONG || errno == syscall.ELOOP):
		return "invalid_argument"
	}
	// Any other errno is a state of the container's file system the caller cannot change by
	// retrying the same request (EIO, ENXIO...): never an internal error of the server.
	return "failed_precondition"
}

func failure(id uint64, err error) answer {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = fmt.Sprintf("%s %s: %s", pe.Op, pe.Path, pe.Err.Error())
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		msg = fmt.Sprintf("%s %s %s: %s", le.Op, le.Old, le.New, le.Err.Error())
	}
	return answer{ID: id, Error: &errorBody{Code: codeOf(err), Message: msg}}
}

func statOf(name string, info fs.FileInfo, full string) stat {
	s := stat{Name: name, Size: info.Size(), Mode: uint32(info.Mode().Perm()), MtimeMs: info.ModTime().UnixMilli()}
	switch m := info.Mode(); {
	case m.IsRegular():
		s.Type = "file"
	case m.IsDir():
		s.Type = "directory"
	case m&fs.ModeSymlink != 0:
		s.Type = "symlink"
		s.Target, _ = os.Readlink(full)
	default:
		s.Type = "other"
	}
	return s
}

type agent struct {
	out     *out
	mu      sync.Mutex
	credits map[uint64]chan struct{} // reads: one token per chunk the server may still take
	writes  map[uint64]*os.File      // writes in progress
	targets map[uint64]string
	cancels map[uint64]chan struct{} // watches
}

func main() {
	a := &agent{
		out:     &out{w: bufio.NewWriterSize(os.Stdout, 64<<10)},
		credits: map[uint64]chan struct{}{},
		writes:  map[uint64]*os.File{},
		targets: map[uint64]string{},
		cancels: map[uint64]chan struct{}{},
	}
	in := bufio.NewReaderSize(os.Stdin, 64<<10)
	for {
		req, body, err := readFrame(in)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintln(os.Stderr, "chalk-fs-agent:", err)
				os.Exit(2)
			}
			a.abortAll()
			return
		}
		a.handle(req, body)
	}
}
