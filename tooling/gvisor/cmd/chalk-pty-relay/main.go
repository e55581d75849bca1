// Command chalk-pty-relay runs a command (a `runsc exec` of a `terminal: true` process) on a new
// pseudo-terminal and relays it over plain pipes, for @chalk/sandbox: Node.js can neither open a
// pseudo-terminal nor receive one's file descriptor over a unix socket (runsc's --console-socket).
// Built statically beside runsc by tooling/gvisor/build.sh, with the same pinned Go module.
//
//	usage: chalk-pty-relay COLS ROWS COMMAND [ARG...]
//
//	fd 0  keystrokes for the terminal; its EOF sends the terminal's EOF character (^D)
//	fd 1  what the terminal shows (the process's stdout and stderr)
//	fd 2  the relay's own failures only
//	fd 3  control (optional, a socket): lines "COLS ROWS" resize the terminal; after each
//	      resize the relay writes "\n" back, so the caller can order a resize before later input
//
// The command runs as a session leader with the terminal as its controlling terminal. The relay
// exits with the command's exit code, or 128+N when signal N ended it.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/creack/pty"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: chalk-pty-relay COLS ROWS COMMAND [ARG...]")
		os.Exit(2)
	}
	size, err := parseSize(os.Args[1], os.Args[2])
	if err != nil {
		fail(err)
	}
	cmd := exec.Command(os.Args[3], os.Args[4:]...)
	terminal, err := pty.StartWithSize(cmd, size)
	if err != nil {
		fail(fmt.Errorf("starting %s on a pseudo-terminal: %w", os.Args[3], err))
	}

	go func() {
		// Keystrokes, then the terminal's EOF character once the caller closes our stdin.
		_, _ = io.Copy(terminal, os.Stdin)
		_, _ = terminal.Write([]byte{4})
	}()
	if control := os.NewFile(3, "control"); control != nil {
		go resizeFrom(control, terminal)
	}

	// Everything the terminal shows, until the last holder of its other end closes it (EIO).
	if _, err := io.Copy(os.Stdout, terminal); err != nil && !errors.Is(err, syscall.EIO) {
		fmt.Fprintf(os.Stderr, "chalk-pty-relay: reading the terminal: %v\n", err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(exit.ExitCode())
	default:
		fail(err)
	}
}

// resizeFrom applies each "COLS ROWS" line read from control to the terminal.
func resizeFrom(control *os.File, terminal *os.File) {
	lines := bufio.NewScanner(control)
	for lines.Scan() {
		var cols, rows string
		if _, err := fmt.Sscan(lines.Text(), &cols, &rows); err != nil {
			continue
		}
		if size, err := parseSize(cols, rows); err == nil {
			_ = pty.Setsize(terminal, size)
		}
		// Acknowledge: input the caller sends after this has seen the new size.
		_, _ = control.Write([]byte("\n"))
	}
}

func parseSize(cols, rows string) (*pty.Winsize, error) {
	c, err1 := strconv.ParseUint(cols, 10, 16)
	r, err2 := strconv.ParseUint(rows, 10, 16)
	if err1 != nil || err2 != nil || c == 0 || r == 0 {
		return nil, fmt.Errorf("terminal size %q x %q: want two numbers from 1 to 65535", cols, rows)
	}
	return &pty.Winsize{Cols: uint16(c), Rows: uint16(r)}, nil
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "chalk-pty-relay: %v\n", err)
	os.Exit(127)
}
