"""Asks the zdm proxy for operations a running migration forbids, as an
application with pymilvus would, with and without a timeout, and prints
one line per operation: its name, the seconds until pymilvus raised, and
the error's code and message."""
import sys
import time

from pymilvus import Collection, MilvusException, connections, db, utility

host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
db.using_database(sys.argv[2])
coll = sys.argv[3]
ops = {
    "create_alias timeout=5": lambda: utility.create_alias(coll, "py_alias", timeout=5),
    "create_alias": lambda: utility.create_alias(coll, "py_alias"),
    "drop_alias": lambda: utility.drop_alias("py_alias"),
    "rename_collection": lambda: utility.rename_collection(coll, "py_renamed"),
    "do_bulk_insert": lambda: utility.do_bulk_insert(coll, files=["rows.json"]),
    "set_properties": lambda: Collection(coll).set_properties({"collection.ttl.seconds": 60}),
}
for name, op in ops.items():
    began = time.monotonic()
    try:
        op()
        print(f"{name}\t{time.monotonic() - began:.3f}\taccepted")
    except MilvusException as e:
        print(f"{name}\t{time.monotonic() - began:.3f}\t{e.code}\t{e.message}")
