#!/usr/bin/env python3
"""A swarm of watcher UAs on one UDP socket, for the fan-out and held-state scenarios.

  swarm.py fanout HOST:PORT --watchers N --run R
      N watchers (w<i>x<R>) SUBSCRIBE to one presentity (fan<R>); once every subscription is
      accepted and its first NOTIFY answered, one PUBLISH changes the presentity; reports the
      time from sending that PUBLISH until every watcher's NOTIFY has been answered.
  swarm.py held HOST:PORT --watchers N --run R
      N watchers each SUBSCRIBE to their own presentity (p<i>x<R>); prints "SUBSCRIBED {json}"
      and waits for a line on stdin (the harness measures the server's memory meanwhile),
      then PUBLISHes to all N presentities and reports the NOTIFY rate.

Every NOTIFY is answered with 200 (RFC 6665 §4.1.3). Requests are paced by a window of
outstanding transactions and retransmitted after 1 s (at most 4 times). A request refused with
503 and Retry-After (the server's overload control) is sent again, as a new transaction, once
that many seconds have passed (RFC 3261 §21.5.4), up to 5 times. The result is one JSON line on
stdout ("RESULT {json}"). Loopback only.
"""
import argparse, heapq, json, os, re, select, socket, sys, time

WINDOW = 200
RETRANS_S = 1.0
MAX_TRIES = 5
MAX_RETRY_AFTER = 5
BRANCH = re.compile(rb";branch=([^;\r\n]+)")
IDLE_GIVE_UP_S = 8.0

COMPACT = {b"i": b"call-id", b"v": b"via", b"f": b"from", b"t": b"to", b"l": b"content-length"}


def parse(data):
    """(first line, [(lower name, raw line)]) of a SIP message; the body is ignored."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    headers = []
    for line in head[1:]:
        name, _, _ = line.partition(b":")
        n = name.strip().lower()
        headers.append((COMPACT.get(n, n), line))
    return head[0], headers


def header(headers, name):
    for n, line in headers:
        if n == name:
            return line.partition(b":")[2].strip()
    return None


class Swarm:
    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self.dest = (host, int(port))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            self.sock.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.local = self.sock.getsockname()
        self.host = host
        # PUBLISHes may go to another node of a cluster than the SUBSCRIBEs (--publish-to).
        self.publish_dest = None
        self.outstanding = {}  # call-id + cseq -> [sent_at, data, tries, dest, attempt (a new one after each 503)]
        self.responses = {}  # call-id -> last final status
        self.failures = 0
        self.notified = {}  # call-id -> number of NOTIFYs answered
        self.notify_since_mark = set()
        self.last_progress = time.time()
        self.seq = 0
        self.retransmissions = 0
        self.statuses = {}
        self.deferred = []  # (when, key, data, dest, attempt): refused with 503, to be sent again
        self.retried_after_503 = 0

    def send(self, data, key, dest=None, attempt=1):
        self.outstanding[key] = [time.time(), data, 1, dest or self.dest, attempt]
        self._sendto(data, dest or self.dest)

    @property
    def pending(self):
        """Requests not answered yet: outstanding, or waiting out a Retry-After."""
        return len(self.outstanding) + len(self.deferred)

    def _sendto(self, data, dest):
        while True:
            try:
                self.sock.sendto(data, dest)
                return
            except BlockingIOError:
                select.select([], [self.sock], [], 0.01)

    def request(self, method, ruri, from_uri, to_uri, call_id, cseq, extra=b"", body=b"", dest=None):
        self.seq += 1
        branch = f"z9hG4bK{os.getpid()}s{self.seq}".encode()
        lh, lp = self.local
        msg = (
            f"{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {lh}:{lp};branch=".encode() + branch
            + f"\r\nMax-Forwards: 70\r\nFrom: <{from_uri}>;tag=t{call_id}\r\nTo: <{to_uri}>\r\nCall-ID: {call_id}\r\n"
              f"CSeq: {cseq} {method}\r\n".encode()
            + extra + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        self.send(msg, f"{call_id} {cseq}", dest)

    def subscribe(self, watcher, presentity, call_id):
        lh, lp = self.local
        extra = (f"Contact: <sip:{watcher}@{lh}:{lp}>\r\nEvent: presence\r\nAccept: application/pidf+xml\r\n"
                 f"Expires: 3600\r\n").encode()
        self.request("SUBSCRIBE", f"sip:{presentity}@{self.host}", f"sip:{watcher}@{self.host}",
                     f"sip:{presentity}@{self.host}", call_id, 1, extra)

    def publish(self, presentity, call_id, note):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:ns:pidf" '
                f'entity="sip:{presentity}@{self.host}"><tuple id="t1"><status><basic>open</basic></status>'
                f"<note>{note}</note></tuple></presence>\r\n").encode()
        extra = b"Event: presence\r\nExpires: 3600\r\nContent-Type: application/pidf+xml\r\n"
        uri = f"sip:{presentity}@{self.host}"
        self.request("PUBLISH", uri, uri, uri, call_id, 1, extra, body, self.publish_dest)

    def pump(self, timeout):
        """Receives what is there (waiting up to `timeout`), answers NOTIFYs, retransmits."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if r:
            for _ in range(5000):
                try:
                    data, addr = self.sock.recvfrom(65535)
                except BlockingIOError:
                    break
                self.handle(data, addr)
        now = time.time()
        while self.deferred and self.deferred[0][0] <= now:
            _, key, data, dest, attempt = heapq.heappop(self.deferred)
            self.send(data, key, dest, attempt)
        for key, o in list(self.outstanding.items()):
            if now - o[0] > RETRANS_S * o[2]:
                if o[2] >= MAX_TRIES:
                    del self.outstanding[key]
                    self.failures += 1
                else:
                    o[2] += 1
                    self.retransmissions += 1
                    self._sendto(o[1], o[3])

    def handle(self, data, addr):
        first, headers = parse(data)
        call_id = (header(headers, b"call-id") or b"").decode()
        if first.startswith(b"SIP/2.0 "):
            status = int(first.split(b" ", 2)[1])
            if status < 200:
                return
            cseq = (header(headers, b"cseq") or b"0").split(b" ", 1)[0].decode()
            key = f"{call_id} {cseq}"
            o = self.outstanding.get(key)
            retry_after = header(headers, b"retry-after")
            if o is not None and status == 503 and retry_after and o[4] < MAX_TRIES:
                # Again after Retry-After, as a new transaction (a new branch).
                del self.outstanding[key]
                self.seq += 1
                data = BRANCH.sub(f";branch=z9hG4bK{os.getpid()}s{self.seq}".encode(), o[1], count=1)
                delay = min(MAX_RETRY_AFTER, int(retry_after.split(b"(")[0].strip() or b"1"))
                heapq.heappush(self.deferred, (time.time() + delay, key, data, o[3], o[4] + 1))
                self.retried_after_503 += 1
                self.last_progress = time.time()
                return
            if self.outstanding.pop(key, None) is not None:
                self.responses[call_id] = status
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status >= 300:
                    self.failures += 1
                self.last_progress = time.time()
            return
        if not first.startswith(b"NOTIFY "):
            return
        lines = [b"SIP/2.0 200 OK"]
        lines += [line for n, line in headers if n in (b"via", b"from", b"to", b"call-id", b"cseq")]
        lines.append(b"Content-Length: 0\r\n\r\n")
        self.sock.sendto(b"\r\n".join(lines), addr)
        if call_id not in self.notify_since_mark:
            self.notify_since_mark.add(call_id)
            self.last_progress = time.time()
        self.notified[call_id] = self.notified.get(call_id, 0) + 1

    def wait_until(self, done):
        self.last_progress = time.time()
        while not done():
            self.pump(0.05)
            if time.time() - self.last_progress > IDLE_GIVE_UP_S:
                return False
        return True

    def paced(self, items, send_one, progress_label):
        """Sends one request per item, keeping at most WINDOW outstanding."""
        n = len(items)
        for i, item in enumerate(items):
            while self.pending >= WINDOW:
                self.pump(0.01)
            send_one(item)
            if i % 500 == 0:
                self.pump(0)
            if i and i % 20000 == 0:
                print(f"PROGRESS {progress_label} {i}/{n}", flush=True)


def subscribe_all(sw, pairs):
    """pairs: [(watcher, presentity)]; returns seconds until all are accepted and notified."""
    t0 = time.time()
    sw.notify_since_mark = set()
    ids = [f"s{i}x{os.getpid()}" for i in range(len(pairs))]
    sw.paced(list(zip(ids, pairs)), lambda it: sw.subscribe(it[1][0], it[1][1], it[0]), "subscribe")
    n = len(pairs)
    ok = sw.wait_until(lambda: not sw.pending and len(sw.notify_since_mark) >= n - sw.failures)
    accepted = sum(1 for c in ids if 200 <= sw.responses.get(c, 0) < 300)
    return {"subscribe_s": round(time.time() - t0, 3), "accepted": accepted, "notified": len(sw.notify_since_mark), "complete": ok}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fanout", "held"])
    ap.add_argument("target")
    ap.add_argument("--watchers", type=int, default=10000)
    ap.add_argument("--run", default=str(os.getpid()))
    ap.add_argument("--publish-to", help="HOST:PORT for the PUBLISHes (another node of a cluster); default the target")
    a = ap.parse_args()
    sw = Swarm(a.target)
    if a.publish_to:
        h, p = a.publish_to.rsplit(":", 1)
        sw.publish_dest = (h, int(p))
    n, run = a.watchers, a.run
    result = {"mode": a.mode, "watchers": n}
    if a.mode == "fanout":
        pres = f"fan{run}"
        result.update(subscribe_all(sw, [(f"w{i}x{run}", pres) for i in range(n)]))
        sw.notify_since_mark = set()
        t0 = time.time()
        sw.publish(pres, f"fanpub{run}", f"fan-out {run}")
        ok = sw.wait_until(lambda: len(sw.notify_since_mark) >= result["accepted"] and not sw.pending)
        t1 = time.time()
        result.update({"fanout_s": round(t1 - t0, 3), "fanout_notified": len(sw.notify_since_mark),
                       "fanout_complete": ok, "failures": sw.failures})
    else:
        result.update(subscribe_all(sw, [(f"hw{i}x{run}", f"p{i}x{run}") for i in range(n)]))
        print("SUBSCRIBED " + json.dumps(result), flush=True)
        sys.stdin.readline()
        sw.notify_since_mark = set()
        t0 = time.time()
        sw.paced(list(range(n)), lambda i: sw.publish(f"p{i}x{run}", f"hp{i}x{run}", "changed"), "publish")
        ok = sw.wait_until(lambda: not sw.pending and len(sw.notify_since_mark) >= result["accepted"])
        t1 = time.time()
        got = len(sw.notify_since_mark)
        result.update({"change_s": round(t1 - t0, 3), "change_notified": got, "notify_rate": round(got / (t1 - t0), 1),
                       "change_complete": ok, "failures": sw.failures})
    result.update({"retransmissions": sw.retransmissions, "retried_after_503": sw.retried_after_503, "statuses": sw.statuses})
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
