#!/usr/bin/env python3
"""Order POST latency back-to-back vs spaced out, against a fresh branchd (issue 11's 60-client
target): shows how much of a POST's latency at a low order rate is the machine waking idle
threads rather than branchd's work. Starts `branchd serve` on a free port in a temporary data
directory, mints a cashier token, POSTs 200 orders in each phase on one keep-alive connection.

    python3 benches/post-idle-probe.py [path/to/branchd]   # default target/release/branchd
"""
import base64, hashlib, hmac, http.client, json, os, socket, subprocess, sys, tempfile, time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/branchd"
SECRET = "post-idle-probe-secret-0123456789abcdef"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token():
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": "probe-cashier", "role": "cashier", "companyId": "co-1", "branchId": "br-1", "exp": int(time.time()) + 3600}
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def main():
    env = dict(os.environ, JWT_SECRET=SECRET)
    with tempfile.TemporaryDirectory(dir="target" if os.path.isdir("target") else None) as data:
        for args in (["company", "add", "co-1", "--name", "Probe"], ["branch", "add", "br-1", "--company", "co-1", "--name", "Probe"]):
            subprocess.run([BIN, "--data-dir", data, *args], env=env, check=True, capture_output=True)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        serve = [BIN, "serve", "--no-demo", "--bind", "127.0.0.1", "--mdns", "off", "--tls", "off", "--port", str(port), "--data-dir", data]
        server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            conn = http.client.HTTPConnection("127.0.0.1", port)
            headers = {"Authorization": f"Bearer {token()}", "Content-Type": "application/json"}
            order = json.dumps({"branchId": "br-1", "type": "takeaway", "items": [{"name": "Tea", "quantity": 1, "unitPrice": 100}]})

            def post():
                t = time.perf_counter()
                conn.request("POST", "/api/orders", order, headers)
                r = conn.getresponse()
                r.read()
                if r.status != 201:
                    sys.exit(f"POST answered {r.status}")
                return (time.perf_counter() - t) * 1000

            for _ in range(20):
                post()
            for name, gap in (("back-to-back", 0), ("every 50 ms", 0.05), ("back-to-back", 0), ("every 50 ms", 0.05)):
                ts = []
                for _ in range(200):
                    ts.append(post())
                    time.sleep(gap)
                ts.sort()
                print(f"{name:13} POST p50 {ts[100]:.2f}  p90 {ts[180]:.2f}  p99 {ts[198]:.2f} ms")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
