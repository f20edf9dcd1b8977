"""A pymilvus workload whose printed results do not depend on timing:
databases, collections, partitions, index, insert, upsert, delete, query,
search, calls compressed with gzip, and an error. Run against a server and through the zdm proxy, the
output must be the same."""
import sys

import grpc
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, MilvusException, connections, db, utility
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

host, port = sys.argv[1].rsplit(":", 1)
connections.connect(host=host, port=port)
db.create_database("wl")
db.using_database("wl")
print("databases", sorted(db.list_database()))
fields = [FieldSchema("id", DataType.INT64, is_primary=True), FieldSchema("tag", DataType.VARCHAR, max_length=16),
          FieldSchema("vec", DataType.FLOAT_VECTOR, dim=4)]
col = Collection("items", CollectionSchema(fields, enable_dynamic_field=True), shards_num=2)
col.create_partition("p1")
print("partitions", sorted(p.name for p in col.partitions))
col.insert([{"id": i, "tag": f"t{i % 3}", "vec": [i, i * 2, 1, 0], "extra": i * 10} for i in range(100)])
col.insert([{"id": 1000 + i, "tag": "p", "vec": [0, 0, i, 1]} for i in range(10)], partition_name="p1")
col.upsert([{"id": 5, "tag": "up", "vec": [9, 9, 9, 9], "extra": -1}])
col.delete("id in [7, 8, 9]")
col.create_index("vec", {"index_type": "IVF_FLAT", "metric_type": "L2", "params": {"nlist": 8}}, index_name="vec_ivf")
col.load()
print("index", col.index().index_name, col.index().params)
rows = col.query("id < 12", output_fields=["id", "tag", "extra"], consistency_level="Strong")
print("query", sorted((r["id"], r["tag"], r.get("extra")) for r in rows))
print("count", col.query("", output_fields=["count(*)"], consistency_level="Strong"))
res = col.search([[0, 0, 0, 0]], "vec", {"metric_type": "L2", "params": {"nprobe": 8}}, limit=3, consistency_level="Strong")
print("search", [h.id for h in res[0]])
# gRPC clients may compress their requests (grpc-encoding: gzip); the
# answers come back compressed alike.
with grpc.insecure_channel(sys.argv[1], compression=grpc.Compression.Gzip) as ch:
    stub = milvus_pb2_grpc.MilvusServiceStub(ch)
    r = stub.ShowCollections(milvus_pb2.ShowCollectionsRequest(db_name="wl"), timeout=30)
    print("gzip collections", r.status.error_code, list(r.collection_names))
    r = stub.Query(milvus_pb2.QueryRequest(db_name="wl", collection_name="items", expr="id in [1, 2]",
                                           output_fields=["tag"], consistency_level=0), timeout=30)
    print("gzip query", r.status.error_code, sorted(f.field_name for f in r.fields_data))
try:
    Collection("nope")
except MilvusException as e:
    print("error", e.code)
print("has", utility.has_collection("items"), utility.has_collection("nope"))
col.release()
col.drop()
db.using_database("default")
db.drop_database("wl")
