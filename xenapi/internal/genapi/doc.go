// Command genapi writes xenapi's typed call methods (api_gen.go) and enum
// types (enums_gen.go) from the tables in tables.go. Run it with
// `go generate ./xenapi` after changing a table.
package main
