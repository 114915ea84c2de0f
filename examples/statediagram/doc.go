// Command statediagram writes the state diagrams of every flow in package
// statemachine as Markdown pages with Mermaid stateDiagram-v2 blocks, one
// file per flow plus an index, into a directory (docs/statediagrams by
// default):
//
//	go run ./examples/statediagram -o docs/statediagrams
//
// With -check it writes nothing and exits 1 when the directory differs from
// what the tables give.
package main
