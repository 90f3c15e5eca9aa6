"""Socket.IO clients on several processes of a hub cluster (python-socketio).

Run by `cargo test --test it cluster::`, which starts PostgreSQL and the hub processes and
passes the settings as JSON in CLUSTER (see tests/it/cluster.rs). Each client connects to
one URL with one transport, joins the branch on /orders and records the eventId of every
`newOrder`. Orders are POSTed to the `post` URLs in turn. The result (JSON on stdout):
{"posted": [order ids], "clients": [{"url", "transport", "events": [[eventId, orderId]]}]}.

With "catchUpFrom" set, the script instead connects one client to that URL, asks for
`catchUp` since the given eventId, and prints the events it gets."""
import json
import os
import sys
import time

import requests
import socketio

C = json.loads(os.environ["CLUSTER"])
TOKEN = C["token"]
BRANCH = C["branch"]


def client(url, transport, sink):
    sio = socketio.Client(reconnection=False, http_session=requests.Session())

    @sio.on("newOrder", namespace="/orders")
    def on_order(data):
        sink.append([int(data["eventId"]), data["id"]])

    sio.connect(url, namespaces=["/orders"], auth={"token": TOKEN}, transports=[transport], wait_timeout=10)
    ack = sio.call("joinBranch", {"branchId": BRANCH}, namespace="/orders", timeout=10)
    assert ack.get("success"), ack
    return sio


def catch_up():
    sio = socketio.Client(reconnection=False)
    sio.connect(C["catchUpFrom"], namespaces=["/orders"], auth={"token": TOKEN}, transports=["websocket"], wait_timeout=10)
    sio.call("joinBranch", {"branchId": BRANCH}, namespace="/orders", timeout=10)
    ack = sio.call("catchUp", {"since": str(C["since"])}, namespace="/orders", timeout=10)
    sio.disconnect()
    events = [[int(e["data"]["eventId"]), e["data"]["id"]] for e in ack.get("events", []) if e.get("name") == "newOrder"]
    print(json.dumps({"events": events, "truncated": ack.get("truncated", False)}))


def fan_out():
    clients = []
    for url, transport in C["clients"]:
        sink = []
        clients.append((url, transport, sink, client(url, transport, sink)))
    posted = []
    session = requests.Session()
    for i in range(C["orders"]):
        url = C["post"][i % len(C["post"])]
        body = {"branchId": BRANCH, "type": "takeaway", "items": [{"name": "Tea", "quantity": 1, "unitPrice": 100}]}
        r = session.post(url + "/api/orders", json=body, headers={"authorization": "Bearer " + TOKEN}, timeout=10)
        assert r.status_code == 201, (r.status_code, r.text)
        posted.append(r.json()["id"])
    deadline = time.time() + 20
    while time.time() < deadline and any(len(c[2]) < len(posted) for c in clients):
        time.sleep(0.05)
    # A little longer: a doubled delivery would arrive now.
    time.sleep(0.5)
    for c in clients:
        c[3].disconnect()
    print(json.dumps({"posted": posted, "clients": [{"url": u, "transport": t, "events": s} for u, t, s, _ in clients]}))


if __name__ == "__main__":
    if C.get("catchUpFrom"):
        catch_up()
    else:
        fan_out()
    sys.stdout.flush()
