"""A pymilvus client speaking TLS, for the TLS migration test.

    tls_client.py ADDR CERTS_DIR MODE setup ROWS
    tls_client.py ADDR CERTS_DIR MODE write FROM SECONDS
    tls_client.py ADDR CERTS_DIR MODE count

MODE is one_way (trusting ca.pem), mutual (presenting client.pem) or
plain; TLS_CLIENT_TIMEOUT bounds the connection (20 s). "write" inserts rows from FROM, upserts some and deletes every
tenth, for SECONDS, then prints the keys it was acknowledged as present
and as deleted."""
import json
import os
import sys
import time

from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility

addr, certs, mode, cmd = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
kw = {}
if mode == "mutual":
    kw = dict(secure=True, client_pem_path=os.path.join(certs, "client.pem"),
              client_key_path=os.path.join(certs, "client.key"), ca_pem_path=os.path.join(certs, "ca.pem"),
              server_name="localhost")
elif mode == "one_way":
    kw = dict(secure=True, server_pem_path=os.path.join(certs, "ca.pem"), server_name="localhost")
connections.connect(host=host, port=port, timeout=float(os.environ.get("TLS_CLIENT_TIMEOUT", "20")), **kw)


def row(i):
    return {"id": i, "tag": f"t{i}", "vec": [float(i % 7), 1.0, float(i % 3), 0.5]}


if cmd == "setup":
    n = int(sys.argv[5])
    fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("tag", DataType.VARCHAR, max_length=32),
              FieldSchema("vec", DataType.FLOAT_VECTOR, dim=4)]
    col = Collection("tls_items", CollectionSchema(fields), shards_num=2)
    for start in range(0, n, 1000):
        col.insert([row(i) for i in range(start, min(n, start + 1000))])
    col.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
    col.load()
    print(json.dumps({"rows": n}))
elif cmd == "write":
    first, seconds = int(sys.argv[5]), float(sys.argv[6])
    col = Collection("tls_items")
    present, deleted, failed = set(), set(), 0
    i, end = first, time.time() + seconds
    while time.time() < end:
        batch = [row(k) for k in range(i, i + 20)]
        try:
            col.insert(batch)
            present.update(r["id"] for r in batch)
            col.upsert([dict(row(i), tag="up")])
            col.delete(f"id in [{i + 10}]")
            present.discard(i + 10)
            deleted.add(i + 10)
        except Exception as e:  # a failed write may or may not be applied
            failed += 1
            print(f"write failed: {e}", file=sys.stderr)
        i += 20
        time.sleep(0.05)
    print(json.dumps({"present": sorted(present), "deleted": sorted(deleted), "failed": failed}))
elif cmd == "count":
    col = Collection("tls_items")
    col.load()
    rows = col.query("id >= 0", output_fields=["id"], consistency_level="Strong")
    print(json.dumps({"ids": sorted(r["id"] for r in rows)}))
else:
    sys.exit(f"unknown command {cmd}")
