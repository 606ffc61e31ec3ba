#!/usr/bin/env python3
"""An independent KIS realtime client, written from KIS's documentation (the official samples' flow), knowing
nothing of kis-ingest: POST /oauth2/Approval, connect, subscribe H0STCNT0/H0STASP0 (and a notice TR), answer
PINGPONG by echoing the text, decrypt notices with the ack's key/iv (AES-256-CBC, PKCS#7), and count what arrives.

Usage: kis_client.py REST_URL WS_URL APPKEY SECRET SECONDS TR:KEY [TR:KEY ...]
Prints one JSON line: counts of acks, frames by tr_id, records, PINGPONGs echoed, notices decrypted, errors.
"""
import base64
import json
import subprocess
import sys
import time
import urllib.request

from websockets.sync.client import connect

rest, ws_url, appkey, secret, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
pairs = [p.split(":", 1) for p in sys.argv[6:]]

req = urllib.request.Request(rest + "/oauth2/Approval", method="POST",
                             data=json.dumps({"grant_type": "client_credentials", "appkey": appkey,
                                              "secretkey": secret}).encode(),
                             headers={"content-type": "application/json; utf-8"})
approval_key = json.load(urllib.request.urlopen(req))["approval_key"]

keys = {}
counts = {"acks": 0, "frames": {}, "records": 0, "pingpong": 0, "notices_decrypted": 0, "errors": [], "first_fields": {}}


def aes_decrypt(key, iv, data):
    # openssl is the independent AES implementation here (the official sample uses pycryptodome).
    out = subprocess.run(["openssl", "enc", "-d", "-aes-256-cbc", "-K", key.encode().hex(), "-iv", iv.encode().hex()],
                         input=base64.b64decode(data), capture_output=True, check=True)
    return out.stdout.decode("utf-8")


with connect(ws_url, max_size=None, ping_interval=None) as ws:
    for tr_id, tr_key in pairs:
        ws.send(json.dumps({"header": {"approval_key": approval_key, "custtype": "P", "tr_type": "1",
                                       "content-type": "utf-8"},
                            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}}))
        time.sleep(0.2)
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            data = ws.recv(timeout=max(0.01, deadline - time.time()))
        except TimeoutError:
            break
        if data[:2] in ("0|", "1|"):
          try:
            parts = data.split("|")
            tr_id, n = parts[1], int(parts[2])
            payload = parts[3]
            if data[0] == "1":
                payload = aes_decrypt(keys[tr_id][0], keys[tr_id][1], payload)
                counts["notices_decrypted"] += 1
            fields = payload.split("^")
            counts["frames"][tr_id] = counts["frames"].get(tr_id, 0) + 1
            counts["records"] += n
            counts["first_fields"].setdefault(tr_id, fields[0])
          except (ValueError, IndexError, KeyError, subprocess.CalledProcessError) as e:
            counts["errors"].append("malformed frame: %s" % e)
        elif not data.startswith("{"):
            counts["errors"].append("not a KIS message")
        else:
            msg = json.loads(data)
            tr_id = msg["header"]["tr_id"]
            if tr_id == "PINGPONG":
                ws.send(data)
                counts["pingpong"] += 1
                continue
            body = msg.get("body", {})
            if body.get("msg_cd") == "OPSP0000":
                counts["acks"] += 1
                out = body.get("output", {})
                keys[tr_id] = (out["key"], out["iv"])
            else:
                counts["errors"].append(body.get("msg_cd"))
print(json.dumps(counts))
