package dom0

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// DirectOptions says how a source host reaches the destination itself, for
// TransferDirect: the source's own OpenSSH client logs in to the
// destination's sshd, as Nova's rsync over ssh did. Use it only where the
// hosts trust each other (the source holds a key the destination accepts).
type DirectOptions struct {
	// Addr is the destination's address as the source sees it: a host
	// name or IP address, without user or port.
	Addr string
	// Port is the destination's SSH port; 0 means 22.
	Port int
	// User is the login on the destination; "" means root.
	User string
	// IdentityFile is a private key file on the source host; "" means the
	// source user's default keys.
	IdentityFile string
	// KnownHostsFile is a known_hosts file on the source host listing the
	// destination; "" means the source user's default. Host keys are
	// always checked (StrictHostKeyChecking=yes, BatchMode=yes): unlike
	// Nova's plugin, a direct transfer never accepts an unknown host.
	KnownHostsFile string
}

// safeWord accepts the strings TransferDirect puts in an scp command line
// or a remote path: letters, digits and "-_.:/@", so that neither the local
// nor the remote shell can read anything into them.
func safeWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '@') {
			return false
		}
	}
	return s[0] != '-'
}

// TransferDirect copies files from src to dst without passing the data
// through this process: the source host runs scp to the destination (see
// DirectOptions). src and dst are still needed, for the commands, the
// hashes and the final rename. Each file goes to PartName(Dst); its
// SHA-256 is computed on the source host while scp runs and on the
// destination host once it is done (openssl or sha256sum, reading the file
// directly), and the part file is renamed to Dst only if the two agree;
// otherwise it is removed and a *VerifyError returned. The hash comes from
// the source host, not from this process reading the data, since this
// process never sees it. Files move one at a time;
// progress is reported once per file. Paths must be plain (letters, digits,
// "-_.:/@").
func TransferDirect(ctx context.Context, src, dst Host, files []FileCopy, d DirectOptions, opts *TransferOptions) ([]TransferResult, error) {
	o := opts.withDefaults()
	user := d.User
	if user == "" {
		user = "root"
	}
	port := d.Port
	if port == 0 {
		port = 22
	}
	if !safeWord(d.Addr) || !safeWord(user) || port < 1 || port > 65535 ||
		(d.IdentityFile != "" && checkAbs(d.IdentityFile) != nil) || (d.KnownHostsFile != "" && checkAbs(d.KnownHostsFile) != nil) {
		return nil, fmt.Errorf("%w: direct transfer destination %q user %q port %d", ErrBadName, clip(d.Addr), clip(user), port)
	}
	var total int64
	sizes := make([]int64, len(files))
	for i, f := range files {
		if checkAbs(f.Src) != nil || checkAbs(f.Dst) != nil || !safeWord(f.Dst) {
			return nil, fmt.Errorf("%w: direct transfer %q -> %q", ErrBadName, clip(f.Src), clip(f.Dst))
		}
		fi, err := statNoLinks(src, f.Src)
		if err != nil {
			return nil, err
		}
		sizes[i] = fi.Size()
		total += fi.Size()
	}
	prog := &progress{fn: o.Progress, total: total}
	var done []TransferResult
	for i, f := range files {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		part := PartName(f.Dst)
		// scp gives a file it creates the source's mode, but keeps the
		// mode of one that exists: create it first with Perm.
		if err := createEmpty(dst, part, o.Perm); err != nil {
			return done, err
		}
		argv := []string{"scp", "-q", "-B", "-o", "StrictHostKeyChecking=yes", "-P", strconv.Itoa(port)}
		if d.IdentityFile != "" {
			argv = append(argv, "-i", RunPath(d.IdentityFile))
		}
		if d.KnownHostsFile != "" {
			argv = append(argv, "-o", "UserKnownHostsFile="+RunPath(d.KnownHostsFile))
		}
		argv = append(argv, "--", RunPath(f.Src), user+"@"+d.Addr+":"+part)
		// The source is hashed while scp runs (both read it from the
		// source's page cache), the copy once scp is done.
		var want []byte
		var wantErr error
		hashed := make(chan struct{})
		hctx, stopHash := context.WithCancel(ctx)
		go func() {
			defer close(hashed)
			want, wantErr = hashOn(hctx, src, f.Src, sizes[i], VerifySHA256Sum)
		}()
		_, _, err := src.Run(ctx, argv)
		if err != nil {
			stopHash()
		}
		<-hashed
		stopHash()
		if err != nil {
			_ = dst.Remove(part)
			return done, fmt.Errorf("dom0: direct transfer %s:%s -> %s: %w", src, f.Src, f.Dst, err)
		}
		if wantErr != nil {
			_ = dst.Remove(part)
			return done, wantErr
		}
		got, err := hashOn(ctx, dst, part, sizes[i], o.Verify)
		if err != nil {
			_ = dst.Remove(part)
			return done, err
		}
		if !bytes.Equal(got, want) {
			_ = dst.Remove(part)
			return done, &VerifyError{Host: dst.String(), Path: f.Dst, Want: hex.EncodeToString(want), Got: hex.EncodeToString(got)}
		}
		if err := ctx.Err(); err != nil {
			_ = dst.Remove(part)
			return done, err
		}
		if err := dst.Rename(part, f.Dst); err != nil {
			return done, err
		}
		r := TransferResult{Src: f.Src, Dst: f.Dst, Size: sizes[i]}
		copy(r.SHA256[:], want)
		done = append(done, r)
		var fd int64
		prog.add(f.Dst, &fd, sizes[i], sizes[i])
	}
	if len(done) != len(files) {
		return done, errors.New("dom0: direct transfer incomplete")
	}
	return done, nil
}

// createEmpty creates name empty (or empties it) with the permission bits
// perm.
func createEmpty(h Host, name string, perm fs.FileMode) error {
	f, err := h.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	return f.Close()
}
