// Command chalk-log-writer keeps a sandbox init's output in a log file of bounded size, for
// @chalk/sandbox: the output arrives on stdin (a pipe from `runsc run`), is appended to PATH, and
// when PATH would grow past MAX bytes the writer renames it to PATH.1 (replacing the older one) and
// starts a new PATH. So PATH and PATH.1 together never hold more than 2 × MAX bytes, at any moment,
// and they hold the newest output. Built statically beside runsc by tooling/gvisor/build.sh; it
// runs in the detached wrapper that outlives the server, for as long as the sandbox does.
//
//	usage: chalk-log-writer MAX PATH
//
// A reader that keeps PATH open while it is renamed reads on to the end of that file, then opens
// the new PATH: no byte is lost at a rotation. Write errors (a full disk) drop output rather than
// stall the sandbox; the writer reads its input to EOF whatever happens, and exits 0 then.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: chalk-log-writer MAX PATH")
		os.Exit(2)
	}
	max, err := strconv.ParseInt(os.Args[1], 10, 64)
	if err != nil || max < 1 {
		fmt.Fprintf(os.Stderr, "chalk-log-writer: MAX %q: want a number of bytes above 0\n", os.Args[1])
		os.Exit(2)
	}
	w := &writer{path: os.Args[2], max: max}
	w.open()
	buf := make([]byte, 64*1024)
	for {
		n, err := os.Stdin.Read(buf)
		if n > 0 {
			w.write(buf[:n])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "chalk-log-writer: reading: %v\n", err)
			break
		}
	}
	if w.file != nil {
		_ = w.file.Close()
	}
}

type writer struct {
	path string
	max  int64
	file *os.File
	size int64
}

// open appends to PATH (created 0600: logs may hold what the program printed of its secrets).
func (w *writer) open() {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chalk-log-writer: %v\n", err)
		w.file, w.size = nil, 0
		return
	}
	w.file = f
	w.size = 0
	if st, err := f.Stat(); err == nil {
		w.size = st.Size()
	}
}

// write appends p, rotating whenever PATH is full; a chunk larger than what is left is split.
func (w *writer) write(p []byte) {
	for len(p) > 0 {
		if w.size >= w.max {
			w.rotate()
		}
		n := int64(len(p))
		if room := w.max - w.size; n > room {
			n = room
		}
		if w.file != nil {
			if _, err := w.file.Write(p[:n]); err != nil {
				// Dropped (a full disk): the sandbox must not stall on its log.
				fmt.Fprintf(os.Stderr, "chalk-log-writer: %v\n", err)
			}
		}
		w.size += n
		p = p[n:]
	}
}

// rotate renames PATH over PATH.1 and starts a new PATH.
func (w *writer) rotate() {
	if w.file != nil {
		_ = w.file.Close()
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil && !os.IsNotExist(err) {
		fmt.Fprintf(os.Stderr, "chalk-log-writer: %v\n", err)
	}
	w.open()
	// A file that could not be reopened still counts as empty: the next chunk tries again.
	if w.file == nil {
		w.size = 0
	}
}
