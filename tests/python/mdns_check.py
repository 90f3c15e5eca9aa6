"""An independent mDNS implementation (python-zeroconf) resolving branchd's advertisement.

Prints `FOUND <json>` once `_branchd._tcp.local.` resolves, then waits for a line on stdin
(the server is being stopped) and prints `REMOVED` when the goodbye arrives, or `STILL THERE`."""
import json
import sys
import threading

from zeroconf import ServiceBrowser, ServiceListener, Zeroconf

TYPE = "_branchd._tcp.local."
found = threading.Event()
removed = threading.Event()
info = {}


class Listener(ServiceListener):
    def add_service(self, zc, type_, name):
        si = zc.get_service_info(type_, name, timeout=3000)
        if si is None:
            return
        info.update({
            "name": name,
            "port": si.port,
            "addresses": si.parsed_addresses(),
            "txt": {k.decode(): (v.decode() if v is not None else None) for k, v in si.properties.items()},
        })
        found.set()

    def update_service(self, zc, type_, name):
        pass

    def remove_service(self, zc, type_, name):
        removed.set()


zc = Zeroconf()
http = {}


class HttpListener(ServiceListener):
    def add_service(self, zc, type_, name):
        http["name"] = name

    def update_service(self, zc, type_, name):
        pass

    def remove_service(self, zc, type_, name):
        pass


ServiceBrowser(zc, TYPE, Listener())
ServiceBrowser(zc, "_http._tcp.local.", HttpListener())
if not found.wait(15):
    print("NOT FOUND", flush=True)
    sys.exit(1)
found_http = threading.Event()
for _ in range(50):
    if http:
        break
    found_http.wait(0.1)
info["http"] = http.get("name")
print("FOUND " + json.dumps(info), flush=True)
sys.stdin.readline()
print("REMOVED" if removed.wait(10) else "STILL THERE", flush=True)
zc.close()
