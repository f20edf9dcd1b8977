package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

func main() {
	ctx := context.Background()
	for _, addr := range os.Args[1:] {
		c, err := milvus.Dial(ctx, milvus.Endpoint{Address: addr})
		if err != nil {
			panic(err)
		}
		col, err := c.DescribeCollection(ctx, "sw1000l0_db0", "sw1000l0_c0")
		if err != nil {
			panic(err)
		}
		var ds []time.Duration
		for i := 0; i < 10; i++ {
			gen := milvus.RowGen{Schema: col.Schema, Rand: rand.New(rand.NewPCG(1, 2))}
			keys := milvus.Keys{Ints: []int64{int64(900000 + i*10), int64(900001 + i*10)}}
			t0 := time.Now()
			if _, err := c.Insert(ctx, "sw1000l0_db0", "sw1000l0_c0", "", gen.Columns(2, keys, func(int) int64 { return 1 }), 2); err != nil {
				panic(err)
			}
			ds = append(ds, time.Since(t0).Round(time.Millisecond))
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Println(addr, "inserts:", ds)
	}
}
