package verify

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"math"
	"slices"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// compareHashes counts, and notes, the keys of the source rows sh missing
// on the target, those whose rows differ, and the target rows th that are
// not on the source.
// A row that differs is named with its fields that do, when fields (which
// may be nil) tells them.
func compareHashes(cr *CollectionReport, sh, th map[string]uint64, note func(format string, args ...any), fields func(key string) []string) {
	for k, h := range sh {
		switch th2, ok := th[k]; {
		case !ok:
			cr.Missing++
			note("%s missing on the target", k)
		case th2 != h && fields != nil:
			cr.Different++
			note("%s differs in %s", k, strings.Join(fields(k), ", "))
		case th2 != h:
			cr.Different++
			note("%s differs", k)
		}
	}
	for k := range th {
		if _, ok := sh[k]; !ok {
			cr.Extra++
			note("%s only on the target", k)
		}
	}
}

// fieldsDiffering returns what names, for a key two pages both hold, the
// fields whose values of it differ; the pages' keys are indexed once, on
// the first key asked about.
func fieldsDiffering(a, b []*schemapb.FieldData, pk string, schema *schemapb.CollectionSchema) func(key string) []string {
	var ia, ib map[string]int
	names := append(fieldNames(schema), milvus.DynamicFieldName)
	return func(k string) []string {
		if ia == nil {
			ia, ib = rowIndex(a, pk), rowIndex(b, pk)
		}
		var out []string
		for _, name := range names {
			ca, cb := milvus.Column(a, name), milvus.Column(b, name)
			if ca == nil && cb == nil {
				continue
			}
			if ca == nil || cb == nil || !bytes.Equal(cellBytes(ca, ia[k]), cellBytes(cb, ib[k])) {
				out = append(out, name)
			}
		}
		return out
	}
}

// rowIndex maps each key of a page to its row.
func rowIndex(cols []*schemapb.FieldData, pk string) map[string]int {
	keys := milvus.KeysOf(milvus.Column(cols, pk)).Strings()
	out := make(map[string]int, len(keys))
	for i, k := range keys {
		out[k] = i
	}
	return out
}

func fieldNames(schema *schemapb.CollectionSchema) []string {
	names := []string{}
	for _, f := range schema.GetFields() {
		names = append(names, f.GetName())
	}
	return names
}

func sameHashes(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// rowHashes hashes every row over every field in schema order; vectors
// and floats by their bits, JSON in a canonical form.
func rowHashes(cols []*schemapb.FieldData, pk string, schema *schemapb.CollectionSchema) map[string]uint64 {
	keys := milvus.KeysOf(milvus.Column(cols, pk)).Strings()
	out := make(map[string]uint64, len(keys))
	names := append(fieldNames(schema), milvus.DynamicFieldName)
	for i, k := range keys {
		h := fnv.New64a()
		for _, name := range names {
			if c := milvus.Column(cols, name); c != nil {
				h.Write([]byte(name))
				h.Write(cellBytes(c, i))
			}
		}
		out[k] = h.Sum64()
	}
	return out
}

// cellBytes encodes row i of a column.
func cellBytes(c *schemapb.FieldData, i int) []byte {
	b := make([]byte, 0, 64)
	if s := c.GetScalars(); s != nil {
		if a := s.GetArrayData(); a != nil {
			// The element count, then each element, so that no two
			// arrays encode alike.
			row := a.GetData()[i]
			n := max(0, milvus.ColumnLen(&schemapb.FieldData{Field: &schemapb.FieldData_Scalars{Scalars: row}}))
			b = binary.LittleEndian.AppendUint32(b, uint32(n))
			for j := range n {
				b = scalarBytes(b, row, j, true)
			}
			return b
		}
		return scalarBytes(b, s, i, false)
	}
	v := c.GetVectors()
	dim := int(v.GetDim())
	if f := v.GetFloatVector(); f != nil {
		for _, x := range f.GetData()[i*dim : (i+1)*dim] {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	bv := v.GetBinaryVector()
	return append(b, bv[i*dim/8:(i+1)*dim/8]...)
}

// scalarBytes appends value i of s to b; a text is preceded by its length
// when it is one element of several.
func scalarBytes(b []byte, s *schemapb.ScalarField, i int, sized bool) []byte {
	switch {
	case s.GetLongData() != nil:
		return binary.LittleEndian.AppendUint64(b, uint64(s.GetLongData().GetData()[i]))
	case s.GetIntData() != nil:
		return binary.LittleEndian.AppendUint32(b, uint32(s.GetIntData().GetData()[i]))
	case s.GetStringData() != nil:
		v := s.GetStringData().GetData()[i]
		if sized {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		}
		return append(b, v...)
	case s.GetBoolData() != nil:
		if s.GetBoolData().GetData()[i] {
			return append(b, 1)
		}
		return append(b, 0)
	case s.GetFloatData() != nil:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(s.GetFloatData().GetData()[i]))
	case s.GetDoubleData() != nil:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(s.GetDoubleData().GetData()[i]))
	case s.GetJsonData() != nil:
		var v any
		raw := s.GetJsonData().GetData()[i]
		if json.Unmarshal(raw, &v) == nil {
			raw, _ = json.Marshal(v)
		}
		return append(b, raw...)
	}
	return b
}

// sampleVectors compares the vectors of every n-th row bit for bit, but
// for the keys reading them again settled.
func sampleVectors(src, dst []*schemapb.FieldData, pk string, every int, settled func(key string) bool, note func(string, ...any)) int {
	dstKeys := milvus.KeysOf(milvus.Column(dst, pk)).Strings()
	at := map[string]int{}
	for i, k := range dstKeys {
		at[k] = i
	}
	sampled := 0
	for i, k := range milvus.KeysOf(milvus.Column(src, pk)).Strings() {
		if i%every != 0 {
			continue
		}
		j, ok := at[k]
		if !ok || settled(k) {
			continue
		}
		for _, c := range src {
			if c.GetVectors() == nil {
				continue
			}
			d := milvus.Column(dst, c.GetFieldName())
			if d == nil || !slices.Equal(cellBytes(c, i), cellBytes(d, j)) {
				note("%s vector %s differs", k, c.GetFieldName())
			}
		}
		sampled++
	}
	return sampled
}
