"""PTY relay for @chalk/sandbox.

runsc gives a process with `terminal: true` the terminal on runsc's own stdio, and Node cannot open
a pseudo-terminal. This relay opens one, runs the given command (runsc exec) on its slave side as a
session leader with it as controlling terminal, and copies bytes between the master and its own
stdin/stdout. Lines "COLS ROWS" on fd 3 resize the terminal; EOF on stdin sends the terminal's EOF
character. It exits with the command's exit status.

usage: pty-relay.py COLS ROWS COMMAND [ARG...]
"""
import fcntl, os, pty, select, struct, sys, termios

cols, rows, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
master, slave = pty.openpty()


def resize(c, r):
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", r, c, 0, 0))


resize(cols, rows)
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(master)
    os.close(slave)
    os.closerange(3, 256)
    os.execvp(argv[0], argv)
os.close(slave)

control = 3
inputs = {master, 0, control}
ctl_buf = b""
while master in inputs:
    try:
        ready, _, _ = select.select(list(inputs), [], [])
    except InterruptedError:
        continue
    if master in ready:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if not data:
            break
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]
    if 0 in ready:
        data = os.read(0, 65536)
        if data:
            os.write(master, data)
        else:
            os.write(master, b"\x04")
            inputs.discard(0)
    if control in ready:
        data = os.read(control, 4096)
        if not data:
            inputs.discard(control)
        ctl_buf += data
        while b"\n" in ctl_buf:
            line, ctl_buf = ctl_buf.split(b"\n", 1)
            c, r = line.split()
            resize(int(c), int(r))
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
