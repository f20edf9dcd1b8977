// An application written with the Milvus Java SDK: a collection with a
// varchar key, an array, JSON and dynamic fields, a partition, inserts by
// rows and by columns, an upsert, deletes, an index, a load, a query, a
// count and a search. It prints results that do not depend on timing, so
// its output must be the same against a server and through the zdm proxy.
// Usage: java Workload HOST:PORT COLLECTION
import com.alibaba.fastjson.JSONObject;
import io.milvus.client.MilvusServiceClient;
import io.milvus.common.clientenum.ConsistencyLevelEnum;
import io.milvus.grpc.DataType;
import io.milvus.grpc.MutationResult;
import io.milvus.grpc.QueryResults;
import io.milvus.grpc.SearchResults;
import io.milvus.param.ConnectParam;
import io.milvus.param.IndexType;
import io.milvus.param.MetricType;
import io.milvus.param.R;
import io.milvus.param.collection.CollectionSchemaParam;
import io.milvus.param.collection.CreateCollectionParam;
import io.milvus.param.collection.FieldType;
import io.milvus.param.collection.LoadCollectionParam;
import io.milvus.param.dml.DeleteParam;
import io.milvus.param.dml.InsertParam;
import io.milvus.param.dml.QueryParam;
import io.milvus.param.dml.SearchParam;
import io.milvus.param.dml.UpsertParam;
import io.milvus.param.index.CreateIndexParam;
import io.milvus.param.partition.CreatePartitionParam;
import io.milvus.response.QueryResultsWrapper;
import io.milvus.response.SearchResultsWrapper;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.TreeMap;

public class Workload {
  static <T> T check(String what, R<T> r) {
    if (r.getStatus() != R.Status.Success.getCode()) {
      throw new RuntimeException(what + ": " + r.getStatus() + " " + r.getMessage());
    }
    return r.getData();
  }

  static JSONObject row(String pk, double score, List<Long> tags, JSONObject meta, List<Float> vec) {
    JSONObject r = new JSONObject();
    r.put("pk", pk);
    r.put("score", score);
    r.put("tags", tags);
    r.put("meta", meta);
    r.put("vec", vec);
    return r;
  }

  static JSONObject meta(Object... kv) {
    JSONObject m = new JSONObject(true);
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], kv[i + 1]);
    }
    return m;
  }

  public static void main(String[] args) {
    String[] hp = args[0].split(":");
    String name = args[1];
    MilvusServiceClient c = new MilvusServiceClient(
        ConnectParam.newBuilder().withHost(hp[0]).withPort(Integer.parseInt(hp[1])).build());
    try {
      run(c, name);
    } finally {
      c.close();
    }
  }

  static void run(MilvusServiceClient c, String name) {
    check("create", c.createCollection(CreateCollectionParam.newBuilder()
        .withCollectionName(name).withShardsNum(2)
        .withSchema(CollectionSchemaParam.newBuilder().withEnableDynamicField(true)
            .addFieldType(FieldType.newBuilder().withName("pk").withDataType(DataType.VarChar).withMaxLength(64).withPrimaryKey(true).build())
            .addFieldType(FieldType.newBuilder().withName("score").withDataType(DataType.Double).build())
            .addFieldType(FieldType.newBuilder().withName("tags").withDataType(DataType.Array).withElementType(DataType.Int64).withMaxCapacity(8).build())
            .addFieldType(FieldType.newBuilder().withName("meta").withDataType(DataType.JSON).build())
            .addFieldType(FieldType.newBuilder().withName("vec").withDataType(DataType.FloatVector).withDimension(4).build())
            .build())
        .build()));
    check("partition", c.createPartition(CreatePartitionParam.newBuilder().withCollectionName(name).withPartitionName("p1").build()));

    List<JSONObject> rows = new ArrayList<>();
    for (int i = 0; i < 300; i++) {
      JSONObject r = row("k" + i, i / 4.0, Arrays.asList((long) i, (long) i + 1), meta("i", i, "s", "m" + i), Arrays.asList((float) i, 1f, 0f, 0.5f));
      r.put("extra", "x" + i);
      rows.add(r);
    }
    MutationResult m = check("insert", c.insert(InsertParam.newBuilder().withCollectionName(name).withRows(rows).build()));
    System.out.println("insert " + m.getInsertCnt());
    // By columns, into the partition.
    List<InsertParam.Field> cols = Arrays.asList(
        new InsertParam.Field("pk", Arrays.asList("p1a", "p1b")),
        new InsertParam.Field("score", Arrays.asList(1.0, 2.0)),
        new InsertParam.Field("tags", Arrays.asList(new ArrayList<Long>(), Arrays.asList(7L))),
        new InsertParam.Field("meta", Arrays.asList(meta(), meta("col", true))),
        new InsertParam.Field("vec", Arrays.asList(Arrays.asList(0f, 0f, 0f, 1f), Arrays.asList(0f, 0f, 1f, 1f))));
    m = check("insert into p1", c.insert(InsertParam.newBuilder().withCollectionName(name).withPartitionName("p1").withFields(cols).build()));
    System.out.println("insert into p1 " + m.getInsertCnt());
    JSONObject up = row("k5", -1, Arrays.asList(9L), meta("up", true), Arrays.asList(9f, 9f, 9f, 9f));
    up.put("extra", "up");
    m = check("upsert", c.upsert(UpsertParam.newBuilder().withCollectionName(name).withRows(Arrays.asList(up)).build()));
    System.out.println("upsert " + m.getUpsertCnt());
    m = check("delete", c.delete(DeleteParam.newBuilder().withCollectionName(name).withExpr("pk in [\"k1\", \"k2\", \"p1b\"]").build()));
    System.out.println("delete " + m.getDeleteCnt());

    check("index", c.createIndex(CreateIndexParam.newBuilder().withCollectionName(name).withFieldName("vec")
        .withIndexType(IndexType.FLAT).withMetricType(MetricType.L2).withSyncMode(Boolean.TRUE).build()));
    check("load", c.loadCollection(LoadCollectionParam.newBuilder().withCollectionName(name).withSyncLoad(true).build()));

    QueryResults q = check("query", c.query(QueryParam.newBuilder().withCollectionName(name).withExpr("score < 2")
        .withOutFields(Arrays.asList("pk", "score", "tags", "meta", "extra")).withConsistencyLevel(ConsistencyLevelEnum.STRONG).build()));
    List<String> seen = new ArrayList<>();
    for (QueryResultsWrapper.RowRecord r : new QueryResultsWrapper(q).getRowRecords()) {
      TreeMap<String, Object> sorted = new TreeMap<>(r.getFieldValues());
      seen.add(sorted.toString());
    }
    seen.sort(Comparator.naturalOrder());
    System.out.println("query " + seen);
    q = check("count", c.query(QueryParam.newBuilder().withCollectionName(name).withExpr("")
        .withOutFields(Arrays.asList("count(*)")).withConsistencyLevel(ConsistencyLevelEnum.STRONG).build()));
    System.out.println("count " + new QueryResultsWrapper(q).getFieldWrapper("count(*)").getFieldData());

    SearchResults s = check("search", c.search(SearchParam.newBuilder().withCollectionName(name).withVectorFieldName("vec")
        .withMetricType(MetricType.L2).withTopK(3).withVectors(Arrays.asList(Arrays.asList(0f, 1f, 0f, 0.5f)))
        .withConsistencyLevel(ConsistencyLevelEnum.STRONG).build()));
    List<String> ids = new ArrayList<>();
    for (SearchResultsWrapper.IDScore id : new SearchResultsWrapper(s.getResults()).getIDScore(0)) {
      ids.add(id.getStrID());
    }
    System.out.println("search " + String.join(" ", ids));
  }
}
