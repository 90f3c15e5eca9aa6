"""python-socketio connecting to branchd over HTTPS/WSS with the appliance's CA pinned
(docs/OPERATING.md). Usage:
    python3 python-client-tls.py https://192.168.1.20:3001 branchd-ca.pem JWT
"""
import sys

import requests
import socketio

url, ca_file, token = sys.argv[1:4]

session = requests.Session()
session.verify = ca_file  # used for long-polling and passed on to the WebSocket
session.trust_env = False  # else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE would replace verify

sio = socketio.Client(reconnection=False, http_session=session)
sio.connect(url, auth={"token": token}, namespaces=["/orders"], wait_timeout=5)
print("connected over", sio.transport(), "to", url)
print("health:", requests.get(f"{url}/health", verify=ca_file, timeout=5).json()["tls"])
sio.disconnect()
