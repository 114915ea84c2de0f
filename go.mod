module github.com/xenflow/xenflow

go 1.23.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/hashicorp/go-multierror v1.1.1
	github.com/kolo/xmlrpc v0.0.0-20220921171641-a4b6fa1dd06b
	github.com/pkg/sftp v1.13.9
	golang.org/x/crypto v0.36.0
)

require (
	github.com/hashicorp/errwrap v1.0.0 // indirect
	github.com/kr/fs v0.1.0 // indirect
	golang.org/x/sys v0.31.0 // indirect
)
