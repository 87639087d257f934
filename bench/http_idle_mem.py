#!/usr/bin/env python3
# http_idle_mem.py — memory per idle keep-alive HTTP/1.1 connection of a hello server:
# starts SERVER_BIN on 127.0.0.1:18181 (one worker: GONET_PROCS=1), warms it with 50
# connections, then opens N connections, sends one request on each and keeps them open, and
# reports the server's RSS growth per connection: 0.5 s after the last response, and again after
# IDLE_S (3) seconds of idleness (a runtime may give memory back to an idle process: gonet
# releases the stack pages an idle goroutine's returned calls left, after 1 s parked).
# Usage: python3 bench/http_idle_mem.py SERVER_BIN [N=2000]   (ulimit -n must exceed N)
# e.g. target/release/examples/hyper_hello, target/release/http_hyper, target/release/http_go
import os, socket, subprocess, sys, time
binp, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2000
env = dict(os.environ, GONET_PROCS="1", GOMAXPROCS="1")
p = subprocess.Popen([binp, "127.0.0.1:18181"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
def rss():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
def req(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    d = b""
    while b"Hello" not in d: d += s.recv(4096)
warm = [socket.create_connection(("127.0.0.1", 18181)) for _ in range(50)]
for s in warm: req(s)
for s in warm: s.close()
time.sleep(0.3)
r0 = rss()
conns = [socket.create_connection(("127.0.0.1", 18181)) for _ in range(n)]
for s in conns: req(s)
time.sleep(0.5)
r1 = rss()
time.sleep(max(float(os.environ.get("IDLE_S", "3")) - 0.5, 0))
r2 = rss()
print(f"{binp}: {n} idle keep-alive conns: RSS {r0} -> {r1} KiB, {(r1-r0)*1024/n:.0f} bytes/conn "
      f"after 0.5 s; {r2} KiB, {(r2-r0)*1024/n:.0f} bytes/conn after {os.environ.get('IDLE_S', '3')} s")
p.kill()
