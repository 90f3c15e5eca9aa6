"""A second, independent Socket.IO client: python-socketio against a real branchd.

Run through `cargo test --test it python_client::`, which starts the server and passes
BRANCHD_URL, BRANCHD_FIXTURES and TRANSPORT ("polling" or "websocket")."""
import json
import os
import sys
import threading
import time

import requests
import socketio

URL = os.environ["BRANCHD_URL"]
FX = json.loads(os.environ["BRANCHD_FIXTURES"])
TRANSPORT = os.environ.get("TRANSPORT", "websocket")
T = FX["tokens"]
# How long an ack or an event may take: the JS tests' ack bound. Every wait ends as soon as
# the answer is in; on a CI machine running the whole suite on 2 cores, one `printer:discovered`
# ack over wss once took more than 5 s (not reproduced in 20 runs alone or 4 at once).
TIMEOUT = 20.0
# Over HTTPS (tests/it/tls.rs): the appliance's CA file, the only CA these clients trust.
VERIFY = os.environ.get("BRANCHD_CA") or True


def session():
    """The HTTP session python-socketio uses (polling, and the websocket's TLS settings)."""
    s = requests.Session()
    s.verify = VERIFY
    if VERIFY is not True:
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override Session.verify.
        s.trust_env = False
    return s
results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
        except Exception as e:  # noqa: BLE001 - report every failure by name
            results.append((name, repr(e)))
        return fn
    return wrap


class Inbox:
    """Collects events per (namespace, name) and waits for one that matches."""

    def __init__(self):
        self.cond = threading.Condition()
        self.items = []

    def add(self, ns, event, data):
        with self.cond:
            self.items.append((ns, event, data))
            self.cond.notify_all()

    def wait(self, ns, event, pred=lambda d: True):
        deadline = time.monotonic() + TIMEOUT
        with self.cond:
            while True:
                for n, e, d in self.items:
                    if n == ns and e == event and pred(d):
                        return d
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {event} on {ns} within {TIMEOUT}s")
                self.cond.wait(left)


def client(namespaces):
    sio = socketio.Client(reconnection=False, http_session=session())
    inbox = Inbox()
    for ns in namespaces:
        sio.on("*", lambda event, data=None, ns=ns: inbox.add(ns, event, data), namespace=ns)
    return sio, inbox


def post_order(token, branch):
    body = {"branchId": branch, "type": "takeaway", "items": [{"name": "Tea", "quantity": 2, "unitPrice": 150}]}
    r = requests.post(f"{URL}/api/orders", json=body, headers={"authorization": f"Bearer {token}"}, timeout=TIMEOUT, verify=VERIFY)
    assert r.status_code == 201, r.text
    return r.json()


@check("one Engine.IO connection multiplexes /orders and /availability")
def multiplexed():
    sio, inbox = client(["/orders", "/availability"])
    sio.connect(URL, auth={"token": T["cashier1"]}, namespaces=["/orders", "/availability"], transports=[TRANSPORT], wait_timeout=TIMEOUT)
    try:
        assert sio.transport() == TRANSPORT, sio.transport()
        order = post_order(T["cashier1"], "br-1")
        got = inbox.wait("/orders", "newOrder", lambda d: d["id"] == order["id"])
        assert got["number"] == order["number"] and "eventId" in got
        live = sio.call("requestLiveOrders", {"branchId": "br-1"}, namespace="/orders", timeout=TIMEOUT)
        assert live["success"] is True and any(o["id"] == order["id"] for o in live["orders"])
        pong = sio.call("ping", {}, namespace="/availability", timeout=TIMEOUT)
        assert pong["success"] is True and pong["timestamp"].endswith("Z")
        inbox.wait("/availability", "pong")
    finally:
        sio.disconnect()


@check("refused handshakes carry the code as the message")
def refused():
    for auth, code in [({"token": "nope"}, "TOKEN_INVALID"), ({}, "AUTH_REQUIRED"), ({"token": T["expired"]}, "TOKEN_EXPIRED")]:
        sio = socketio.Client(reconnection=False, http_session=session())
        seen = []
        sio.on("connect_error", lambda data: seen.append(data), namespace="/orders")
        try:
            sio.connect(URL, auth=auth, namespaces=["/orders"], transports=[TRANSPORT], wait_timeout=TIMEOUT)
            raise AssertionError("connection should have been refused")
        except socketio.exceptions.ConnectionError:
            pass
        finally:
            sio.disconnect()
        message = seen[0]["message"] if seen and isinstance(seen[0], dict) else seen[0] if seen else None
        assert message == code, (auth, seen)


@check("errors come back through acks and exception events")
def errors():
    sio, inbox = client(["/orders"])
    sio.connect(URL, auth={"token": T["cashier1"]}, namespaces=["/orders"], transports=[TRANSPORT], wait_timeout=TIMEOUT)
    try:
        r = sio.call("joinBranch", {"branchId": "br-2"}, namespace="/orders", timeout=TIMEOUT)
        assert r == {"success": False, "error": {"code": "FORBIDDEN", "message": "no access to branch br-2"}}, r
        sio.emit("noSuchEvent", {"x": 1}, namespace="/orders")
        ex = inbox.wait("/orders", "exception", lambda d: d["event"] == "noSuchEvent")
        assert ex["code"] == "UNKNOWN_EVENT" and ex["status"] == "error"
    finally:
        sio.disconnect()


@check("desktop app flow: discovered printer, test print answered by correlation id")
def desktop():
    auth = {"userRole": "desktop_app", "deviceId": "py-dev", "branchId": "br-1", "companyId": "co-1",
            "licenseKey": FX["licenses"]["br1"], "appVersion": "1.0.0", "instanceId": "py"}
    app, app_inbox = client(["/printing-ws"])

    @app.on("printer:test", namespace="/printing-ws")
    def on_test(req):
        app.emit("printer:test:result", {"correlationId": req["correlationId"], "success": True, "message": "py printed"}, namespace="/printing-ws")

    app.connect(URL, auth=auth, namespaces=["/printing-ws"], transports=[TRANSPORT], wait_timeout=TIMEOUT)
    try:
        app_inbox.wait("/printing-ws", "desktop:connected")
        r = app.call("printer:discovered", {"printers": [{"localId": "PY-1", "name": "Py printer"}]}, namespace="/printing-ws", timeout=TIMEOUT)
        assert r["success"] and len(r["added"]) == 1, r
        res = requests.post(f"{URL}/api/printers/{r['added'][0]}/test", headers={"authorization": f"Bearer {T['manager1']}"}, timeout=TIMEOUT, verify=VERIFY)
        body = res.json()
        assert res.status_code == 200 and body["success"] is True and body["message"] == "py printed", body
    finally:
        app.disconnect()


failed = [r for r in results if r[1]]
for name, err in results:
    print(f"{'ok  ' if err is None else 'FAIL'} {name}" + (f": {err}" if err else ""))
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
