"""Creates, inserts and queries with pymilvus against one server."""
import sys

from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, db, utility

host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
db.create_database("pycheck")
db.using_database("pycheck")
fields = [FieldSchema("pk", DataType.VARCHAR, is_primary=True, max_length=32),
          FieldSchema("vec", DataType.FLOAT_VECTOR, dim=4)]
col = Collection("py_items", CollectionSchema(fields, enable_dynamic_field=True))
col.insert([{"pk": f"k{i}", "vec": [i, i + 1, i + 2, i + 3], "tag": i % 2} for i in range(50)])
col.create_index("vec", {"index_type": "HNSW", "metric_type": "L2", "params": {"M": 8, "efConstruction": 64}}, index_name="py_hnsw")
col.load()
rows = col.query('tag == 1', output_fields=["pk", "tag"], consistency_level="Strong")
assert len(rows) == 25, rows
hits = col.search([[0, 1, 2, 3]], "vec", {"metric_type": "L2", "params": {"ef": 16}}, limit=3, consistency_level="Strong")
assert hits[0][0].id == "k0", hits
assert col.index().index_name == "py_hnsw"
assert "py_items" in utility.list_collections()
print("pymilvus check passed:", utility.get_server_version())
