"""Every type and shape Milvus 2.3 takes, driven with pymilvus.

  every_type.py seed ADDR    creates database "types" and fills it
  every_type.py write ADDR   inserts, upserts and deletes of every kind (run it
                        through the zdm proxy)
  every_type.py autoinsert ADDR  inserts rows without keys into "auto", as
                        an application of an autoID collection does, and
                        prints the keys it was given
  every_type.py writer ADDR JOURNAL STOP FIRST
                        writes of every kind until the file STOP exists,
                        journaling each acknowledged one to JOURNAL; its
                        new keys start at FIRST (one range per writer)
  every_type.py check ADDR JOURNAL
                        prints what of the journal ADDR does not hold
  every_type.py dump ADDR    prints the database's structure and every row as
                        canonical JSON, for comparing two clusters
"""
import json
import os
import struct
import sys
import time

from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, db, utility

cmd, addr = sys.argv[1], sys.argv[2]
host, port = addr.rsplit(":", 1)
if cmd != "writer":  # the writer connects as an application does: until it can
    connections.connect(host=host, port=port)

ELEMENTS = {"arr_b": DataType.BOOL, "arr_i8": DataType.INT8, "arr_i16": DataType.INT16, "arr_i32": DataType.INT32,
            "arr_i64": DataType.INT64, "arr_f": DataType.FLOAT, "arr_d": DataType.DOUBLE, "arr_s": DataType.VARCHAR}
F32_MAX, F32_TINY = struct.unpack("f", struct.pack("I", 0x7F7FFFFF))[0], struct.unpack("f", struct.pack("I", 1))[0]
NAN, INF = float("nan"), float("inf")


def every_schema():
    fields = [FieldSchema("id", DataType.INT64, is_primary=True, description="the key"),
              FieldSchema("b", DataType.BOOL), FieldSchema("i8", DataType.INT8), FieldSchema("i16", DataType.INT16),
              FieldSchema("i32", DataType.INT32), FieldSchema("i64", DataType.INT64),
              FieldSchema("f", DataType.FLOAT), FieldSchema("d", DataType.DOUBLE),
              FieldSchema("s", DataType.VARCHAR, max_length=64, description="text up to 64"),
              FieldSchema("j", DataType.JSON),
              FieldSchema("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)]
    for name, t in ELEMENTS.items():
        extra = {"max_length": 16} if t == DataType.VARCHAR else {}
        fields.append(FieldSchema(name, DataType.ARRAY, element_type=t, max_capacity=4, **extra))
    fields.append(FieldSchema("fv", DataType.FLOAT_VECTOR, dim=8))
    return CollectionSchema(fields, description="every scalar type, arrays, a partition key", enable_dynamic_field=True)


def every_row(i, v=0):
    ext = i % 3
    arr = (lambda xs: [] if i % 4 == 0 else xs)
    return {
        "id": i, "b": (i + v) % 2 == 0,
        "i8": [-128, 127, v % 128][ext], "i16": [-32768, 32767, i % 32768][ext], "i32": [-2**31, 2**31 - 1, i * v % 2**31][ext],
        "i64": [-2**63, 2**63 - 1, i * 1000 + v][ext],
        "f": [F32_MAX, -F32_MAX, F32_TINY, i * 0.5 + v, NAN, INF, -INF, -0.0][i % 8],
        "d": [1.7e308, -1.7e308, 5e-324, i / 3 + v, -INF, NAN, -0.0, INF][i % 8],
        "s": ["", "x" * 64, "héllo wörld ünï", f"s{i}-{v}"][i % 4],
        "j": {"a": {"b": [i, {"c": "d"}], "n": None}, "v": v, "t": i % 2 == 0},
        "tenant": f"t{i % 13}",
        "arr_b": arr([True, False, i % 2 == 0]), "arr_i8": arr([-128, 127, v % 128]), "arr_i16": arr([-32768, i % 32768]),
        "arr_i32": arr([2**31 - 1, v, i]), "arr_i64": arr([-2**63, 2**63 - 1, i, v]), "arr_f": arr([F32_MAX, 0.25, v, [NAN, INF, -0.0][i % 3]]),
        "arr_d": arr([-1.7e308, i / 7, [-INF, -0.0, NAN][i % 3]]), "arr_s": arr(["", "y" * 16, f"e{i}", f"v{v}"]),
        "fv": [((i * 7 + k * 3 + v) % 17) / 17 for k in range(8)],
        "extra": {"nested": {"k": i, "list": [1, "two", {"three": 3}]}, "v": v},
    }


def bin_row(i, v=0):
    return {"id": f"k{i:04d}", "bv": bytes([(i * 31 + v + k) % 256 for k in range(2)]), "n": i + v}


def auto_row(i, v=0):
    return {"fv": [i / 100, v / 10, 0.5, 1.0], "n": i + v}


def seed():
    if "types" in db.list_database():
        raise SystemExit("database types exists")
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    db.create_database("types")
    db.using_database("types")
    every = Collection("every", every_schema(), num_partitions=8, consistency_level="Session")
    every.set_properties({"collection.ttl.seconds": 864000})
    for start in range(0, rows, 100):
        every.insert([every_row(i) for i in range(start, min(rows, start + 100))])
    every.create_index("fv", {"index_type": "HNSW", "metric_type": "IP", "params": {"M": 8, "efConstruction": 32}}, index_name="fv_hnsw")
    every.create_index("i64", {"index_type": "STL_SORT"}, index_name="i64_sort")
    every.create_index("s", {"index_type": "Trie"}, index_name="s_trie")
    every.load()
    binary = Collection("bin", CollectionSchema([FieldSchema("id", DataType.VARCHAR, is_primary=True, max_length=8),
                                                FieldSchema("bv", DataType.BINARY_VECTOR, dim=16),
                                                FieldSchema("n", DataType.INT64)]), shards_num=2)
    binary.create_partition("p1")
    binary.insert([bin_row(i) for i in range(100)])
    binary.insert([bin_row(i) for i in range(100, 150)], partition_name="p1")
    binary.create_index("bv", {"index_type": "BIN_IVF_FLAT", "metric_type": "HAMMING", "params": {"nlist": 4}})
    binary.load()
    auto = Collection("auto", CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True, auto_id=True),
                                              FieldSchema("fv", DataType.FLOAT_VECTOR, dim=4),
                                              FieldSchema("n", DataType.INT64)]))
    auto.insert([auto_row(i) for i in range(50)])
    auto.create_index("fv", {"index_type": "FLAT", "metric_type": "L2"})
    auto.load()
    print("seeded")


def write():
    db.using_database("types")
    every, binary, auto = Collection("every"), Collection("bin"), Collection("auto")
    # Consecutive small writes, which the applier merges into one upsert.
    for start in range(1000, 1020, 5):
        every.insert([every_row(i, 1) for i in range(start, start + 5)])
    for start in range(0, 12, 3):
        every.upsert([every_row(i, 2) for i in range(start, start + 3)])
    every.delete("id in [13, 14]")
    every.delete("id >= 250 and id < 260")
    every.upsert([every_row(1004, 3)])
    binary.insert([bin_row(i, 1) for i in range(500, 510)], partition_name="p1")
    binary.upsert([bin_row(i, 2) for i in range(0, 5)])
    binary.delete('id in ["k0007", "k0008"]')
    ids = auto.insert([auto_row(i, 1) for i in range(100, 110)]).primary_keys
    auto.delete(f"id in [{ids[0]}]")
    print("written")


def autoinsert():
    db.using_database("types")
    res = Collection("auto").insert([auto_row(i, 9) for i in range(200, 205)])
    print(json.dumps(list(res.primary_keys)))


# The writer's key spaces, one per kind of write, so that each
# acknowledged answer can be checked on its own.
INSERTED, UPSERTED, DELETED, BY_EXPR = 100000, 0, 200000, 300000


def writer():
    """Writes until the stop file exists; every call has a timeout, so a
    proxy that is down (zdmd killed) fails calls instead of hanging, and
    the writer goes on once it is back."""
    journal, stop, n = open(sys.argv[3], "a"), sys.argv[4], int(sys.argv[5])
    # zdmd may be killed while the writer connects or describes its
    # collections (a call cut mid-way is not retried by pymilvus): it tries
    # again, as an application would, for up to a minute.
    deadline = time.time() + 60
    while True:
        try:
            connections.connect(host=host, port=port, timeout=5)
            db.using_database("types")
            every, binary, auto = Collection("every"), Collection("bin"), Collection("auto")
            break
        except Exception as e:
            print(f"setting up: {e}", file=sys.stderr)
            if time.time() > deadline:
                raise
            connections.disconnect("default")
            time.sleep(0.5)
    first, failed = n, 0

    def ack(rec):
        journal.write(json.dumps(rec) + "\n")
        journal.flush()

    while not os.path.exists(stop):
        n += 1
        v = n
        ops = [
            ("insert", lambda: every.insert([every_row(INSERTED + n, v)], timeout=3), {"keys": [INSERTED + n]}),
            ("upsert", lambda: every.upsert([every_row(UPSERTED + n % 50, v)], timeout=3), {"keys": [UPSERTED + n % 50], "v": v}),
            ("insert", lambda: every.insert([every_row(DELETED + n, v)], timeout=3), {"keys": [DELETED + n], "then": "delete"}),
            ("delete", lambda: every.delete(f"id in [{DELETED + n}]", timeout=3), {"keys": [DELETED + n]}),
            ("insert", lambda: every.insert([every_row(BY_EXPR + 2 * n + k, v) for k in range(2)], timeout=3),
             {"keys": [BY_EXPR + 2 * n, BY_EXPR + 2 * n + 1], "then": "delete"}),
            ("delete", lambda: every.delete(f"id >= {BY_EXPR + 2 * n} and id <= {BY_EXPR + 2 * n + 1}", timeout=3),
             {"keys": [BY_EXPR + 2 * n, BY_EXPR + 2 * n + 1]}),
            ("partition", lambda: binary.insert([bin_row(10000 + n, v) | {"id": f"w{n:06d}"}], partition_name="p1", timeout=3),
             {"keys": [f"w{n:06d}"]}),
            ("auto", lambda: auto.insert([auto_row(n, v)], timeout=3), {}),
        ]
        for kind, op, rec in ops:
            try:
                res = op()
            except Exception as e:  # zdmd is down: the write has no answer
                print(f"{kind}: {e}", file=sys.stderr)
                failed += 1
                time.sleep(0.2)
                continue
            rec = dict(rec, op=kind)
            if kind == "auto":
                rec["keys"] = list(res.primary_keys)
            ack(rec)
        time.sleep(0.05)
    print(json.dumps({"rounds": n - first, "failed": failed}))


def check():
    """Every acknowledged write is on ADDR once: inserted rows, present
    once (upserted ones at the version acknowledged or a later one);
    deleted rows, absent."""
    db.using_database("types")
    every, binary, auto = Collection("every"), Collection("bin"), Collection("auto")
    last_upsert, present, absent = {}, {}, set()
    acked = 0
    for line in open(sys.argv[3]):
        r = json.loads(line)
        acked += 1
        if r["op"] == "upsert":
            last_upsert[r["keys"][0]] = r["v"]
        elif r["op"] == "delete":
            absent.update(r["keys"])
        elif r.get("then") != "delete":
            present.setdefault({"partition": "bin", "auto": "auto"}.get(r["op"], "every"), []).extend(r["keys"])
    problems = []
    for name, keys in present.items():
        col = {"every": every, "bin": binary, "auto": auto}[name]
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            got = col.query(f"id in {json.dumps(chunk)}", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
            if got != len(chunk):
                held = col.query(f"id in {json.dumps(chunk)}", output_fields=["id"], consistency_level="Strong")
                seen = [h["id"] for h in held]
                problems += [f"{name} {k} held {seen.count(k)} times" for k in chunk if seen.count(k) != 1]
    gone = sorted(absent)
    for i in range(0, len(gone), 500):
        for h in every.query(f"id in {json.dumps(gone[i:i + 500])}", output_fields=["id"], consistency_level="Strong"):
            problems.append(f"every {h['id']} deleted, yet present")
    if last_upsert:
        rows = every.query(f"id in {json.dumps(sorted(last_upsert))}", output_fields=["id", "j"], consistency_level="Strong")
        versions = {r["id"]: r["j"]["v"] for r in rows}
        for k, v in last_upsert.items():
            if versions.get(k, -1) < v:
                problems.append(f"every {k} upserted at version {v}, holds {versions.get(k)}")
    print(json.dumps({"acknowledged": acked, "problems": problems[:50], "problem_count": len(problems)}))


def plain(v):
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in sorted(v.items())}
    if hasattr(v, "item"):  # a numpy scalar
        return v.item()
    return v


def dump():
    db.using_database("types")
    out = {}
    for name in sorted(utility.list_collections()):
        col = Collection(name)
        d = col.describe()
        fields = []
        for f in d["fields"]:
            f = dict(f)
            f.pop("field_id", None)
            f.pop("auto_id", None)  # kept keys: a target field without autoID
            fields.append(plain(f))
        indexes = sorted((i.field_name, i.index_name, plain(i.params)) for i in col.indexes)
        names = [f["name"] for f in d["fields"]]
        rows = col.query("", output_fields=names + ["*"], limit=16384, consistency_level="Strong")
        rows = sorted((plain(r) for r in rows), key=lambda r: str(r["id"]).rjust(24))
        out[name] = {"description": d.get("description"), "fields": fields, "num_partitions": d.get("num_partitions"),
                     "partitions": sorted(p.name for p in col.partitions), "consistency": d.get("consistency_level"),
                     # zdm's mark of a collection whose autoID keys it kept
                     "properties": {k: v for k, v in plain(d.get("properties") or {}).items() if k != "zdm.auto_id"},
                     "shards": d.get("num_shards"),
                     "dynamic": d.get("enable_dynamic_field"), "indexes": indexes, "rows": rows}
    print(json.dumps(out, sort_keys=True, indent=1))


{"seed": seed, "write": write, "dump": dump, "autoinsert": autoinsert, "writer": writer, "check": check}[cmd]()
