package schedjson_test

import (
	"fmt"
	"os"

	"github.com/xenflow/xenflow/scheduler/schedjson"
)

// ExampleRun parses a document as examples/schedule reads it, schedules
// it and writes the result.
func ExampleRun() {
	doc := `{
	  "config": {"enabled_filters": ["ComputeFilter", "RamFilter"], "weighers": ["RAMWeigher"]},
	  "hosts": [
	    {"host": "h1", "total_usable_ram_mb": 8192, "free_ram_mb": 3072,
	     "total_usable_disk_gb": 100, "free_disk_mb": 51200, "vcpus_total": 8},
	    {"host": "h2", "total_usable_ram_mb": 8192, "free_ram_mb": 6144,
	     "total_usable_disk_gb": 100, "free_disk_mb": 51200, "vcpus_total": 8},
	    {"host": "h3", "enabled": false, "total_usable_ram_mb": 8192, "free_ram_mb": 8192,
	     "total_usable_disk_gb": 100, "free_disk_mb": 51200, "vcpus_total": 8}
	  ],
	  "request": {"flavor": {"memory_mb": 2048, "vcpus": 1, "root_gb": 10}}
	}`
	in, err := schedjson.Parse([]byte(doc))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := schedjson.Run(in)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := schedjson.Encode(os.Stdout, out); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {
	//   "weighed": [
	//     {
	//       "host": "h2",
	//       "node": "h2",
	//       "weight": 1
	//     },
	//     {
	//       "host": "h1",
	//       "node": "h1",
	//       "weight": 0.5
	//     }
	//   ],
	//   "selected": [
	//     {
	//       "host": "h2",
	//       "node": "h2",
	//       "weight": 1
	//     }
	//   ],
	//   "alternates": [
	//     [
	//       {
	//         "host": "h1",
	//         "node": "h1"
	//       }
	//     ]
	//   ],
	//   "filtered_out": {
	//     "ComputeFilter": [
	//       "h3"
	//     ]
	//   }
	// }
}
