/**
 * A TCP server in perl (minbase has perl-base, not python) that the port-forwarding tests and the
 * benchmark run inside a container; one process per connection. The first line picks the mode:
 *
 * - `GET /hello …` (HTTP): a short text body; `GET /FILE …`: the file's bytes with its length.
 * - `ECHO`: echoes every byte until the client half-closes, then writes `TOTAL n` and closes (a
 *   client→container half-close that arrives as a FIN while the container can still write).
 * - `CLOSE`: closes at once, while the client may still be writing.
 * - `SHUT`: writes `bye`, half-closes its side (FIN), then reads until the client's FIN and writes
 *   what it read to `/tmp/after-shut` (a container→client half-close while the client can still
 *   write).
 */
export const PERL_FORWARD_SERVER = String.raw`
use strict; use IO::Socket::INET; use Socket;
$SIG{CHLD} = 'IGNORE';
my $l = IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => $ARGV[0], Listen => 128, ReuseAddr => 1) or die "listen: $!";
print "listening\n"; STDOUT->flush();
sub wr { my ($c, $d) = @_; my $o = 0; while ($o < length $d) { my $w = syswrite($c, $d, length($d) - $o, $o); exit 1 unless defined $w; $o += $w; } }
sub line { my ($c) = @_; my $s = ""; while (1) { my $n = sysread($c, my $ch, 1); return $s if !$n; $s .= $ch; return $s if $ch eq "\n"; } }
while (1) {
  my $c = $l->accept() or next;
  my $pid = fork();
  if ($pid) { close $c; next; }
  close $l;
  my $first = line($c);
  if ($first =~ m{^GET (\S+)}) {
    my $path = $1;
    while (1) { my $h = line($c); last if $h eq "" || $h =~ /^\r?\n$/; }
    if ($path eq "/hello") {
      my $b = "hello from the container\n";
      wr($c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " . length($b) . "\r\nConnection: close\r\n\r\n$b");
    } elsif (open(my $f, "<", $path)) {
      binmode $f; my $size = -s $f;
      wr($c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: $size\r\nConnection: close\r\n\r\n");
      while (sysread($f, my $buf, 262144)) { wr($c, $buf); }
    } else {
      wr($c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
  } elsif ($first eq "ECHO\n") {
    my $n = 0;
    while (my $r = sysread($c, my $buf, 65536)) { $n += $r; wr($c, $buf); }
    wr($c, "TOTAL $n\n");
  } elsif ($first eq "CLOSE\n") {
    # Closes at once, unread bytes and all: the client's further writes meet a reset.
  } elsif ($first eq "SHUT\n") {
    wr($c, "bye\n");
    shutdown($c, 1);
    my $got = "";
    while (sysread($c, my $buf, 65536)) { $got .= $buf; }
    open(my $o, ">", "/tmp/after-shut.tmp"); print $o $got; close $o; rename("/tmp/after-shut.tmp", "/tmp/after-shut");
  }
  close $c;
  exit 0;
}`;

/** The container port the forward server listens on. */
export const FORWARD_PORT = 8080;

/** The entrypoint that runs {@link PERL_FORWARD_SERVER} on {@link FORWARD_PORT}. */
export const FORWARD_ENTRYPOINT = ["perl", "-e", PERL_FORWARD_SERVER, String(FORWARD_PORT)];

/** `GET path` over plain HTTP/1.1 to `address`: the status, the body's byte count and its SHA-256. */
export async function download(
  address: string,
  path: string,
): Promise<{ status: number; bytes: number; sha256: string }> {
  const { request } = await import("node:http");
  const { createHash } = await import("node:crypto");
  const [host, port] = address.split(":");
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, agent: false }, (res) => {
      const hash = createHash("sha256");
      let bytes = 0;
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.byteLength;
        hash.update(chunk);
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest("hex") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}
