package livesync

import (
	"context"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// maxBatchRows bounds the rows the applier merges into one upsert.
const maxBatchRows = 4000

// maxBatchBytes bounds the requests it merges by their size: 4,000 rows
// of wide vectors would make an upsert larger than any the application
// sent, and than a server takes. A write larger alone goes alone.
const maxBatchBytes = 8 << 20

// rowSet is the rows of one captured insert or upsert.
type rowSet struct {
	db, coll, part string
	cols           []*schemapb.FieldData
	rows           int
	keys           []string
	// bytes is the size of the request the rows came in.
	bytes int
}

// rowBatch is consecutive row sets of one collection and partition, merged.
type rowBatch struct {
	rowSet
	seen   map[string]bool
	seq    uint64
	commit time.Time
}

func newRowBatch(r *rowSet) *rowBatch {
	b := &rowBatch{rowSet: *r, seen: map[string]bool{}}
	b.cols = make([]*schemapb.FieldData, len(r.cols))
	for i, c := range r.cols {
		// The batch grows by appending: the entry's own columns stay.
		b.cols[i] = proto.Clone(c).(*schemapb.FieldData)
	}
	for _, k := range r.keys {
		b.seen[k] = true
	}
	return b
}

// fits reports whether r can join the batch: same place, same fields, and
// no key twice in one request (which would keep both rows).
func (b *rowBatch) fits(r *rowSet) bool {
	if r.db != b.db || r.coll != b.coll || r.part != b.part || b.rows+r.rows > maxBatchRows || b.bytes+r.bytes > maxBatchBytes ||
		len(r.cols) != len(b.cols) {
		return false
	}
	for _, c := range r.cols {
		d := milvus.Column(b.cols, c.GetFieldName())
		if d == nil || !appendable(d, c) {
			return false
		}
	}
	for _, k := range r.keys {
		if b.seen[k] {
			return false
		}
	}
	return true
}

func (b *rowBatch) add(r *rowSet) {
	for _, c := range r.cols {
		appendColumn(milvus.Column(b.cols, c.GetFieldName()), c)
	}
	for _, k := range r.keys {
		b.seen[k] = true
	}
	b.rows += r.rows
	b.bytes += r.bytes
}

// appendable reports whether appendColumn can add src's values to dst: a
// column of a kind it does not know goes in a request of its own, never
// merged short of its values.
func appendable(dst, src *schemapb.FieldData) bool {
	if v := src.GetVectors(); v != nil {
		dv := dst.GetVectors()
		return dv != nil && v.GetDim() == dv.GetDim() &&
			(v.GetFloatVector() != nil && dv.GetFloatVector() != nil || v.GetBinaryVector() != nil && dv.GetBinaryVector() != nil)
	}
	s, d := src.GetScalars(), dst.GetScalars()
	switch {
	case s == nil || d == nil:
		return false
	case s.GetLongData() != nil:
		return d.GetLongData() != nil
	case s.GetIntData() != nil:
		return d.GetIntData() != nil
	case s.GetStringData() != nil:
		return d.GetStringData() != nil
	case s.GetBoolData() != nil:
		return d.GetBoolData() != nil
	case s.GetFloatData() != nil:
		return d.GetFloatData() != nil
	case s.GetDoubleData() != nil:
		return d.GetDoubleData() != nil
	case s.GetJsonData() != nil:
		return d.GetJsonData() != nil
	case s.GetArrayData() != nil:
		return d.GetArrayData() != nil && d.GetArrayData().GetElementType() == s.GetArrayData().GetElementType()
	}
	return false
}

// appendColumn appends src's values to dst (same field, same type).
func appendColumn(dst, src *schemapb.FieldData) {
	if v := src.GetVectors(); v != nil {
		dv := dst.GetVectors()
		if f := v.GetFloatVector(); f != nil {
			dv.GetFloatVector().Data = append(dv.GetFloatVector().Data, f.GetData()...)
		} else {
			dv.Data = &schemapb.VectorField_BinaryVector{BinaryVector: append(dv.GetBinaryVector(), v.GetBinaryVector()...)}
		}
		return
	}
	s, d := src.GetScalars(), dst.GetScalars()
	switch {
	case s.GetLongData() != nil:
		d.GetLongData().Data = append(d.GetLongData().Data, s.GetLongData().GetData()...)
	case s.GetIntData() != nil:
		d.GetIntData().Data = append(d.GetIntData().Data, s.GetIntData().GetData()...)
	case s.GetStringData() != nil:
		d.GetStringData().Data = append(d.GetStringData().Data, s.GetStringData().GetData()...)
	case s.GetBoolData() != nil:
		d.GetBoolData().Data = append(d.GetBoolData().Data, s.GetBoolData().GetData()...)
	case s.GetFloatData() != nil:
		d.GetFloatData().Data = append(d.GetFloatData().Data, s.GetFloatData().GetData()...)
	case s.GetDoubleData() != nil:
		d.GetDoubleData().Data = append(d.GetDoubleData().Data, s.GetDoubleData().GetData()...)
	case s.GetJsonData() != nil:
		d.GetJsonData().Data = append(d.GetJsonData().Data, s.GetJsonData().GetData()...)
	case s.GetArrayData() != nil:
		d.GetArrayData().Data = append(d.GetArrayData().Data, s.GetArrayData().GetData()...)
	}
}

// handle applies one ready entry; b is the batch of rows being built,
// pending how many entries wait behind this one.
func (a *Applier) handle(ctx context.Context, subject string, w *applyWorker, b **rowBatch, r ready, pending uint64) error {
	seq, e, data := r.seq, r.e, r.data
	if r.skip {
		if *b != nil {
			// The batch's position covers it once flushed.
			(*b).seq = seq
			if pending > 0 && (*b).rows < maxBatchRows {
				return nil
			}
			err := a.flush(ctx, subject, w, *b, pending)
			*b = nil
			return err
		}
		return a.done(ctx, subject, w, seq, e.CommitTime(), pending)
	}
	// Consecutive rows of one collection go as one upsert while more
	// entries wait; anything else first applies the batch.
	rows, ok, err := a.rowsOf(ctx, w, e)
	if err != nil {
		return err
	}
	a.watchWrite(ctx, w, seq, e, rows)
	if ok {
		if *b != nil && !(*b).fits(rows) {
			if err := a.flush(ctx, subject, w, *b, pending); err != nil {
				return err
			}
			*b = nil
		}
		if *b == nil {
			*b = newRowBatch(rows)
		} else {
			(*b).add(rows)
		}
		(*b).seq, (*b).commit = seq, e.CommitTime()
		if pending > 0 && (*b).rows < maxBatchRows {
			return nil
		}
		err := a.flush(ctx, subject, w, *b, pending)
		*b = nil
		return err
	}
	if *b != nil {
		if err := a.flush(ctx, subject, w, *b, 1); err != nil {
			return err
		}
		*b = nil
	}
	if err := a.applyRetrying(ctx, w, e); err != nil {
		return err
	}
	if e.Op == capture.OpUncertain {
		if err := a.keepRepair(ctx, seq, data); err != nil {
			return err // read again, and repaired again, from the last position
		}
	}
	if e.Op != capture.OpInsert && e.Op != capture.OpUpsert && e.Op != capture.OpDelete && e.Op != capture.OpHeartbeat {
		w.mu.Lock()
		w.ddl = seq
		w.mu.Unlock()
	}
	return a.done(ctx, subject, w, seq, e.CommitTime(), pending)
}
