"""An application written with pymilvus's MilvusClient (its high-level API,
not the ORM the other scripts use): a collection made by quick set-up
(which indexes and loads it), rows with dynamic fields, an upsert, deletes
by key and by filter, a get, a query and a search. It prints results that
do not depend on timing, so its output must be the same against a server
and through the zdm proxy.
Usage: milvusclient.py HOST:PORT COLLECTION"""
import random
import sys

from pymilvus import MilvusClient

c = MilvusClient(uri="http://" + sys.argv[1])
name = sys.argv[2]
c.create_collection(name, dimension=8, consistency_level="Strong")
rnd = random.Random(7)
rows = [{"id": i, "vector": [rnd.random() for _ in range(8)], "color": f"c{i % 5}", "n": i} for i in range(500)]
print("insert", c.insert(name, rows)["insert_count"])
print("upsert", c.upsert(name, [{"id": i, "vector": [0.5] * 8, "color": "up", "n": -i} for i in range(0, 500, 7)])["upsert_count"])
print("delete by key", c.delete(name, pks=[1, 2, 3]))
print("delete by filter", c.delete(name, filter="n > 480"))
print("count", c.query(name, filter="", output_fields=["count(*)"]))
print("get", sorted((r["id"], r["color"], r["n"]) for r in c.get(name, ids=[0, 7, 1, 4])))
print("query", sorted((r["id"], r["color"]) for r in c.query(name, filter="n >= 0 and n < 10", output_fields=["color"])))
print("search", [h["id"] for h in c.search(name, [rows[10]["vector"]], limit=1)[0]])
