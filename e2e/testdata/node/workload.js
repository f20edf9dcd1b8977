// An application written with the Milvus Node.js SDK: a collection with a
// varchar key, an array, JSON and dynamic fields, a partition, inserts,
// an upsert, deletes by expression and by key, an index, a load, a query
// and a search. It prints results that do not depend on timing, so its
// output must be the same against a server and through the zdm proxy.
// Usage: node workload.js HOST:PORT COLLECTION
const { MilvusClient, DataType } = require('@zilliz/milvus2-sdk-node');

function check(what, status) {
  const s = status.status || status;
  if (s.error_code !== 'Success') throw new Error(`${what}: ${s.error_code} ${s.reason}`);
}

(async () => {
  const c = new MilvusClient({ address: process.argv[2] });
  const name = process.argv[3];
  check('create', await c.createCollection({
    collection_name: name, enable_dynamic_field: true, shards_num: 2,
    fields: [
      { name: 'pk', data_type: DataType.VarChar, is_primary_key: true, max_length: 64 },
      { name: 'score', data_type: DataType.Double },
      { name: 'tags', data_type: DataType.Array, element_type: DataType.Int64, max_capacity: 8 },
      { name: 'meta', data_type: DataType.JSON },
      { name: 'vec', data_type: DataType.FloatVector, dim: 4 },
    ],
  }));
  check('partition', await c.createPartition({ collection_name: name, partition_name: 'p1' }));
  const rows = [];
  for (let i = 0; i < 300; i++) {
    rows.push({ pk: `k${i}`, score: i / 4, tags: [i, i + 1], meta: { i, s: `m${i}` }, vec: [i, 1, 0, 0.5], extra: `x${i}` });
  }
  let r = await c.insert({ collection_name: name, data: rows });
  check('insert', r);
  console.log('insert', r.insert_cnt);
  r = await c.insert({ collection_name: name, partition_name: 'p1', data: [{ pk: 'p1a', score: 1, tags: [], meta: {}, vec: [0, 0, 0, 1] }] });
  check('insert into p1', r);
  console.log('insert into p1', r.insert_cnt);
  r = await c.upsert({ collection_name: name, data: [{ pk: 'k5', score: -1, tags: [9], meta: { up: true }, vec: [9, 9, 9, 9], extra: 'up' }] });
  check('upsert', r);
  console.log('upsert', r.upsert_cnt);
  r = await c.deleteEntities({ collection_name: name, expr: 'pk in ["k1", "k2"]' });
  check('delete by expression', r);
  console.log('delete by expression', r.delete_cnt);
  r = await c.delete({ collection_name: name, ids: ['k3'] });
  check('delete by key', r);
  console.log('delete by key', r.delete_cnt);
  check('index', await c.createIndex({ collection_name: name, field_name: 'vec', index_type: 'FLAT', metric_type: 'L2' }));
  check('load', await c.loadCollectionSync({ collection_name: name }));
  r = await c.query({ collection_name: name, expr: 'score < 2', output_fields: ['pk', 'score', 'tags', 'meta', 'extra'], consistency_level: 'Strong' });
  check('query', r);
  const seen = r.data.map(d => [d.pk, d.score, d.tags, d.meta, d.extra === undefined ? null : d.extra]);
  seen.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  console.log('query', JSON.stringify(seen));
  r = await c.query({ collection_name: name, expr: '', output_fields: ['count(*)'], consistency_level: 'Strong' });
  check('count', r);
  console.log('count', JSON.stringify(r.data));
  r = await c.search({ collection_name: name, vector: [0, 1, 0, 0.5], limit: 3, consistency_level: 'Strong' });
  check('search', r);
  console.log('search', r.results.map(x => x.id).join(' '));
})().catch(e => { console.error('FAILED', e.message || e); process.exit(1); });
