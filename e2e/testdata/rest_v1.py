"""An application that speaks Milvus's RESTful API (v1) with Python's
standard library only, as a curl script would: a collection made by the
API's quick set-up (keys the server assigns, the dynamic field, indexed
and loaded), rows inserted, deletes by key, a count, a get, a query and a
search. The quick set-up's collections read with bounded staleness, so
each read waits until it sees the writes before it. It prints results
that do not depend on timing or on the keys the server gave, so its
output must be the same against a server and through the zdm proxy.
Usage: rest_v1.py HOST:PORT COLLECTION"""
import json
import random
import sys
import time
import urllib.request

base, name = "http://" + sys.argv[1], sys.argv[2]


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        out = json.load(resp)
    if out.get("code") != 200:
        sys.exit(f"{method} {path}: {out}")
    return out.get("data")


def until(read, want, what):
    got = None
    for _ in range(600):
        got = read()
        if got == want:
            return got
        time.sleep(0.1)
    sys.exit(f"{what}: {got} after a minute, want {want}")


call("POST", "/v1/vector/collections/create", {"collectionName": name, "dimension": 8})
until(lambda: call("GET", "/v1/vector/collections/describe?collectionName=" + name)["load"], "LoadStateLoaded", "load")
print("listed", name in call("GET", "/v1/vector/collections"))
rnd = random.Random(7)
rows = [{"vector": [rnd.random() for _ in range(8)], "color": f"c{i % 5}", "n": i} for i in range(300)]
ins = call("POST", "/v1/vector/insert", {"collectionName": name, "data": rows})
print("insert", ins["insertCount"])
ids = [int(i) for i in ins["insertIds"]]
call("POST", "/v1/vector/delete", {"collectionName": name, "id": ids[:3]})


def count():
    return len(call("POST", "/v1/vector/query", {"collectionName": name, "filter": "n >= 0", "outputFields": ["n"], "limit": 1000}))


print("count", until(count, 297, "count"))
got = call("POST", "/v1/vector/get", {"collectionName": name, "id": ids[3:6], "outputFields": ["n", "color"]})
print("get", sorted((r["n"], r["color"]) for r in got))
got = call("POST", "/v1/vector/query", {"collectionName": name, "filter": "n >= 10 and n < 15", "outputFields": ["color"]})
print("query", sorted(r["color"] for r in got))
got = call("POST", "/v1/vector/search", {"collectionName": name, "vector": rows[10]["vector"], "limit": 1, "outputFields": ["n"]})
print("search", [h["n"] for h in got])
