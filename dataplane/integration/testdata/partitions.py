"""An application that loads only some partitions of its collection, as
multi-tenant applications do, and releases one again.
Usage: partitions.py write HOST:PORT (through the proxy)
       partitions.py state HOST:PORT (prints each partition's load state)"""
import sys

from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility

host, port = sys.argv[2].split(":")
connections.connect(host=host, port=port)
if sys.argv[1] == "state":
    print(", ".join(f"{p.name} {utility.load_state('parts', partition_names=[p.name]).name}" for p in Collection("parts").partitions))
    sys.exit(0)
c = Collection("parts", CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("v", DataType.FLOAT_VECTOR, dim=4)]))
c.create_index("v", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
p1, p2 = c.create_partition("p1"), c.create_partition("p2")
p1.insert([[1, 2, 3], [[0.1] * 4] * 3])
p1.load()
p2.insert([[4, 5], [[0.2] * 4] * 2])
p2.load()
assert len(p2.query("id > 0", consistency_level="Strong")) == 2
p1.release()
